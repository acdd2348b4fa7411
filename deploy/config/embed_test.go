package deployconfig

import (
	"slices"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

func TestKapacityDefaultLoads(t *testing.T) {
	cfg, err := metricsconfig.Load(KapacityDefault())
	if err != nil {
		t.Fatalf("kapacity-default.yaml: %v", err)
	}
	rr := cfg.ResourceRules
	if rr == nil {
		t.Fatal("resourceRules must be set: Kapacity's resource queries need them")
	}
	if got := rr.Window.Duration(); got != 3*time.Minute {
		t.Errorf("window = %v, want 3m", got)
	}
	wantCPU := `sum by (<<.GroupBy>>) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",<<.LabelMatchers>>}[3m]))`
	if rr.CPU.ContainerQuery != wantCPU {
		t.Errorf("cpu containerQuery = %q, want %q", rr.CPU.ContainerQuery, wantCPU)
	}
	wantReady := `sum by (<<.GroupBy>>) ((kube_pod_status_ready{condition="true"} == 1) * on (namespace, pod) group_left () sum by (namespace, pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",<<.LabelMatchers>>}[3m])))`
	if rr.CPU.ReadyPodsOnlyContainerQuery != wantReady {
		t.Errorf("cpu readyPodsOnlyContainerQuery = %q, want %q", rr.CPU.ReadyPodsOnlyContainerQuery, wantReady)
	}
	if rr.Memory.ContainerLabel != "container" || rr.CPU.ContainerLabel != "container" {
		t.Errorf("containerLabel = %q / %q", rr.CPU.ContainerLabel, rr.Memory.ContainerLabel)
	}
	// The ready pods under the name the predictive quick-start's portrait (and Kapacity's chart)
	// uses, and under the name of Kapacity's kustomize config.
	var external []string
	for _, r := range cfg.ExternalRules {
		external = append(external, r.Name.As)
		if r.SeriesQuery != `{__name__="kube_pod_status_ready"}` || r.MetricsQuery != `sum(<<.Series>>{condition="true",<<.LabelMatchers>>})` {
			t.Errorf("external rule %s: %q / %q, want the ready pods of kube-state-metrics", r.Name.As, r.SeriesQuery, r.MetricsQuery)
		}
	}
	if !slices.Equal(external, []string{"kube_pod_status_ready", "ready_pods_count"}) {
		t.Errorf("external rules %v, want kube_pod_status_ready and ready_pods_count", external)
	}
	want := map[string]string{
		"ReplicaSet":  "^%s-[bcdfghjklmnpqrstvwxz2456789]{5}$",
		"Deployment":  "^%s-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",
		"StatefulSet": "^%s-(0|[1-9][0-9]*)$",
	}
	if len(cfg.WorkloadPodNamePatterns) != len(want) {
		t.Fatalf("workloadPodNamePatterns = %+v", cfg.WorkloadPodNamePatterns)
	}
	for _, p := range cfg.WorkloadPodNamePatterns {
		if p.Group != "apps" || want[p.Kind] != p.Pattern {
			t.Errorf("unexpected pattern %+v", p)
		}
	}
}

func TestKapacityDefaultIsACopy(t *testing.T) {
	a := KapacityDefault()
	a[0] = '!'
	if KapacityDefault()[0] == '!' {
		t.Error("KapacityDefault must return a copy")
	}
}
