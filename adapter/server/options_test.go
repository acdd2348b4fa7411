package server

import (
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// parsed returns Options as the command line leaves them.
func parsed(t *testing.T, args ...string) *Options {
	t.Helper()
	o := newOptions()
	fs := pflag.NewFlagSet("adapter", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return o
}

func TestValidate(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" means valid
	}{
		{args: nil},
		{args: []string{"--prometheus-verb=post"}},
		{args: []string{"--prometheus-verb=PUT"}, want: "--prometheus-verb must be GET or POST"},
		{args: []string{"--prometheus-url="}, want: "--prometheus-url is required"},
		{args: []string{"--prometheus-client-tls-cert-file=c"}, want: "go together"},
		{args: []string{"--prometheus-token-file=t", "--prometheus-basic-auth-username=u", "--prometheus-basic-auth-password-file=p"}, want: "alternatives"},
		{args: []string{"--prometheus-basic-auth-username=u"}, want: "--prometheus-basic-auth-password-file go together"},
		{args: []string{"--prometheus-header==v"}, want: `--prometheus-header "=v": want key=value`},
		{args: []string{"--prometheus-query-timeout=0s"}, want: "--prometheus-query-timeout must be positive"},
		{args: []string{"--metrics-relist-interval=0s"}, want: "--metrics-relist-interval must be positive"},
		{args: []string{"--metrics-relist-interval=5m", "--metrics-max-age=1m"}, want: "must not be less than --metrics-relist-interval"},
		{args: []string{"--max-name-regex-bytes=-1"}, want: "--max-name-regex-bytes must not be negative"},
		// The gRPC port is loopback unless TLS protects the tokens it receives.
		{args: []string{"--grpc-port=9090"}},
		{args: []string{"--grpc-port=9090", "--grpc-bind-address=0.0.0.0"}, want: "needs --grpc-tls-cert-file and --grpc-tls-key-file"},
		{args: []string{"--grpc-port=9090", "--grpc-bind-address=0.0.0.0", "--grpc-tls-cert-file=c", "--grpc-tls-key-file=k"}},
		{args: []string{"--history-max-step=0s"}, want: "--history-max-step must be at least 1ms"},
		{args: []string{"--prometheus-auth-incluster", "--prometheus-auth-config=kc"}, want: "are alternatives"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := errors.Join(parsed(t, tt.args...).Validate()...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		flags []string
		want  map[string][]string
	}{
		{flags: nil, want: map[string][]string{}},
		{flags: []string{"foo=bar"}, want: map[string][]string{"Foo": {"bar"}}},
		{flags: []string{"foo"}, want: map[string][]string{"Foo": {""}}},
		{flags: []string{"foo=bar", "foo=baz", "bux=baz=23"}, want: map[string][]string{"Foo": {"bar", "baz"}, "Bux": {"baz=23"}}},
	}
	for _, tt := range tests {
		got, err := parseHeaders(tt.flags)
		if err != nil {
			t.Fatalf("%v: %v", tt.flags, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseHeaders(%v) = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

// TestHTTPClientSendsCredentials: the token file is read per request (so rotation needs no
// restart) and extra headers reach Prometheus.
func TestHTTPClientSendsCredentials(t *testing.T) {
	var got http.Header
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer server.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := parsed(t, "--prometheus-token-file="+tokenFile, "--prometheus-header=X-Scope-OrgID=tenant-a")
	client, err := o.Prometheus.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"first", "rotated"} {
		if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(server.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got.Get("Authorization") != "Bearer "+token {
			t.Errorf("Authorization = %q, want Bearer %s", got.Get("Authorization"), token)
		}
		if got.Get("X-Scope-Orgid") != "tenant-a" {
			t.Errorf("X-Scope-OrgID = %q, want tenant-a", got.Get("X-Scope-Orgid"))
		}
	}
}

func TestHTTPClientRejectsMissingCA(t *testing.T) {
	o := parsed(t, "--prometheus-ca-file=/nonexistent/ca.pem")
	if _, err := o.Prometheus.HTTPClient(); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Fatalf("error = %v, want one naming the CA file", err)
	}
}

// TestHTTPClientFromKubeconfig: --prometheus-auth-config uses the kubeconfig's CA and credentials
// for Prometheus (a Prometheus behind kube-rbac-proxy), with the extra headers on top; a token
// file given by flag wins over the kubeconfig's token, as in prometheus-adapter.
func TestHTTPClientFromKubeconfig(t *testing.T) {
	var got http.Header
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer server.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["prom"] = &clientcmdapi.Cluster{Server: server.URL, CertificateAuthorityData: caPEM}
	kc.AuthInfos["scraper"] = &clientcmdapi.AuthInfo{Token: "kubeconfig-token"}
	kc.Contexts["prom"] = &clientcmdapi.Context{Cluster: "prom", AuthInfo: "scraper"}
	kc.CurrentContext = "prom"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--prometheus-auth-config=" + kubeconfig}, "Bearer kubeconfig-token"},
		{[]string{"--prometheus-auth-config=" + kubeconfig, "--prometheus-token-file=" + tokenFile}, "Bearer file-token"},
	} {
		o := parsed(t, append(tc.args, "--prometheus-header=X-Scope-OrgID=tenant-a")...)
		client, err := o.Prometheus.HTTPClient()
		if err != nil {
			t.Fatal(err)
		}
		// The server's certificate is verified with the kubeconfig's CA: no system roots needed.
		resp, err := client.Get(server.URL)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		resp.Body.Close()
		if got.Get("Authorization") != tc.want || got.Get("X-Scope-Orgid") != "tenant-a" {
			t.Errorf("%v: Authorization %q, X-Scope-OrgID %q; want %q and tenant-a", tc.args, got.Get("Authorization"), got.Get("X-Scope-Orgid"), tc.want)
		}
	}
	// In-cluster credentials need a pod: outside one, a clear error at start.
	o := parsed(t, "--prometheus-auth-incluster")
	if _, err := o.Prometheus.HTTPClient(); err == nil || !strings.Contains(err.Error(), "--prometheus-auth-incluster") {
		t.Errorf("in-cluster auth outside a pod: %v, want an error naming the flag", err)
	}
}
