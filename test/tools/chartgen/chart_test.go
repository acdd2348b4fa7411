package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/strvals"
)

// root is the repository, three levels above this package.
var root = filepath.Join("..", "..", "..")

var defaultRelease = Release{Name: "kapacity", Namespace: "kapacity-system"}

// rendered is a render of the chart, indexed for assertions.
type rendered struct {
	objs []Object
}

func render(t *testing.T, rel Release, sets ...string) (rendered, error) {
	t.Helper()
	ch, err := LoadChart(filepath.Join(root, chartDir))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Render(ch, rel, vals)
	return rendered{objs}, err
}

func (r rendered) find(kind, name string) (Object, bool) {
	for _, o := range r.objs {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

func (r rendered) names(kind string) []string {
	var out []string
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o.Name)
		}
	}
	return out
}

// container returns the first container of Deployment name, and the pod spec.
func (r rendered) container(t *testing.T, name string) (container, pod map[string]any) {
	t.Helper()
	d, ok := r.find("Deployment", name)
	if !ok {
		t.Fatalf("no Deployment %s; have %v", name, r.names("Deployment"))
	}
	pod = dig(d.Doc, "spec", "template", "spec").(map[string]any)
	return pod["containers"].([]any)[0].(map[string]any), pod
}

func (r rendered) args(t *testing.T, deployment string) []string {
	t.Helper()
	c, _ := r.container(t, deployment)
	var out []string
	for _, a := range c["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// dig walks maps by keys; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// checkAPIServiceRights: with the adapter's self-signed certificate, the adapter may get and patch
// exactly the APIServices the render registers (to write its CA), by name, and no other (an API
// left to metrics-server or KEDA stays out of its reach).
func checkAPIServiceRights(t *testing.T, rel Release, r rendered) {
	t.Helper()
	adapter := "kapacity-adapter"
	if !strings.Contains(rel.Name, "kapacity") {
		adapter = rel.Name + "-kapacity-adapter"
	}
	d, ok := r.find("Deployment", adapter)
	if !ok || !slices.Contains(r.args(t, adapter), "--serving-cert-mode=self-signed") {
		return
	}
	bound := map[string]bool{}
	for _, o := range r.objs {
		if o.Kind != "ClusterRoleBinding" {
			continue
		}
		for _, s := range o.Doc["subjects"].([]any) {
			if dig(s, "name") == adapter && dig(s, "namespace") == d.Namespace {
				bound[dig(o.Doc, "roleRef", "name").(string)] = true
			}
		}
	}
	var patchable []string
	for _, o := range r.objs {
		if o.Kind != "ClusterRole" || !bound[o.Name] {
			continue
		}
		for _, rule := range o.Doc["rules"].([]any) {
			resources, _ := dig(rule, "resources").([]any)
			if !slices.Contains(resources, any("apiservices")) {
				continue
			}
			names, _ := dig(rule, "resourceNames").([]any)
			if len(names) == 0 {
				t.Errorf("%s lets the adapter write every APIService", o)
			}
			for _, n := range names {
				patchable = append(patchable, n.(string))
			}
		}
	}
	registered := r.names("APIService")
	slices.Sort(patchable)
	slices.Sort(registered)
	if !slices.Equal(patchable, registered) {
		t.Errorf("the adapter may patch APIServices %v, want exactly those registered: %v", patchable, registered)
	}
}

// checkEveryRender holds for every render that succeeds, whatever the values: the pod security,
// resources and probes every container must have, namespaces, unique objects, and leader election
// wherever a manager runs more than one replica.
func checkEveryRender(t *testing.T, rel Release, r rendered) {
	t.Helper()
	checkAPIServiceRights(t, rel, r)
	seen := map[string]bool{}
	for _, o := range r.objs {
		if seen[o.Key()] {
			t.Errorf("%s rendered twice", o)
		}
		seen[o.Key()] = true
		ns := o.Namespace
		if strings.HasPrefix(o.Kind, "Cluster") || slices.Contains([]string{"APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Namespace"}, o.Kind) {
			if ns != "" {
				t.Errorf("cluster-scoped %s has a namespace", o)
			}
		} else if ns != rel.Namespace && !(o.Kind == "RoleBinding" && ns == "kube-system") &&
			// The dashboard goes where Grafana's sidecar looks (monitoring.dashboards.namespace).
			!(o.Template == "templates/monitoring/dashboard-configmap.yaml") {
			t.Errorf("%s is not in the release namespace %s", o, rel.Namespace)
		}
		if o.Kind == "APIService" && dig(o.Doc, "spec", "insecureSkipTLSVerify") == true {
			t.Errorf("%s skips TLS verification", o)
		}
		if o.Kind != "Deployment" {
			continue
		}
		pod := dig(o.Doc, "spec", "template", "spec").(map[string]any)
		for _, c := range pod["containers"].([]any) {
			c := c.(map[string]any)
			where := fmt.Sprintf("%s container %s", o, c["name"])
			nonRoot := dig(c, "securityContext", "runAsNonRoot") == true || (dig(pod, "securityContext", "runAsNonRoot") == true && dig(c, "securityContext", "runAsNonRoot") == nil)
			if !nonRoot {
				t.Errorf("%s may run as root", where)
			}
			for _, want := range [][]string{{"readOnlyRootFilesystem"}} {
				if dig(c, append([]string{"securityContext"}, want...)...) != true {
					t.Errorf("%s: securityContext.%s is not true", where, strings.Join(want, "."))
				}
			}
			if dig(c, "securityContext", "allowPrivilegeEscalation") != false {
				t.Errorf("%s: securityContext.allowPrivilegeEscalation is not false", where)
			}
			if drop, _ := dig(c, "securityContext", "capabilities", "drop").([]any); !slices.Contains(drop, any("ALL")) {
				t.Errorf("%s: capabilities ALL are not dropped", where)
			}
			if dig(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
				t.Errorf("%s: no RuntimeDefault seccomp profile", where)
			}
			for _, res := range []string{"cpu", "memory"} {
				if dig(c, "resources", "requests", res) == nil {
					t.Errorf("%s: no %s request", where, res)
				}
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				if dig(c, probe, "httpGet", "path") == nil {
					t.Errorf("%s: no %s", where, probe)
				}
			}
			replicas, _ := dig(o.Doc, "spec", "replicas").(float64)
			var args []string
			for _, a := range c["args"].([]any) {
				args = append(args, a.(string))
			}
			if len(args) > 0 && args[0] == "manager" && replicas > 1 && !slices.Contains(args, "--leader-elect") {
				t.Errorf("%s runs %v replicas without --leader-elect", where, replicas)
			}
			if replicas > 1 {
				if _, ok := r.find("PodDisruptionBudget", o.Name); !ok {
					t.Errorf("%s runs %v replicas without a PodDisruptionBudget", o, replicas)
				}
			}
		}
	}
}
