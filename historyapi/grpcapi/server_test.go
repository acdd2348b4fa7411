package grpcapi_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/historyapi/client"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// fakeQuerier records the query it got and answers series or err.
type fakeQuerier struct {
	got    v1alpha1.Query
	gotR   *v1alpha1.Range
	series []v1alpha1.Series
	err    error
}

func (f *fakeQuerier) Latest(_ context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error) {
	f.got, f.gotR = q, nil
	return f.series, f.err
}

// Range answers a copy, as the engine answers fresh series (the service releases them).
func (f *fakeQuerier) Range(_ context.Context, q v1alpha1.Query, r v1alpha1.Range) ([]v1alpha1.Series, error) {
	f.got, f.gotR = q, &r
	out := make([]v1alpha1.Series, len(f.series))
	for i, s := range f.series {
		out[i] = s
		out[i].Points = slices.Clone(s.Points)
	}
	return out, f.err
}

func serve(t *testing.T, q *fakeQuerier) *grpc.ClientConn {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	metricpb.RegisterProviderServiceServer(s, grpcapi.NewService(q))
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestEveryKindRoundTrips: each query kind, sent by the typed client as Kapacity's messages,
// reaches the querier unchanged, and the answer comes back unchanged.
func TestEveryKindRoundTrips(t *testing.T) {
	deploy := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	queries := []v1alpha1.Query{
		{Kind: v1alpha1.PodResource, Namespace: "prod", Name: "web-1", Resource: "cpu"},
		{Kind: v1alpha1.PodResource, Namespace: "prod", Selector: "app=web", Resource: "cpu"},
		{Kind: v1alpha1.ContainerResource, Namespace: "prod", Name: "web-1", Resource: "memory", Container: "app"},
		{Kind: v1alpha1.WorkloadResource, Workload: deploy, Namespace: "prod", Name: "web", Resource: "cpu", ReadyPodsOnly: true},
		{Kind: v1alpha1.WorkloadContainerResource, Workload: deploy, Namespace: "prod", Name: "web", Resource: "cpu", Container: "app", ReadyPodsOnly: true},
		{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Service"}, Namespace: "prod", Name: "fe", Metric: "rps", MetricSelector: "code=200"},
		{Kind: v1alpha1.External, Metric: "queue_depth", MetricSelector: "queue=a"},
		{Kind: v1alpha1.WorkloadExternal, Workload: deploy, Namespace: "prod", Name: "web", Metric: "ready_pods_count"},
	}
	series := []v1alpha1.Series{{
		Labels: map[string]string{"namespace": "prod"},
		Points: []v1alpha1.Point{{Timestamp: 1_700_000_000_000, Value: 1.5}, {Timestamp: 1_700_000_060_000, Value: 2}},
		Window: &metav1.Duration{Duration: 3 * time.Minute},
	}}
	fake := &fakeQuerier{series: series}
	c := client.NewGRPC(serve(t, fake))
	r := v1alpha1.Range{Start: time.Unix(1_700_000_000, 0).UTC(), End: time.Unix(1_700_000_060, 0).UTC(), Step: time.Minute}
	for _, q := range queries {
		got, err := c.Range(context.Background(), q, r)
		if err != nil {
			t.Fatalf("%s: %v", q.Kind, err)
		}
		if !reflect.DeepEqual(fake.got, q) || fake.gotR == nil || !reflect.DeepEqual(*fake.gotR, r) {
			t.Errorf("server got %+v %+v, want %+v %+v", fake.got, fake.gotR, q, r)
		}
		if !reflect.DeepEqual(got, series) {
			t.Errorf("%s: answer %+v, want %+v", q.Kind, got, series)
		}
		latest, err := c.Latest(context.Background(), q)
		if err != nil || len(latest) != 2 || fake.gotR != nil {
			t.Errorf("%s latest: %+v, %v", q.Kind, latest, err)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{apierrors.NewBadRequest("step must be positive"), codes.InvalidArgument},
		{apierrors.NewNotFound(schema.GroupResource{Resource: "metrics"}, "x"), codes.NotFound},
		{apierrors.NewServiceUnavailable("prometheus down"), codes.Unavailable},
		{apierrors.NewInternalError(context.DeadlineExceeded), codes.Internal},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "objects"}, "x", errors.New("no")), codes.PermissionDenied},
		{apierrors.NewTooManyRequests("4 history queries were running", 1), codes.ResourceExhausted},
	}
	for _, tc := range tests {
		conn := serve(t, &fakeQuerier{err: tc.err})
		_, err := client.NewGRPC(conn).Latest(context.Background(), v1alpha1.Query{Kind: v1alpha1.External, Metric: "m"})
		if status.Code(err) != tc.want || status.Convert(err).Message() != tc.err.Error() {
			t.Errorf("error %v -> %v, want code %s with the same message", tc.err, err, tc.want)
		}
	}
	// An unknown query type is rejected before the querier.
	_, err := metricpb.NewProviderServiceClient(serve(t, &fakeQuerier{})).QueryLatest(context.Background(),
		&metricpb.QueryLatestRequest{Query: &metricpb.Query{Type: 42}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown type: %v", err)
	}
}
