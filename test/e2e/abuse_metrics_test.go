package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/historyapi/client"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// tenant is a real unprivileged identity: a ServiceAccount token (TokenRequest) whose only RBAC
// is a Role in its own namespace to read every metrics API there.
type tenant struct {
	http      *client.HTTP
	grpc      *client.GRPC
	rest      rest.Interface
	tokenFile string
}

func newTenant(ctx context.Context, t *testing.T, env *stack.Adapter, ns string) *tenant {
	t.Helper()
	if _, err := bed.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupName, "custom.metrics.k8s.io", "external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		},
	}
	if _, err := bed.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bed.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tenant", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := bed.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "tenant", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(bed.Config)
	cfg.BearerToken = token.Status.Token
	tn := &tenant{tokenFile: filepath.Join(t.TempDir(), "token")}
	if err := os.WriteFile(tn.tokenFile, []byte(token.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	tn.http = historyHTTP(t, cfg)
	tn.grpc = historyGRPCWithToken(t, env, tn.tokenFile)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tn.rest = kube.CoreV1().RESTClient()
	return tn
}

// abuseWorkload is one namespace's Deployment web, fed by the simulator, with a predictive
// portrait, so that every metrics API has something to answer there.
func abuseWorkload(ctx context.Context, t *testing.T, env *stack.Adapter, ns string) (pod string) {
	t.Helper()
	createWorkload(ctx, t, env, ns, "web", 2, 20)
	pods, err := bed.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of %s/web: %v", ns, err)
	}
	dyn, err := dynamic.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	portraits := dyn.Resource(autoscalingv1alpha1.GroupVersion.WithResource("horizontalportraits")).Namespace(ns)
	hp := &autoscalingv1alpha1.HorizontalPortrait{
		TypeMeta:   metav1.TypeMeta{APIVersion: autoscalingv1alpha1.GroupVersion.String(), Kind: "HorizontalPortrait"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-predictive"},
		Spec: autoscalingv1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			PortraitSpec: autoscalingv1alpha1.PortraitSpec{PortraitType: "Predictive", ExternalGeneratorName: "e2e",
				Algorithm: autoscalingv1alpha1.PortraitAlgorithm{Type: "KubeHPA"}},
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hp)
	if err != nil {
		t.Fatal(err)
	}
	created, err := portraits.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expire := metav1.NewTime(time.Now().Add(time.Hour))
	statusObj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&autoscalingv1alpha1.HorizontalPortraitStatus{PortraitData: &autoscalingv1alpha1.HorizontalPortraitData{
		Type: autoscalingv1alpha1.TimeSeriesHorizontalPortraitDataType,
		TimeSeries: &autoscalingv1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: []autoscalingv1alpha1.ReplicaTimeSeriesPoint{
			{Timestamp: time.Now().Add(-time.Minute).Unix(), Replicas: 3},
		}},
		ExpireTime: &expire,
	}})
	if err != nil {
		t.Fatal(err)
	}
	created.Object["status"] = statusObj
	if _, err := portraits.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pods.Items[0].Name
}

var deploymentKind = schema.GroupKind{Group: "apps", Kind: "Deployment"}

// historyQueries are the seven query kinds by name, and the list forms, in namespace ns.
func historyQueries(ns, pod string) map[string]v1alpha1.Query {
	podKind := schema.GroupKind{Kind: "Pod"}
	return map[string]v1alpha1.Query{
		"PodResource":               {Kind: v1alpha1.PodResource, Namespace: ns, Name: pod, Resource: "cpu"},
		"ContainerResource":         {Kind: v1alpha1.ContainerResource, Namespace: ns, Name: pod, Resource: "memory", Container: "app"},
		"WorkloadResource":          {Kind: v1alpha1.WorkloadResource, Workload: deploymentKind, Namespace: ns, Name: "web", Resource: "memory"},
		"WorkloadContainerResource": {Kind: v1alpha1.WorkloadContainerResource, Workload: deploymentKind, Namespace: ns, Name: "web", Resource: "memory", Container: "app"},
		"Object":                    {Kind: v1alpha1.Object, Workload: podKind, Namespace: ns, Name: pod, Metric: "http_requests_per_second"},
		"External":                  {Kind: v1alpha1.External, Namespace: ns, Metric: "requests_per_second"},
		"WorkloadExternal":          {Kind: v1alpha1.WorkloadExternal, Workload: deploymentKind, Namespace: ns, Name: "web", Metric: "requests_per_second"},
		"PodResource list":          {Kind: v1alpha1.PodResource, Namespace: ns, Selector: "app=web", Resource: "memory"},
		"ContainerResource list":    {Kind: v1alpha1.ContainerResource, Namespace: ns, Selector: "app=web", Resource: "memory", Container: "app"},
		"Object list":               {Kind: v1alpha1.Object, Workload: podKind, Namespace: ns, Selector: "app=web", Metric: "http_requests_per_second"},
	}
}

// metricsPaths are the custom, external and resource metrics APIs' reads in namespace ns.
func metricsPaths(ns, pod string) map[string]string {
	return map[string]string{
		"custom pods":              "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second",
		"custom pod":               "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/" + pod + "/http_requests_per_second",
		"custom workload":          "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/deployments.apps/web/http_requests_per_second",
		"external":                 "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/requests_per_second",
		"predicted replicas":       "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/kapacity_predicted_replicas",
		"resource pods":            "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods",
		"resource pod":             "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods/" + pod,
		"history through raw HTTP": "/apis/" + v1alpha1.GroupName + "/" + v1alpha1.Version + "/namespaces/" + ns + "/workloadresources/web?kind=Deployment.apps&resource=memory",
	}
}

// getPath GETs a path with its query string through c.
func getPath(ctx context.Context, c rest.Interface, path string) ([]byte, error) {
	p, query, _ := strings.Cut(path, "?")
	req := c.Get().AbsPath(p)
	for _, kv := range strings.Split(query, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			req = req.Param(k, v)
		}
	}
	return req.DoRaw(ctx)
}

// TestAbuseMetricsTenantReadsOnlyItsNamespace: a ServiceAccount with RBAC in namespace A only is
// refused, every time, every read of namespace B and every cluster-scoped read, through the
// history API (the seven kinds, their list forms, cluster-scoped object kinds named through A),
// the gRPC ProviderService, custom metrics (pods, workload aggregates), external metrics
// (kapacity_predicted_replicas included) and metrics.k8s.io; the same reads of A succeed, so the
// refusals are not vacuous.
func TestAbuseMetricsTenantReadsOnlyItsNamespace(t *testing.T) {
	env := useAdapter(t)
	ctx := context.Background()
	if err := stack.InstallCRDs(ctx, bed); err != nil {
		t.Fatal(err)
	}
	nsA, nsB := newNamespace(ctx, t), newNamespace(ctx, t)
	podA, podB := abuseWorkload(ctx, t, env, nsA), abuseWorkload(ctx, t, env, nsB)
	tn := newTenant(ctx, t, env, nsA)
	admin := historyHTTP(t, bed.Config)
	adminGRPC := historyGRPC(t, env)

	t.Run("own namespace", func(t *testing.T) {
		for name, q := range historyQueries(nsA, podA) {
			poll.Until(ctx, t, 2*time.Minute, "history "+name+" in A over HTTP and gRPC", func(ctx context.Context) (string, bool, error) {
				got, err := tn.http.Latest(ctx, q)
				if err != nil {
					return "HTTP: " + err.Error(), false, nil
				}
				if len(got) == 0 {
					return "HTTP: no series yet", false, nil
				}
				if got, err = tn.grpc.Latest(ctx, q); err != nil || len(got) == 0 {
					return fmt.Sprintf("gRPC: %d series, %v", len(got), err), false, nil
				}
				return summarize(got), true, nil
			})
		}
		r := v1alpha1.Range{Start: time.Now().Add(-time.Minute), End: time.Now(), Step: 10 * time.Second}
		if _, err := tn.http.Range(ctx, historyQueries(nsA, podA)["WorkloadResource"], r); err != nil {
			t.Errorf("range of its own workload: %v", err)
		}
		for name, path := range metricsPaths(nsA, podA) {
			poll.Until(ctx, t, 2*time.Minute, name+" in A", func(ctx context.Context) (string, bool, error) {
				body, err := getPath(ctx, tn.rest, path)
				if err != nil {
					return err.Error(), false, nil
				}
				return string(body), true, nil
			})
		}
	})

	// Every read the tenant is refused is one the bed's admin gets (the data exists), except the
	// cluster-scoped reads whose metric does not exist: they are refused before anything is read.
	refusedHTTP := func(t *testing.T, what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: error %v, want Forbidden", what, err)
		}
	}
	refusedGRPC := func(t *testing.T, what string, err error) {
		t.Helper()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s over gRPC: error %v, want PermissionDenied", what, err)
		}
	}
	t.Run("other namespace", func(t *testing.T) {
		for name, q := range historyQueries(nsB, podB) {
			poll.Until(ctx, t, 2*time.Minute, "the admin reads "+name+" in B", func(ctx context.Context) (string, bool, error) {
				got, err := admin.Latest(ctx, q)
				if err == nil && len(got) > 0 {
					_, err = adminGRPC.Latest(ctx, q)
				}
				return fmt.Sprintf("%d series, %v", len(got), err), err == nil && len(got) > 0, nil
			})
			_, err := tn.http.Latest(ctx, q)
			refusedHTTP(t, name, err)
			_, err = tn.http.Range(ctx, q, v1alpha1.Range{Start: time.Now().Add(-time.Minute), End: time.Now(), Step: 10 * time.Second})
			refusedHTTP(t, name+" range", err)
			_, err = tn.grpc.Latest(ctx, q)
			refusedGRPC(t, name, err)
		}
		for name, path := range metricsPaths(nsB, podB) {
			poll.Until(ctx, t, 2*time.Minute, "the admin reads "+name+" in B", func(ctx context.Context) (string, bool, error) {
				body, err := getPath(ctx, bed.Client.CoreV1().RESTClient(), path)
				return string(body), err == nil, nil
			})
			_, err := getPath(ctx, tn.rest, path)
			refusedHTTP(t, name, err)
		}
	})

	t.Run("cluster scope", func(t *testing.T) {
		nodes, err := bed.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) == 0 {
			t.Fatalf("nodes: %v", err)
		}
		namespaceKind, nodeKind := schema.GroupKind{Kind: "Namespace"}, schema.GroupKind{Kind: "Node"}
		for name, q := range map[string]v1alpha1.Query{
			// The report: namespace B's metrics asked for through A's URL.
			"Namespace B through A":      {Kind: v1alpha1.Object, Workload: namespaceKind, Namespace: nsA, Name: nsB, Metric: "kube_pod_status_ready"},
			"every Namespace through A":  {Kind: v1alpha1.Object, Workload: namespaceKind, Namespace: nsA, Metric: "kube_pod_status_ready"},
			"a Node through A":           {Kind: v1alpha1.Object, Workload: nodeKind, Namespace: nsA, Name: nodes.Items[0].Name, Metric: "x"},
			"external of all namespaces": {Kind: v1alpha1.External, Metric: "requests_per_second"},
		} {
			_, err := tn.http.Latest(ctx, q)
			refusedHTTP(t, name, err)
			_, err = tn.grpc.Latest(ctx, q)
			refusedGRPC(t, name, err)
		}
		for name, path := range map[string]string{
			"history object, cluster URL":  "/apis/" + v1alpha1.GroupName + "/" + v1alpha1.Version + "/objects/" + nsB + "?kind=Namespace&metric=x",
			"custom metrics of nodes":      "/apis/custom.metrics.k8s.io/v1beta1/nodes/*/x",
			"custom metric of namespace B": "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + nsB + "/metrics/x",
			"resource metrics of nodes":    "/apis/metrics.k8s.io/v1beta1/nodes",
			"resource metrics of all pods": "/apis/metrics.k8s.io/v1beta1/pods",
		} {
			_, err := getPath(ctx, tn.rest, path)
			refusedHTTP(t, name, err)
		}
	})

	// Without a token, or with a forged one, the gRPC service answers nothing at all.
	t.Run("gRPC without a valid token", func(t *testing.T) {
		forged := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(forged, []byte("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"), 0o600); err != nil {
			t.Fatal(err)
		}
		q := historyQueries(nsA, podA)["WorkloadResource"]
		for name, c := range map[string]*client.GRPC{"no token": historyGRPCWithToken(t, env, ""), "forged token": historyGRPCWithToken(t, env, forged)} {
			if _, err := c.Latest(ctx, q); status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s: error %v, want Unauthenticated", name, err)
			}
		}
	})
}
