// Package grpcapi serves the history queries as Kapacity's gRPC metric ProviderService
// (proto package io.kapacitystack.metric, see metricpb), so Kapacity's algorithm jobs work against
// the adapter unchanged. Unlike the HTTP API it has no per-namespace authorization, as in Kapacity:
// expose it only inside the cluster (a NetworkPolicy), or require client certificates.
package grpcapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/httpapi"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

type metav1Duration = metav1.Duration

// Service implements metricpb.ProviderServiceServer over a querier.
type Service struct {
	metricpb.UnimplementedProviderServiceServer
	querier httpapi.Querier
}

// NewService returns the ProviderService over querier.
func NewService(querier httpapi.Querier) *Service { return &Service{querier: querier} }

// QueryLatest implements metricpb.ProviderServiceServer.
func (s *Service) QueryLatest(ctx context.Context, req *metricpb.QueryLatestRequest) (*metricpb.QueryLatestResponse, error) {
	q, err := FromProto(req.GetQuery())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	series, err := s.querier.Latest(ctx, q)
	if err != nil {
		return nil, grpcError(err)
	}
	return &metricpb.QueryLatestResponse{Samples: SamplesToProto(series)}, nil
}

// Query implements metricpb.ProviderServiceServer.
func (s *Service) Query(ctx context.Context, req *metricpb.QueryRequest) (*metricpb.QueryResponse, error) {
	q, err := FromProto(req.GetQuery())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetStart() == nil || req.GetEnd() == nil || req.GetStep() == nil {
		return nil, status.Error(codes.InvalidArgument, "start, end and step are required")
	}
	r := v1alpha1.Range{Start: req.GetStart().AsTime(), End: req.GetEnd().AsTime(), Step: req.GetStep().AsDuration()}
	series, err := s.querier.Range(ctx, q, r)
	if err != nil {
		return nil, grpcError(err)
	}
	return &metricpb.QueryResponse{Series: SeriesToProto(series)}, nil
}

// grpcError maps the engine's API errors to gRPC codes, keeping the message.
func grpcError(err error) error {
	var apiStatus apierrors.APIStatus
	if !errors.As(err, &apiStatus) {
		return status.Error(codes.Internal, err.Error())
	}
	code := codes.Internal
	switch {
	case apierrors.IsBadRequest(err):
		code = codes.InvalidArgument
	case apierrors.IsNotFound(err):
		code = codes.NotFound
	case apierrors.IsServiceUnavailable(err):
		code = codes.Unavailable
	case apierrors.IsTimeout(err):
		code = codes.DeadlineExceeded
	case apierrors.IsForbidden(err):
		code = codes.PermissionDenied
	}
	return status.Error(code, apiStatus.Status().Message)
}

// TLSFiles configure optional TLS for the gRPC port.
type TLSFiles struct {
	// CertFile and KeyFile are the serving certificate; both empty means plaintext (Kapacity's
	// default, which its algorithm jobs use).
	CertFile, KeyFile string
	// ClientCAFile, when set, requires client certificates signed by it.
	ClientCAFile string
}

// ServerOptions returns the grpc.ServerOptions for t.
func (t TLSFiles) ServerOptions() ([]grpc.ServerOption, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		if t.ClientCAFile != "" {
			return nil, fmt.Errorf("a gRPC client CA needs a serving certificate and key")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the gRPC serving certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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

// Listen binds address and returns a function serving the ProviderService on it until ctx ends.
// Binding first lets the caller fail at start-up on a taken port.
func Listen(address string, querier httpapi.Querier, tlsFiles TLSFiles) (serve func(ctx context.Context) error, err error) {
	opts, err := tlsFiles.ServerOptions()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("gRPC listen on %s: %w", address, err)
	}
	server := grpc.NewServer(opts...)
	metricpb.RegisterProviderServiceServer(server, NewService(querier))
	return func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			server.GracefulStop()
		}()
		klog.InfoS("Serving Kapacity's gRPC metric ProviderService", "address", l.Addr().String(), "tls", tlsFiles.CertFile != "")
		if err := server.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	}, nil
}
