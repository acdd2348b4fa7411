package grpcapi_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kapacitystack/kapacity/historyapi/client"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// tokens authenticates a fixed set of tokens, as TokenReview would.
type tokens map[string]string

func (t tokens) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	name, ok := t[token]
	if !ok {
		return nil, false, errors.New("token not found")
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
}

// callerQuerier records who called; panics when asked to.
type callerQuerier struct {
	fakeQuerier
	caller string
	panic  bool
}

func (c *callerQuerier) Latest(ctx context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error) {
	if c.panic {
		panic("boom")
	}
	if u, ok := request.UserFrom(ctx); ok {
		c.caller = u.GetName()
	}
	return c.fakeQuerier.Latest(ctx, q)
}

func serveSecured(t *testing.T, q grpcapi.Querier) *bufconn.Listener {
	t.Helper()
	s, err := grpcapi.NewServer(q, grpcapi.ServerOptions{Authenticator: tokens{"good": "system:serviceaccount:team-a:kapacity-algorithm-job"}})
	if err != nil {
		t.Fatal(err)
	}
	l := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l
}

// dial connects with the typed client, sending the token in file (none when file is "").
func dial(t *testing.T, l *bufconn.Listener, tokenFile string) *client.GRPC {
	t.Helper()
	c, err := client.DialGRPC(client.GRPCOptions{Address: "127.0.0.1:1", TokenFile: tokenFile},
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func tokenFile(t *testing.T, token string) string {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCallersAreAuthenticated: the ProviderService answers only calls with a Kubernetes token
// that TokenReview accepts, and hands the querier (which authorizes per namespace) that caller.
func TestCallersAreAuthenticated(t *testing.T) {
	q := &callerQuerier{}
	l := serveSecured(t, q)
	query := v1alpha1.Query{Kind: v1alpha1.External, Namespace: "team-a", Metric: "m"}
	for name, file := range map[string]string{"no token": "", "bad token": tokenFile(t, "bad")} {
		_, err := dial(t, l, file).Latest(context.Background(), query)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: error %v, want Unauthenticated", name, err)
		}
	}
	// A raw client without any credentials at all.
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := client.NewGRPC(conn).Latest(context.Background(), query); status.Code(err) != codes.Unauthenticated ||
		!strings.Contains(err.Error(), "authorization: Bearer") {
		t.Errorf("no credentials: error %v, want Unauthenticated saying how to send a token", err)
	}
	if q.caller != "" {
		t.Fatalf("the querier was called by %q without a valid token", q.caller)
	}
	if _, err := dial(t, l, tokenFile(t, "good")).Latest(context.Background(), query); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if q.caller != "system:serviceaccount:team-a:kapacity-algorithm-job" {
		t.Errorf("the querier saw caller %q", q.caller)
	}
}

// TestHandlerPanicIsAnError: a panicking handler answers Internal and the server keeps serving.
func TestHandlerPanicIsAnError(t *testing.T) {
	q := &callerQuerier{panic: true}
	c := dial(t, serveSecured(t, q), tokenFile(t, "good"))
	query := v1alpha1.Query{Kind: v1alpha1.External, Namespace: "team-a", Metric: "m"}
	if _, err := c.Latest(context.Background(), query); status.Code(err) != codes.Internal {
		t.Fatalf("error %v, want Internal", err)
	}
	q.panic = false
	if _, err := c.Latest(context.Background(), query); err != nil {
		t.Fatalf("the server did not survive the panic: %v", err)
	}
}

// TestListenRefusesExposedPlaintext: beyond loopback the service needs TLS, since tokens travel
// with every call; on loopback plaintext is allowed.
func TestListenRefusesExposedPlaintext(t *testing.T) {
	auth := tokens{}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		if _, err := grpcapi.Listen(&fakeQuerier{}, grpcapi.ServerOptions{Address: addr, Authenticator: auth}); err == nil ||
			!strings.Contains(err.Error(), "--grpc-tls-cert-file") {
			t.Errorf("%s without TLS: error %v, want one naming --grpc-tls-cert-file", addr, err)
		}
	}
	serve, err := grpcapi.Listen(&fakeQuerier{}, grpcapi.ServerOptions{Address: "127.0.0.1:0", Authenticator: auth})
	if err != nil || serve == nil {
		t.Fatalf("loopback plaintext: %v", err)
	}
	if _, err := grpcapi.Listen(&fakeQuerier{}, grpcapi.ServerOptions{Address: "127.0.0.1:0"}); err == nil {
		t.Error("a server without an authenticator started")
	}
}
