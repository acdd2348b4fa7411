package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestAdapterTakesPrometheusAdapterFlags: a prometheus-adapter Deployment's arguments run
// `kapacity adapter` unchanged. The real binary starts with upstream's complete documented flag
// set (its Prometheus, discovery, serving, client and logging flags; --prometheus-auth-incluster
// only differs from --prometheus-auth-config in where the kubeconfig comes from, and needs a pod),
// with the chart's adapter ServiceAccount as its kube-apiserver credentials; it serves, refuses
// HTTP/2 (--disable-http2, where the bed's adapter negotiates it), and queries Prometheus with the
// verb, header and token those flags name.
func TestAdapterTakesPrometheusAdapterFlags(t *testing.T) {
	ctx := context.Background()
	shared := useAdapter(t)
	chart := useChart(t)
	binary := kapacityBinary(t)
	dir := t.TempDir()

	// Prometheus, behind a proxy that records what the adapter sends.
	var mu sync.Mutex
	var seen []string
	target, err := url.Parse(bed.PrometheusURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s org=%s auth=%s", r.Method, r.URL.Path, r.Header.Get("X-Scope-OrgID"), r.Header.Get("Authorization")))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer prom.Close()

	config, err := stack.AdapterConfig()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	configFile := write("config.yaml", config)
	tokenFile := write("prometheus-token", "from-the-token-file")
	certPEM, keyPEM := selfSignedPair(t)
	caFile, certFile, keyFile := write("prometheus-ca.pem", string(certPEM)), write("client.pem", string(certPEM)), write("client-key.pem", string(keyPEM))
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := chart.AdapterKubeconfig()
	args := []string{"adapter",
		// prometheus-adapter's own flags (its README and cmd/adapter).
		"--prometheus-url=" + prom.URL,
		"--prometheus-auth-config=" + kubeconfig, // ignored beside --prometheus-ca-file, as upstream
		"--prometheus-ca-file=" + caFile,
		"--prometheus-client-tls-cert-file=" + certFile,
		"--prometheus-client-tls-key-file=" + keyFile,
		"--prometheus-token-file=" + tokenFile,
		"--prometheus-header=X-Scope-OrgID=tenant-a",
		"--prometheus-verb=POST",
		"--config=" + configFile,
		"--metrics-relist-interval=1m",
		"--metrics-max-age=2m",
		"--disable-http2",
		// The logging flags (component-base's, as upstream registers them).
		"--v=6", "--vmodule=discovery=6", "--log-flush-frequency=5s",
		// custom-metrics-apiserver's, which upstream manifests use.
		"--secure-port=" + fmt.Sprint(port), "--bind-address=127.0.0.1", "--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
		"--lister-kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--discovery-interval=1m", "--client-qps=20", "--client-burst=40",
	}
	logPath := filepath.Join(dir, "adapter.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("adapter log:\n%s", log)
		}
	}()

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	poll.Until(ctx, t, time.Minute, "the adapter answers /readyz", func(ctx context.Context) (string, bool, error) {
		select {
		case err := <-exited:
			return "", false, fmt.Errorf("the adapter exited: %v", err)
		default:
		}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec: its own certificate
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			return err.Error(), false, nil
		}
		resp.Body.Close()
		return resp.Status, resp.StatusCode == http.StatusOK, nil
	})
	if got := negotiatedProtocol(t, addr); got != "http/1.1" {
		t.Errorf("with --disable-http2 the adapter negotiated %q, want http/1.1", got)
	}
	if got := negotiatedProtocol(t, fmt.Sprintf("127.0.0.1:%d", shared.Port)); got != "h2" {
		t.Errorf("without --disable-http2 the bed's adapter negotiated %q, want h2 (the flag would prove nothing)", got)
	}
	poll.Until(ctx, t, 30*time.Second, "the adapter lists series from Prometheus as its flags say", func(context.Context) (string, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if s == "POST /api/v1/series org=tenant-a auth=Bearer from-the-token-file" {
				return s, true, nil
			}
		}
		return strings.Join(seen, "; "), false, nil
	})
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`FLAG: --disable-http2="true"`, `FLAG: --prometheus-verb="POST"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the log at -v=6 lacks %s", want)
		}
	}
}

// negotiatedProtocol is the ALPN protocol a TLS client offering h2 and http/1.1 gets from addr.
func negotiatedProtocol(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) // #nosec: only the protocol is looked at
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().NegotiatedProtocol
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// kapacityBinary builds the kapacity command once per run, into the bed's folder.
func kapacityBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryPath = filepath.Join(bed.Dir, "kapacity")
		cmd := exec.Command("go", "build", "-o", binaryPath, ".")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// selfSignedPair is a throwaway certificate and key (PEM) for the TLS flags of Prometheus.
func selfSignedPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "prometheus-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
