package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
)

// DefaultTokenFile is where a pod finds its ServiceAccount token.
const DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// GRPCOptions say how to reach and authenticate to the adapter's gRPC ProviderService.
type GRPCOptions struct {
	// Address is host:port.
	Address string
	// TokenFile holds the Kubernetes token sent with every call; it is read for every call, so a
	// rotated (projected) ServiceAccount token is picked up. Empty sends none.
	TokenFile string
	// CAFile holds the CA certificates (PEM) trusted for the server's certificate; empty means the
	// system's roots. Loopback addresses without a CAFile are plaintext, as the adapter serves
	// them; every other address is TLS.
	CAFile string
	// MaxRecvBytes bounds one answer (default 64 MiB, the adapter's own bound).
	MaxRecvBytes int
}

// DialGRPC returns a client of the ProviderService at o.Address. Close it when done.
func DialGRPC(o GRPCOptions, extra ...grpc.DialOption) (*GRPC, error) {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("gRPC address %q: %w", o.Address, err)
	}
	plaintext := o.CAFile == "" && grpcapi.IsLoopback(host)
	transport := insecure.NewCredentials()
	if !plaintext {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading the gRPC CA file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in the gRPC CA file %s", o.CAFile)
			}
		}
		transport = credentials.NewTLS(cfg)
	}
	if o.MaxRecvBytes <= 0 {
		o.MaxRecvBytes = 64 << 20
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxRecvBytes))}
	if o.TokenFile != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenFile{path: o.TokenFile, secure: !plaintext}))
	}
	conn, err := grpc.NewClient("passthrough:///"+o.Address, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", o.Address, err)
	}
	c := NewGRPC(conn)
	c.closer = conn
	return c, nil
}

// Close closes a connection DialGRPC opened.
func (c *GRPC) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

// tokenFile sends the token in a file as the authorization metadata of every call.
type tokenFile struct {
	path   string
	secure bool
}

func (t tokenFile) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("reading the gRPC token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return nil, errors.New("the gRPC token file " + t.path + " is empty")
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

// RequireTransportSecurity refuses to send the token over plaintext, except to loopback.
func (t tokenFile) RequireTransportSecurity() bool { return t.secure }
