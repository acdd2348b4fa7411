// Package grpcapi serves the history queries as Kapacity's gRPC metric ProviderService
// (proto package io.kapacitystack.metric, see metricpb), with Kapacity's messages unchanged.
//
// Unlike Kapacity's, every call must carry a Kubernetes token (metadata authorization: Bearer),
// checked with TokenReview; the querier then authorizes the caller per namespace exactly as the
// HTTP history API does. The port serves plaintext only on loopback: bound beyond it, it needs a
// TLS certificate, since tokens travel with every call. Handler panics become Internal errors.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/httpapi"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

type metav1Duration = metav1.Duration

// Querier answers queries, authorizing the caller in the context; *query.Engine implements it.
type Querier = httpapi.Querier

// Service implements metricpb.ProviderServiceServer over a querier.
type Service struct {
	metricpb.UnimplementedProviderServiceServer
	querier Querier
}

// NewService returns the ProviderService over querier.
func NewService(querier Querier) *Service { return &Service{querier: querier} }

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
	return &metricpb.QueryResponse{Series: seriesToProtoReleasing(series)}, nil
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
	case apierrors.IsTooManyRequests(err):
		code = codes.ResourceExhausted
	}
	return status.Error(code, apiStatus.Status().Message)
}

// ServerOptions configure the gRPC server.
type ServerOptions struct {
	// Address is host:port to bind; plaintext is allowed on loopback only.
	Address string
	// TLS is the serving certificate (required beyond loopback).
	TLS TLSFiles
	// Authenticator checks the bearer token of every call (required).
	Authenticator authenticator.Token
	// MaxSendBytes bounds one answer (default 64 MiB); the querier's sample cap keeps answers
	// below it.
	MaxSendBytes int
}

// NewServer returns a gRPC server with the ProviderService over querier, authenticating every
// call and recovering handler panics.
func NewServer(querier Querier, o ServerOptions) (*grpc.Server, error) {
	if o.Authenticator == nil {
		return nil, errors.New("the gRPC ProviderService needs a token authenticator")
	}
	if o.MaxSendBytes <= 0 {
		o.MaxSendBytes = 64 << 20
	}
	opts, err := o.TLS.ServerOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		grpc.ChainUnaryInterceptor(unaryInterceptor(o.Authenticator)),
		grpc.ChainStreamInterceptor(streamInterceptor(o.Authenticator)),
		grpc.MaxSendMsgSize(o.MaxSendBytes),
		// Requests are small: a query and a range.
		grpc.MaxRecvMsgSize(1<<20),
	)
	server := grpc.NewServer(opts...)
	metricpb.RegisterProviderServiceServer(server, NewService(querier))
	return server, nil
}

// Listen binds o.Address and returns a function serving the ProviderService on it until its
// context ends. Binding first lets the caller fail at start-up on a taken port. Beyond loopback
// it refuses to serve without TLS.
func Listen(querier Querier, o ServerOptions) (serve func(ctx context.Context) error, err error) {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("gRPC address %q: %w", o.Address, err)
	}
	if !o.TLS.Enabled() && !IsLoopback(host) {
		return nil, fmt.Errorf("the gRPC ProviderService binds %q, beyond loopback: it needs --grpc-tls-cert-file and --grpc-tls-key-file, "+
			"or --grpc-bind-address=127.0.0.1", o.Address)
	}
	server, err := NewServer(querier, o)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("gRPC listen on %s: %w", o.Address, err)
	}
	return func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			server.GracefulStop()
		}()
		klog.InfoS("Serving Kapacity's gRPC metric ProviderService", "address", l.Addr().String(), "tls", o.TLS.Enabled())
		if err := server.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	}, nil
}

// IsLoopback reports whether host (a name or an IP) is loopback-only.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
