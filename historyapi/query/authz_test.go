package query

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// namespaceAuthorizer allows everything in one namespace, as a RoleBinding of
// kapacity-history-reader there would, and records what it was asked.
type namespaceAuthorizer struct {
	namespace string
	mu        sync.Mutex
	asked     []string
}

func (a *namespaceAuthorizer) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, fmt.Sprintf("%s %s/%s ns=%q name=%q user=%s", attrs.GetVerb(), attrs.GetAPIGroup(), attrs.GetResource(),
		attrs.GetNamespace(), attrs.GetName(), attrs.GetUser().GetName()))
	if attrs.GetNamespace() == a.namespace && attrs.GetAPIGroup() == v1alpha1.GroupName && attrs.IsResourceRequest() {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC rule", nil
}

// TestEveryQueryIsAuthorizedOnWhatItReads: a caller allowed in namespace "mine" only reads
// "mine". Each query is authorized as the caller against the namespace it actually reads:
// cluster-scoped object kinds, external metrics of rules with namespaced: false and queries
// without a namespace need cluster-scoped rights, whatever namespace the request names.
func TestEveryQueryIsAuthorizedOnWhatItReads(t *testing.T) {
	node := schema.GroupKind{Kind: "Node"}
	namespace := schema.GroupKind{Kind: "Namespace"}
	service := schema.GroupKind{Kind: "Service"}
	tests := []struct {
		name      string
		q         v1alpha1.Query
		wantAsked string // the authorization request
		allowed   bool
	}{
		{"pod resource", v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "mine", Name: "web-1", Resource: "cpu"},
			`get history.metrics.kapacitystack.io/podresources ns="mine" name="web-1"`, true},
		{"pod resource by selector", v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "mine", Selector: "app=web", Resource: "cpu"},
			`list history.metrics.kapacitystack.io/podresources ns="mine" name=""`, true},
		{"container resource, other namespace", v1alpha1.Query{Kind: v1alpha1.ContainerResource, Namespace: "theirs", Name: "web-1", Resource: "cpu", Container: "app"},
			`get history.metrics.kapacitystack.io/containerresources ns="theirs" name="web-1"`, false},
		{"workload resource", v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "mine", Name: "web", Resource: "cpu"},
			`get history.metrics.kapacitystack.io/workloadresources ns="mine" name="web"`, true},
		{"workload container resource, other namespace", v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: deployment, Namespace: "theirs", Name: "web", Resource: "cpu", Container: "app"},
			`get history.metrics.kapacitystack.io/workloadcontainerresources ns="theirs" name="web"`, false},
		{"object", v1alpha1.Query{Kind: v1alpha1.Object, Workload: service, Namespace: "mine", Name: "fe", Metric: "http_requests_per_second"},
			`get history.metrics.kapacitystack.io/objects ns="mine" name="fe"`, true},
		{"objects by selector, other namespace", v1alpha1.Query{Kind: v1alpha1.Object, Workload: service, Namespace: "theirs", Selector: "a=b", Metric: "http_requests_per_second"},
			`list history.metrics.kapacitystack.io/objects ns="theirs" name=""`, false},
		// The report: the URL's namespace was authorized, then dropped for a cluster-scoped kind.
		{"another team's Namespace through my namespace", v1alpha1.Query{Kind: v1alpha1.Object, Workload: namespace, Namespace: "mine", Name: "theirs", Metric: "m"},
			`get history.metrics.kapacitystack.io/objects ns="" name="theirs"`, false},
		{"every Namespace by selector through my namespace", v1alpha1.Query{Kind: v1alpha1.Object, Workload: namespace, Namespace: "mine", Metric: "m"},
			`list history.metrics.kapacitystack.io/objects ns="" name=""`, false},
		{"a Node through my namespace", v1alpha1.Query{Kind: v1alpha1.Object, Workload: node, Namespace: "mine", Name: "n1", Metric: "node_load1"},
			`get history.metrics.kapacitystack.io/objects ns="" name="n1"`, false},
		{"external", v1alpha1.Query{Kind: v1alpha1.External, Namespace: "mine", Metric: "ready_pods_count"},
			`get history.metrics.kapacitystack.io/externalmetrics ns="mine" name="ready_pods_count"`, true},
		{"external of every namespace", v1alpha1.Query{Kind: v1alpha1.External, Metric: "ready_pods_count"},
			`get history.metrics.kapacitystack.io/externalmetrics ns="" name="ready_pods_count"`, false},
		{"external whose rule spans namespaces", v1alpha1.Query{Kind: v1alpha1.External, Namespace: "mine", Metric: "queue_depth"},
			`get history.metrics.kapacitystack.io/externalmetrics ns="" name="queue_depth"`, false},
		{"workload external", v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: deployment, Namespace: "mine", Name: "web", Metric: "ready_pods_count"},
			`get history.metrics.kapacitystack.io/workloadexternalmetrics ns="mine" name="web"`, true},
		{"workload external, other namespace", v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: deployment, Namespace: "theirs", Name: "web", Metric: "ready_pods_count"},
			`get history.metrics.kapacitystack.io/workloadexternalmetrics ns="theirs" name="web"`, false},
	}
	start := time.Unix(1_700_000_000, 0)
	r := v1alpha1.Range{Start: start, End: start.Add(time.Hour), Step: time.Minute}
	for _, tc := range tests {
		for _, ranged := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/range=%v", tc.name, ranged), func(t *testing.T) {
				authz := &namespaceAuthorizer{namespace: "mine"}
				f := newFixture(t, Options{Authorizer: authz})
				ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "tenant"})
				var err error
				if ranged {
					_, err = f.engine.Range(ctx, tc.q, r)
				} else {
					_, err = f.engine.Latest(ctx, tc.q)
				}
				asked := strings.Join(authz.asked, "; ")
				if !strings.Contains(asked, tc.wantAsked+" user=tenant") {
					t.Errorf("authorization asked %q, want %q", asked, tc.wantAsked)
				}
				if tc.allowed {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if !apierrors.IsForbidden(err) {
					t.Fatalf("error = %v, want Forbidden", err)
				}
				if len(f.querier.queries) != 0 || len(f.lister.asked) != 0 {
					t.Errorf("read before refusing: Prometheus %q, lists %q", f.querier.queries, f.lister.asked)
				}
			})
		}
	}
}

// TestNoCallerNoAnswer: a context without an authenticated user is refused, so a front end that
// forgets to authenticate fails closed.
func TestNoCallerNoAnswer(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := f.engine.Latest(context.Background(), v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("error = %v, want Forbidden", err)
	}
}

// TestWorkloadExternalStaysInItsNamespace: a workload lives in one namespace, so its external
// query keeps the namespace matcher even on a rule with namespaced: false, which would otherwise
// sum the same-named pods of every namespace.
func TestWorkloadExternalStaysInItsNamespace(t *testing.T) {
	f := newFixture(t, Options{})
	plan, err := f.engine.Plan(adminCtx(), v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: deployment, Namespace: "mine", Name: "web", Metric: "queue_depth"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Queries) != 1 || !strings.Contains(plan.Queries[0], `namespace="mine"`) {
		t.Errorf("queries %q lack the namespace matcher", plan.Queries)
	}
}
