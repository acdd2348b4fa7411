package grpcapi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLSFiles configure TLS for the gRPC port.
type TLSFiles struct {
	// CertFile and KeyFile are the serving certificate. They are read again when they change, so
	// a rotated certificate (the adapter's self-signed one, or cert-manager's) is served without a
	// restart.
	CertFile, KeyFile string
	// ClientCAFile, when set, also requires client certificates signed by it.
	ClientCAFile string
}

// Enabled reports whether a serving certificate is configured.
func (t TLSFiles) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// ServerOptions returns the grpc.ServerOptions for t (none without a certificate).
func (t TLSFiles) ServerOptions() ([]grpc.ServerOption, error) {
	if !t.Enabled() {
		if t.ClientCAFile != "" {
			return nil, fmt.Errorf("a gRPC client CA needs a serving certificate and key")
		}
		return nil, nil
	}
	keyPair := &reloadingKeyPair{certFile: t.CertFile, keyFile: t.KeyFile}
	if _, err := keyPair.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return keyPair.get() }}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the gRPC client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in the gRPC client CA file %s", t.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}, nil
}

// reloadingKeyPair serves a key pair from files, reloading it when either file's modification
// time changes (checked at most every few seconds).
type reloadingKeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func (k *reloadingKeyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Since(k.checked) < 5*time.Second {
		return k.cert, nil
	}
	k.checked = time.Now()
	var stamp [2]time.Time
	for i, f := range []string{k.certFile, k.keyFile} {
		info, err := os.Stat(f)
		if err != nil {
			if k.cert != nil {
				return k.cert, nil // keep serving the last good pair during a swap
			}
			return nil, fmt.Errorf("loading the gRPC serving certificate: %w", err)
		}
		stamp[i] = info.ModTime()
	}
	if k.cert != nil && stamp == k.stamp {
		return k.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("loading the gRPC serving certificate: %w", err)
	}
	k.cert, k.stamp = &cert, stamp
	return k.cert, nil
}
