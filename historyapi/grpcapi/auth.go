package grpcapi

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/token/cache"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/klog/v2"
)

// MaxTokenBytes bounds the bearer token a call may carry; Kubernetes' own tokens are a few KiB.
const MaxTokenBytes = 16 << 10

// NewTokenReviewAuthenticator checks bearer tokens with kube-apiserver's TokenReview (for the
// API server's own audiences), caching answers briefly as the aggregated API server does: 10 s for
// a valid token, 10 s for a rejected one.
func NewTokenReviewAuthenticator(client authenticationv1client.AuthenticationV1Interface) (authenticator.Token, error) {
	noop := func(context.Context, string) {}
	reviewer, err := webhook.NewFromInterface(client, nil, wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5},
		10*time.Second, webhook.AuthenticatorMetrics{
			RecordRequestTotal:   noop,
			RecordRequestLatency: func(context.Context, string, float64) {},
		})
	if err != nil {
		return nil, fmt.Errorf("token review client: %w", err)
	}
	return cache.New(reviewer, false, 10*time.Second, 10*time.Second), nil
}

// authenticate puts the caller of a call, from its "authorization: Bearer <token>" metadata,
// into the context (request.WithUser), where the querier's authorization finds it.
func authenticate(ctx context.Context, tokens authenticator.Token) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) != 1 {
		return nil, status.Error(codes.Unauthenticated, "send a Kubernetes token as the metadata authorization: Bearer <token> "+
			"(kapacity recommend: --metrics-server-token-file, by default the pod's ServiceAccount token)")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, status.Error(codes.Unauthenticated, "the authorization metadata must be Bearer <token>")
	}
	if len(token) > MaxTokenBytes {
		return nil, status.Errorf(codes.Unauthenticated, "the bearer token is longer than %d bytes", MaxTokenBytes)
	}
	resp, ok, err := tokens.AuthenticateToken(ctx, token)
	if err != nil || !ok || resp == nil || resp.User == nil {
		klog.V(2).InfoS("gRPC call with a token that did not authenticate", "err", err)
		return nil, status.Error(codes.Unauthenticated, "the bearer token was not accepted by the TokenReview API")
	}
	return request.WithUser(ctx, resp.User), nil
}

// unaryInterceptor recovers panics, then authenticates, then calls the handler.
func unaryInterceptor(tokens authenticator.Token) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (_ any, err error) {
		defer recoverInto(info.FullMethod, &err)
		ctx, err = authenticate(ctx, tokens)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// streamInterceptor does the same for streams (the ProviderService has none today; a future one
// must not skip authentication).
func streamInterceptor(tokens authenticator.Token) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer recoverInto(info.FullMethod, &err)
		ctx, err := authenticate(ss.Context(), tokens)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// recoverInto turns a handler's panic into an Internal error, so that one bad request never takes
// the adapter (and every HPA's metrics) down.
func recoverInto(method string, err *error) {
	if r := recover(); r != nil {
		klog.ErrorS(fmt.Errorf("%v", r), "Recovered a panic in a gRPC handler", "method", method, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error in %s", method)
	}
}
