package resourcequery

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promql"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

var deployment = schema.GroupKind{Group: "apps", Kind: "Deployment"}

func kapacityDefault(t *testing.T) *metricsconfig.MetricsDiscoveryConfig {
	t.Helper()
	cfg, err := metricsconfig.Load(deployconfig.KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newBuilder(t *testing.T, cfg *metricsconfig.MetricsDiscoveryConfig) *Builder {
	t.Helper()
	b, err := NewBuilder(cfg, namingtest.NewMapper())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkloadResource(t *testing.T) {
	b := newBuilder(t, kapacityDefault(t))
	if b.Window() != 3*time.Minute {
		t.Errorf("window = %v, want 3m", b.Window())
	}
	tests := []struct {
		name string
		q    WorkloadQuery
		want string
	}{
		{
			// Conformance case 31.
			name: "workload container cpu",
			q:    WorkloadQuery{GroupKind: deployment, Namespace: "prod", Name: "web", Resource: CPU, Container: "app"},
			want: `sum by (namespace) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",container="app",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}[3m]))`,
		},
		{
			name: "workload cpu",
			q:    WorkloadQuery{GroupKind: deployment, Namespace: "prod", Name: "web", Resource: CPU},
			want: `sum by (namespace) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}[3m]))`,
		},
		{
			name: "workload memory ready pods only",
			q:    WorkloadQuery{GroupKind: deployment, Namespace: "prod", Name: "web", Resource: Memory, ReadyPodsOnly: true},
			want: `sum by (namespace) ((kube_pod_status_ready{condition="true"} == 1) * on (namespace, pod) group_left () sum by (namespace, pod) (container_memory_working_set_bytes{container!="",container!="POD",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}))`,
		},
		{
			name: "workload container cpu ready pods only",
			q:    WorkloadQuery{GroupKind: deployment, Namespace: "prod", Name: "web", Resource: CPU, Container: "app", ReadyPodsOnly: true},
			want: `sum by (namespace) ((kube_pod_status_ready{condition="true"} == 1) * on (namespace, pod) group_left () sum by (namespace, pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",container="app",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}[3m])))`,
		},
		{
			// The workload name is regex-quoted into the pattern.
			name: "statefulset with a dot in its name",
			q:    WorkloadQuery{GroupKind: schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, Namespace: "prod", Name: "db.v1", Resource: CPU},
			want: `sum by (namespace) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",pod=~"^db\\.v1-(0|[1-9][0-9]*)$",namespace="prod"}[3m]))`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.WorkloadResource(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestWorkloadResourceErrors(t *testing.T) {
	cfg := kapacityDefault(t)
	cfg.ResourceRules.Memory.ReadyPodsOnlyContainerQuery = ""
	b := newBuilder(t, cfg)
	tests := []struct {
		name string
		q    WorkloadQuery
		want string
	}{
		{name: "unknown kind", q: WorkloadQuery{GroupKind: schema.GroupKind{Group: "batch", Kind: "CronJob"}, Name: "x", Resource: CPU}, want: `unknown workload type "CronJob.batch"`},
		{name: "group must match exactly", q: WorkloadQuery{GroupKind: schema.GroupKind{Kind: "Deployment"}, Name: "x", Resource: CPU}, want: `unknown workload type "Deployment"`},
		{name: "unsupported resource", q: WorkloadQuery{GroupKind: deployment, Name: "x", Resource: "gpu"}, want: `unsupported resource "gpu"`},
		{name: "no ready-only query", q: WorkloadQuery{GroupKind: deployment, Name: "x", Resource: Memory, ReadyPodsOnly: true}, want: "readyPodsOnlyContainerQuery is not configured"},
		{name: "empty name", q: WorkloadQuery{GroupKind: deployment, Resource: CPU}, want: "workload name must not be empty"},
		{name: "invalid container", q: WorkloadQuery{GroupKind: deployment, Name: "x", Resource: CPU, Container: `a"b`}, want: "invalid container name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.WorkloadResource(tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}

func TestPodAndNodeResources(t *testing.T) {
	kapacity := newBuilder(t, kapacityDefault(t))
	legacy := newBuilder(t, metricsconfig.DefaultConfig(time.Minute, ""))
	tests := []struct {
		name  string
		build func() ([]string, error)
		want  []string
	}{
		{
			name:  "pod cpu",
			build: func() ([]string, error) { return kapacity.PodResource(CPU, "ns", []string{"p"}, 0) },
			want:  []string{`sum by (pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",namespace="ns",pod="p"}[3m]))`},
		},
		{
			name: "container memory",
			build: func() ([]string, error) {
				return kapacity.ContainerResource(Memory, "ns", "c", []string{"p1", "p2"}, 0)
			},
			want: []string{`sum by (pod) (container_memory_working_set_bytes{container!="",container!="POD",container="c",namespace="ns",pod=~"p1|p2"})`},
		},
		{
			name:  "pod containers cpu, legacy config",
			build: func() ([]string, error) { return legacy.PodContainersResource(CPU, "ns", []string{"p1", "p2"}, 0) },
			want:  []string{`sum(rate(container_cpu_usage_seconds_total{namespace="ns",pod=~"p1|p2"}[1m])) by (pod,container)`},
		},
		{
			name:  "node memory, legacy config",
			build: func() ([]string, error) { return legacy.NodeResource(Memory, []string{"n1", "n2"}, 0) },
			want:  []string{`sum(container_memory_working_set_bytes{instance=~"n1|n2",id='/'}) by (instance)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}

	if _, err := kapacity.NodeResource(CPU, []string{"n"}, 0); err == nil || !strings.Contains(err.Error(), "nodeQuery is not configured") {
		t.Errorf("node query without nodeQuery: %v", err)
	}
	if _, err := kapacity.PodResource(CPU, "ns", nil, 0); err == nil {
		t.Error("pod query without pods must fail")
	}
	if label, err := kapacity.ContainerLabel(CPU); err != nil || label != "container" {
		t.Errorf("ContainerLabel = %q, %v", label, err)
	}
}

// WorkloadExternal: an external rule plus the workload's pod-name matcher.
func TestWorkloadExternal(t *testing.T) {
	cfg := kapacityDefault(t)
	b := newBuilder(t, cfg)
	rules, err := naming.CompileRules("externalRules", cfg.ExternalRules, namingtest.NewMapper())
	if err != nil {
		t.Fatal(err)
	}
	registry := naming.ExternalMetrics(rules, map[string][]naming.Series{
		`{__name__="kube_pod_status_ready"}`: {{Name: "kube_pod_status_ready", LabelNames: []string{"namespace", "pod", "condition"}}},
	})
	ref, ok := registry["ready_pods_count"]
	if !ok {
		t.Fatalf("ready_pods_count not registered: %v", registry)
	}
	pods, err := b.PodNameMatcher(deployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ref.Rule.Query.BuildExternal(naming.ExternalQuery{Series: ref.SeriesName, Namespace: "ns", ExtraMatchers: []promql.Matcher{pods}})
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(kube_pod_status_ready{condition="true",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="ns"})`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestNewBuilderErrors(t *testing.T) {
	if _, err := NewBuilder(&metricsconfig.MetricsDiscoveryConfig{}, namingtest.NewMapper()); err == nil {
		t.Error("a config without resourceRules must be rejected")
	}
	cfg := kapacityDefault(t)
	cfg.ResourceRules.CPU.Resources.Overrides["gpu"] = metricsconfig.GroupResource{Resource: "gpus"}
	_, err := NewBuilder(cfg, namingtest.NewMapper())
	want := "resourceRules.cpu.resources.overrides[gpu]: unable to normalize group-resource { gpus}: no matches for /, Resource=gpus"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
