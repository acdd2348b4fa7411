package deploymanager

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// rulesOf decodes the YAML documents and returns the rules of the ClusterRole or Role kind/name.
func rulesOf(t *testing.T, manifests []byte, kind, name string) []rbacv1.PolicyRule {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if u.GetKind() != kind || u.GetName() != name {
			continue
		}
		raw, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		var role rbacv1.ClusterRole // a Role has the same rules field
		if err := yaml.UnmarshalStrict(raw, &role); err != nil {
			t.Fatal(err)
		}
		return role.Rules
	}
	t.Fatalf("no %s %s in the manifests", kind, name)
	return nil
}

// allows is RBAC's rule matching for one resource request (as k8s.io/component-helpers/auth/rbac
// does it): a rule allows the request if verb, group, resource and, when it lists any,
// resourceNames match; "*" matches everything.
func allows(rules []rbacv1.PolicyRule, verb, group, resource, name string) bool {
	match := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	for _, r := range rules {
		if match(r.Verbs, verb) && match(r.APIGroups, group) && match(r.Resources, resource) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

type request struct {
	verb, group, resource, name string
	want                        bool
}

func check(t *testing.T, rules []rbacv1.PolicyRule, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		if got := allows(rules, r.verb, r.group, r.resource, r.name); got != r.want {
			t.Errorf("%s %s.%s %q: allowed %t, want %t", r.verb, r.resource, r.group, r.name, got, r.want)
		}
	}
}

// TestAlgorithmJobRole: the job may read its portrait and history and write its result, and
// nothing that would let a portrait's author read Secrets, run pods or widen its own rights.
func TestAlgorithmJobRole(t *testing.T) {
	rules := rulesOf(t, AlgorithmJobRBAC(), "ClusterRole", "kapacity-algorithm-job")
	const history = "history.metrics.kapacitystack.io"
	check(t, rules, []request{
		{"get", "autoscaling.kapacitystack.io", "horizontalportraits", "web-predictive", true},
		{"get", history, "workloadresources", "web", true},
		{"list", history, "objects", "", true},
		{"get", history, "externalmetrics", "x", true},
		{"get", "", "configmaps", "web-predictive-result", true},
		{"create", "", "configmaps", "", true},
		{"update", "", "configmaps", "web-predictive-result", true},
		{"get", "apps", "statefulsets", "web", true},
		{"list", "", "pods", "", true},

		{"get", "", "secrets", "any", false},
		{"list", "", "secrets", "", false},
		{"watch", "", "configmaps", "", false},
		{"delete", "", "configmaps", "web-predictive-result", false},
		{"create", "", "pods", "", false},
		{"get", "", "pods", "web-0", false},
		{"create", "", "pods/exec", "", false},
		{"create", "batch", "cronjobs", "", false},
		{"create", "batch", "jobs", "", false},
		{"create", "", "serviceaccounts/token", "kapacity-manager", false},
		{"update", "autoscaling.kapacitystack.io", "horizontalportraits", "web-predictive", false},
		{"update", "autoscaling.kapacitystack.io", "horizontalportraits/status", "web-predictive", false},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", false},
		{"patch", "apps", "statefulsets/scale", "web", false},
	})
	for _, r := range rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.APIGroups, "*") || slices.Contains(r.Verbs, "escalate") ||
			slices.Contains(r.Verbs, "bind") || slices.Contains(r.Verbs, "impersonate") || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v is wider than a job needs", r)
		}
	}
}

// TestManagerRoles: the manager's rights over Secrets, ServiceAccounts and RoleBindings are
// limited by name wherever Kubernetes allows it, and it may bind only the jobs' ClusterRole.
func TestManagerRoles(t *testing.T) {
	cluster := rulesOf(t, ManagerRBAC(), "ClusterRole", "kapacity-manager")
	check(t, cluster, []request{
		{"create", "", "serviceaccounts", "", true},
		{"get", "", "serviceaccounts", "kapacity-algorithm-job", true},
		{"patch", "", "serviceaccounts", "kapacity-algorithm-job", true},
		{"get", "", "serviceaccounts", "default", false},
		{"patch", "", "serviceaccounts", "default", false},
		{"create", "", "serviceaccounts/token", "kapacity-algorithm-job", false},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", true},
		{"patch", "rbac.authorization.k8s.io", "rolebindings", "kapacity-algorithm-job", true},
		{"patch", "rbac.authorization.k8s.io", "rolebindings", "admin", false},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "kapacity-algorithm-job", true},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "cluster-admin", false},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "admin", false},
		{"escalate", "rbac.authorization.k8s.io", "clusterroles", "kapacity-algorithm-job", false},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", false},
		{"get", "", "secrets", "kapacity-webhook-cert", false},
		{"list", "", "configmaps", "", true},
		{"create", "", "configmaps", "", false},
		{"create", "batch", "cronjobs", "", true},
		{"create", "", "pods", "", false},
		{"create", "authentication.k8s.io", "tokenreviews", "", true},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", true},
		// Burst portraits' traffic, read-only.
		{"get", "history.metrics.kapacitystack.io", "externalmetrics", "requests_per_second", true},
		{"get", "history.metrics.kapacitystack.io", "workloadresources", "web", true},
		{"get", "history.metrics.kapacitystack.io", "objects", "web", true},
		{"create", "history.metrics.kapacitystack.io", "externalmetrics", "", false},
	})
	ns := rulesOf(t, ManagerRBAC(), "Role", "kapacity-manager")
	check(t, ns, []request{
		{"get", "", "secrets", "kapacity-webhook-cert", true},
		{"update", "", "secrets", "kapacity-webhook-cert", true},
		{"get", "", "secrets", "kapacity-adapter-serving-cert", false},
		{"list", "", "secrets", "", false},
		{"create", "", "secrets", "", false},
		{"get", "coordination.k8s.io", "leases", "kapacity-manager", true},
		{"update", "coordination.k8s.io", "leases", "other", false},
	})
	reader := rulesOf(t, ManagerRBAC(), "ClusterRole", "kapacity-manager-metrics-reader")
	if len(reader) != 1 || !slices.Equal(reader[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(reader[0].Verbs, []string{"get"}) {
		t.Errorf("metrics reader rules %+v, want get on /metrics only", reader)
	}
}
