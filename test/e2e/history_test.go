package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kapacitystack/kapacity/historyapi/client"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

var historyDeployment = schema.GroupKind{Group: "apps", Kind: "Deployment"}

// historyCase is a query over the backfilled history and the value it must give at minute i.
type historyCase struct {
	name   string
	q      v1alpha1.Query
	labels map[string]string
	window bool
	value  func(i int) float64
}

func historyCases() []historyCase {
	podMem := func(p, i int) float64 { return histMemory(p, "app", i) + histMemory(p, "sidecar", i) }
	return []historyCase{
		{
			name:   "workload resource",
			q:      v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: historyDeployment, Namespace: historyNS, Name: "web", Resource: "memory"},
			labels: map[string]string{"namespace": historyNS}, window: true,
			value: func(i int) float64 { return podMem(0, i) + podMem(1, i) },
		},
		{
			name:   "workload resource, ready pods only",
			q:      v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: historyDeployment, Namespace: historyNS, Name: "web", Resource: "memory", ReadyPodsOnly: true},
			labels: map[string]string{"namespace": historyNS}, window: true,
			value: func(i int) float64 { return podMem(0, i)*histReady(0, i) + podMem(1, i)*histReady(1, i) },
		},
		{
			name:   "workload container resource",
			q:      v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: historyDeployment, Namespace: historyNS, Name: "web", Resource: "memory", Container: "app"},
			labels: map[string]string{"namespace": historyNS}, window: true,
			value: func(i int) float64 { return histMemory(0, "app", i) + histMemory(1, "app", i) },
		},
		{
			name:   "pod resource",
			q:      v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: historyNS, Name: historyPods[2], Resource: "memory"},
			labels: map[string]string{"pod": historyPods[2]}, window: true,
			value: func(i int) float64 { return podMem(2, i) },
		},
		{
			name:   "container resource",
			q:      v1alpha1.Query{Kind: v1alpha1.ContainerResource, Namespace: historyNS, Name: historyPods[1], Resource: "memory", Container: "sidecar"},
			labels: map[string]string{"pod": historyPods[1]}, window: true,
			value: func(i int) float64 { return histMemory(1, "sidecar", i) },
		},
		{
			name:   "object",
			q:      v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Pod"}, Namespace: historyNS, Name: historyPods[1], Metric: "history_queue_length"},
			labels: map[string]string{"pod": historyPods[1]},
			value:  func(i int) float64 { return histQueueLength(1, i) },
		},
		{
			name:   "external",
			q:      v1alpha1.Query{Kind: v1alpha1.External, Namespace: historyNS, Metric: "history_inflight", MetricSelector: "pod=" + historyPods[0]},
			labels: map[string]string{},
			value:  func(i int) float64 { return histInflight(0, i) },
		},
		{
			name:   "workload external",
			q:      v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: historyDeployment, Namespace: historyNS, Name: "web", Metric: "history_inflight"},
			labels: map[string]string{},
			value:  func(i int) float64 { return histInflight(0, i) + histInflight(1, i) },
		},
	}
}

// checkSeries checks one answer: one series with the case's labels, and, for every point, the
// grid timestamp and the synthetic value of the minute it falls in.
func checkSeries(t *testing.T, tc historyCase, r v1alpha1.Range, got []v1alpha1.Series) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%d series, want 1: %s", len(got), summarize(got))
	}
	s := got[0]
	if !reflect.DeepEqual(s.Labels, tc.labels) {
		t.Errorf("labels = %v, want %v", s.Labels, tc.labels)
	}
	if tc.window != (s.Window != nil) || (s.Window != nil && s.Window.Duration != 3*time.Minute) {
		t.Errorf("window = %v, want set=%v (3m, the default config's resourceRules.window)", s.Window, tc.window)
	}
	if int64(len(s.Points)) != r.Points() {
		t.Fatalf("%d points, want %d", len(s.Points), r.Points())
	}
	bad := 0
	for k, p := range s.Points {
		at := r.Start.Add(time.Duration(k) * r.Step)
		minute := int(at.Sub(historyStart) / time.Minute)
		if p.Timestamp != at.UnixMilli() || float64(p.Value) != tc.value(minute) {
			if bad++; bad <= 5 {
				t.Errorf("point %d = {%d %v}, want {%d %v} (minute %d)", k, p.Timestamp, p.Value, at.UnixMilli(), tc.value(minute), minute)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d points wrong", bad, len(s.Points))
	}
}

func summarize(series []v1alpha1.Series) string {
	var parts []string
	for _, s := range series {
		parts = append(parts, fmt.Sprintf("%v (%d points)", s.Labels, len(s.Points)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func historyHTTP(t *testing.T, cfg *rest.Config) *client.HTTP {
	t.Helper()
	c, err := client.NewHTTPForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// historyGRPC is a gRPC client of the adapter that authenticates as the bed's history reader
// (cluster-wide read).
func historyGRPC(t testing.TB, env *stack.Adapter) *client.GRPC {
	t.Helper()
	return historyGRPCWithToken(t, env, env.GRPCTokenFile)
}

func historyGRPCWithToken(t testing.TB, env *stack.Adapter, tokenFile string) *client.GRPC {
	t.Helper()
	c, err := client.DialGRPC(client.GRPCOptions{Address: env.GRPCAddr, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitDiscovered waits until discovery knows the history's object and external metrics.
func waitDiscovered(ctx context.Context, t *testing.T, c client.Interface) {
	t.Helper()
	for _, q := range []v1alpha1.Query{
		{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Pod"}, Namespace: historyNS, Name: historyPods[0], Metric: "history_queue_length"},
		{Kind: v1alpha1.External, Namespace: historyNS, Metric: "history_inflight"},
	} {
		poll.Until(ctx, t, time.Minute, fmt.Sprintf("%s %s discovered", q.Kind, q.Metric), func(ctx context.Context) (string, bool, error) {
			_, err := c.Latest(ctx, q)
			if err != nil {
				return err.Error(), false, nil
			}
			return "answered", true, nil
		})
	}
}

// TestHistoryRangeThroughAPIServer: each query kind over 3 days at one minute, through
// kube-apiserver, gives every point with the backfilled value; the gRPC service gives the same
// series.
func TestHistoryRangeThroughAPIServer(t *testing.T) {
	env := useHistory(t)
	ctx := context.Background()
	httpClient := historyHTTP(t, bed.Config)
	grpcClient := historyGRPC(t, env)
	waitDiscovered(ctx, t, httpClient)
	r := v1alpha1.Range{Start: historyEnd.Add(-3 * 24 * time.Hour), End: historyEnd, Step: time.Minute}
	for _, tc := range historyCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := httpClient.Range(ctx, tc.q, r)
			if err != nil {
				t.Fatalf("HTTP: %v", err)
			}
			checkSeries(t, tc, r, got)
			viaGRPC, err := grpcClient.Range(ctx, tc.q, r)
			if err != nil {
				t.Fatalf("gRPC: %v", err)
			}
			if !reflect.DeepEqual(viaGRPC, got) {
				t.Errorf("gRPC answer differs from HTTP: %s vs %s", summarize(viaGRPC), summarize(got))
			}
		})
	}
}

// TestHistoryShardedRange: 3 days at 10s are 25,921 points, three shards for Prometheus; merged,
// they give every point once, in order.
func TestHistoryShardedRange(t *testing.T) {
	env := useHistory(t)
	ctx := context.Background()
	tc := historyCases()[0]
	r := v1alpha1.Range{Start: historyEnd.Add(-3 * 24 * time.Hour), End: historyEnd, Step: 10 * time.Second}
	for name, c := range map[string]client.Interface{"http": historyHTTP(t, bed.Config), "grpc": historyGRPC(t, env)} {
		t.Run(name, func(t *testing.T) {
			began := time.Now()
			got, err := c.Range(ctx, tc.q, r)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d points in %s", r.Points(), time.Since(began).Round(time.Millisecond))
			checkSeries(t, tc, r, got)
		})
	}
}

// TestHistoryLatest: without a range the answer is the value at now, one point per series.
func TestHistoryLatest(t *testing.T) {
	env := useHistory(t)
	ctx := context.Background()
	q := v1alpha1.Query{Kind: v1alpha1.External, Namespace: historyNS, Metric: "history_inflight", MetricSelector: "pod=live-0"}
	for name, c := range map[string]client.Interface{"http": historyHTTP(t, bed.Config), "grpc": historyGRPC(t, env)} {
		t.Run(name, func(t *testing.T) {
			waitDiscovered(ctx, t, c)
			// Discovery may know the metric from the backfilled history before the live
			// target's first scrape (VictoriaMetrics lists a day's series), so wait for it.
			poll.Until(ctx, t, time.Minute, "one recent point of value 0", func(ctx context.Context) (string, bool, error) {
				got, err := c.Latest(ctx, q)
				if err != nil {
					return err.Error(), false, nil
				}
				ok := len(got) == 1 && len(got[0].Points) == 1 && got[0].Points[0].Value == 0 &&
					time.Since(time.UnixMilli(got[0].Points[0].Timestamp)) <= time.Minute
				return fmt.Sprintf("%s %+v", summarize(got), got), ok, nil
			})
		})
	}
}

// TestHistoryBadRequests: requests that cannot be answered are 400s saying what is wrong, over
// HTTP (Status) and gRPC (InvalidArgument).
func TestHistoryBadRequests(t *testing.T) {
	env := useHistory(t)
	ctx := context.Background()
	workload := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: historyDeployment, Namespace: historyNS, Name: "web", Resource: "memory"}
	unknownKind, unknownResource := workload, workload
	unknownKind.Workload = schema.GroupKind{Group: "apps", Kind: "Widget"}
	unknownResource.Resource = "gpu"
	tests := []struct {
		name string
		q    v1alpha1.Query
		r    v1alpha1.Range
		want string
	}{
		{"unknown workload kind", unknownKind, v1alpha1.Range{Start: historyStart, End: historyEnd, Step: time.Hour}, `unknown workload type "Widget.apps"`},
		{"unknown resource", unknownResource, v1alpha1.Range{Start: historyStart, End: historyEnd, Step: time.Hour}, `unsupported resource "gpu"`},
		{"step 0", workload, v1alpha1.Range{Start: historyStart, End: historyEnd}, "step must be positive"},
		{"end before start", workload, v1alpha1.Range{Start: historyEnd, End: historyStart, Step: time.Minute}, "is before start"},
		{"too many points", workload, v1alpha1.Range{Start: historyStart, End: historyEnd, Step: time.Second}, "more than the limit of 200000"},
	}
	httpClient, grpcClient := historyHTTP(t, bed.Config), historyGRPC(t, env)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpClient.Range(ctx, tc.q, tc.r)
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("HTTP error = %v, want a 400 saying %q", err, tc.want)
			}
			_, err = grpcClient.Range(ctx, tc.q, tc.r)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("gRPC error = %v, want InvalidArgument saying %q", err, tc.want)
			}
		})
	}
	// A malformed parameter never reaches the engine.
	err := bed.Client.CoreV1().RESTClient().Get().AbsPath("/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/"+historyNS+"/workloadresources/web").
		Param("kind", "Deployment.apps").Param("resource", "memory").Param("start", "yesterday").Param("step", "1m").Do(ctx).Error()
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `start: "yesterday" is neither RFC 3339 nor Unix seconds`) {
		t.Errorf("bad start: %v", err)
	}
}

// TestHistoryRBAC: a ServiceAccount reads the history only where RBAC lets it: a Role on
// workloadresources in one namespace allows exactly that, and `kubectl auth can-i` agrees.
func TestHistoryRBAC(t *testing.T) {
	useHistory(t)
	ctx := context.Background()
	saNS := newNamespace(ctx, t)
	otherNS := newNamespace(ctx, t)
	if _, err := bed.Client.CoreV1().ServiceAccounts(saNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + saNS + ":reader"
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "history-reader-" + saNS},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupName}, Resources: []string{"workloadresources"}, Verbs: []string{"get"}}},
	}
	// The history's namespace holds no objects; it must exist for the Role.
	if _, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: historyNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	createRBAC(ctx, t, role, user)

	impersonated := rest.CopyConfig(bed.Config)
	impersonated.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"}}
	c := historyHTTP(t, impersonated)
	r := v1alpha1.Range{Start: historyEnd.Add(-time.Hour), End: historyEnd, Step: time.Minute}
	allowed := historyCases()[0]

	// Granted: polled, since the adapter caches authorization decisions for a few seconds.
	poll.Until(ctx, t, 30*time.Second, "workloadresources readable with the Role", func(ctx context.Context) (string, bool, error) {
		got, err := c.Range(ctx, allowed.q, r)
		if err != nil {
			return err.Error(), false, nil
		}
		return summarize(got), len(got) == 1 && len(got[0].Points) == 61, nil
	})

	denied := []struct {
		name string
		q    v1alpha1.Query
	}{
		{"same resource, namespace without a Role", func() v1alpha1.Query { q := allowed.q; q.Namespace = otherNS; return q }()},
		{"other resource in the Role's namespace", historyCases()[3].q},
		{"cluster-wide external metric", v1alpha1.Query{Kind: v1alpha1.External, Metric: "history_inflight"}},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Range(ctx, tc.q, r)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("error = %v, want Forbidden", err)
			}
			t.Logf("denied as expected: %v", err)
		})
	}
	for ns, want := range map[string]string{historyNS: "yes", otherNS: "no"} {
		out, _ := kubectl(ctx, "auth", "can-i", "get", "workloadresources."+v1alpha1.GroupName, "-n", ns, "--as", user)
		if strings.TrimSpace(out) != want {
			t.Errorf("kubectl auth can-i in %s = %q, want %q", ns, strings.TrimSpace(out), want)
		}
	}
}

func createRBAC(ctx context.Context, t *testing.T, role *rbacv1.Role, user string) {
	t.Helper()
	if _, err := bed.Client.RbacV1().Roles(historyNS).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err := bed.Client.RbacV1().RoleBindings(historyNS).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHistoryDiscovery: the group is in discovery, with one resource per query kind, and
// kubectl lists them.
func TestHistoryDiscovery(t *testing.T) {
	useAdapter(t)
	ctx := context.Background()
	list, err := bed.Client.Discovery().ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list.APIResources {
		names = append(names, r.Name)
	}
	for _, k := range v1alpha1.Kinds {
		if !strings.Contains(strings.Join(names, ","), k.Resource()) {
			t.Errorf("discovery lists %v, missing %s", names, k.Resource())
		}
	}
	raw, err := getRaw(ctx, "/apis/"+v1alpha1.GroupName)
	if err != nil {
		t.Fatal(err)
	}
	var group metav1.APIGroup
	if err := json.Unmarshal(raw, &group); err != nil || group.PreferredVersion.Version != v1alpha1.Version {
		t.Errorf("group document %s: %v", raw, err)
	}
	poll.Until(ctx, t, 30*time.Second, "kubectl api-resources lists the history group", func(ctx context.Context) (string, bool, error) {
		out, err := kubectl(ctx, "api-resources", "--api-group="+v1alpha1.GroupName, "--no-headers")
		if err != nil {
			return err.Error(), false, nil
		}
		return out, strings.Contains(out, "workloadresources") && strings.Contains(out, "podresources"), nil
	})
}
