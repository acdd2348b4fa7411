package ruleset

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

// Configs used across the reload tests. Each differs from the others in what it compiles to, so
// a test can tell which one is in force.
const (
	configOneExternal = `
externalRules:
  - seriesQuery: '{__name__="queue_depth"}'
    metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)
    resources:
      overrides:
        namespace: {resource: namespace}
`
	configTwoExternal = `
externalRules:
  - seriesQuery: '{__name__="queue_depth"}'
    metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)
    resources:
      overrides:
        namespace: {resource: namespace}
  - seriesQuery: '{__name__="queue_age_seconds"}'
    metricsQuery: max(<<.Series>>{<<.LabelMatchers>>}) by (name)
    resources:
      overrides:
        namespace: {resource: namespace}
`
)

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	// Write-then-rename, as a ConfigMap update does (symlink swap), so a reader never sees a
	// half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// gauge reads a gauge by name from what reg exposes on /metrics.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}

func newTestSource(t *testing.T, content string) (*Source, string, *prometheus.Registry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, content)
	reg := prometheus.NewRegistry()
	s, err := NewSource(path, namingtest.NewRESTMapper(), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, reg
}

func TestSourceReload(t *testing.T) {
	tests := []struct {
		name        string
		newContent  string // "" removes the file
		wantChanged bool
		wantErr     string // substring naming the field or cause
		wantRules   int    // external rules in force afterwards
		wantSuccess float64
		wantFailure float64
	}{
		{name: "unchanged file", newContent: configOneExternal, wantRules: 1, wantSuccess: 1},
		{name: "valid change", newContent: configTwoExternal, wantChanged: true, wantRules: 2, wantSuccess: 1},
		{name: "filter without is or isNot", newContent: configTwoExternal + `    seriesFilters: [{}]
`, wantErr: "externalRules[1].seriesFilters[0]", wantRules: 1, wantFailure: 1},
		{name: "unknown field", newContent: configOneExternal + "bogus: 1\n", wantErr: "field bogus not found", wantRules: 1, wantFailure: 1},
		{name: "unknown override resource", newContent: strings.Replace(configTwoExternal, "{resource: namespace}\n  - ", "{resource: namespace}\n        foo: {resource: widgets}\n  - ", 1),
			wantErr: "externalRules[0].resources.overrides[foo]", wantRules: 1, wantFailure: 1},
		{name: "bad template", newContent: strings.Replace(configTwoExternal, "max(<<.Series>>", "max(<<.Series", 1),
			wantErr: "externalRules[1].metricsQuery", wantRules: 1, wantFailure: 1},
		{name: "misspelt template field", newContent: strings.Replace(configTwoExternal, "max(<<.Series>>", "max(<<.Serise>>", 1),
			wantErr: "externalRules[1].metricsQuery: unknown field .Serise", wantRules: 1, wantFailure: 1},
		{name: "bad workload pattern", newContent: configOneExternal + "workloadPodNamePatterns: [{group: apps, kind: Deployment, pattern: '^web$'}]\n",
			wantErr: "workloadPodNamePatterns[0]", wantRules: 1, wantFailure: 1},
		{name: "file removed", newContent: "", wantErr: "reading metrics-discovery config", wantRules: 1, wantFailure: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, path, reg := newTestSource(t, configOneExternal)
			before := s.Current()
			if tc.newContent == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				writeConfig(t, path, tc.newContent)
			}
			changed, err := s.Reload()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Reload error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Errorf("Reload changed = %v, want %v", changed, tc.wantChanged)
			}
			if !tc.wantChanged && s.Current() != before {
				t.Errorf("rules replaced although nothing valid changed")
			}
			if got := len(s.Current().External); got != tc.wantRules {
				t.Errorf("%d external rules in force, want %d", got, tc.wantRules)
			}
			if got := gauge(t, reg, "kapacity_adapter_config_last_reload_successful"); got != tc.wantSuccess {
				t.Errorf("kapacity_adapter_config_last_reload_successful = %v, want %v", got, tc.wantSuccess)
			}
			if got := gauge(t, reg, "kapacity_adapter_config_reload_failures_total"); got != tc.wantFailure {
				t.Errorf("kapacity_adapter_config_reload_failures_total = %v, want %v", got, tc.wantFailure)
			}
		})
	}
}

// A rejected file is reported once, not on every poll; fixing it (even back to the content in
// force) installs it and clears the failure.
func TestSourceReloadAfterRejection(t *testing.T) {
	s, path, reg := newTestSource(t, configOneExternal)
	writeConfig(t, path, configOneExternal+"bogus: 1\n")
	if _, err := s.Reload(); err == nil {
		t.Fatal("invalid config accepted")
	}
	changed, err := s.Reload()
	if changed || err != nil {
		t.Fatalf("second poll of the same rejected file: changed=%v err=%v, want neither", changed, err)
	}
	if got := gauge(t, reg, "kapacity_adapter_config_last_reload_successful"); got != 0 {
		t.Errorf("last_reload_successful = %v while the rejected file is in place, want 0", got)
	}
	writeConfig(t, path, configTwoExternal)
	changed, err = s.Reload()
	if !changed || err != nil {
		t.Fatalf("fixed file: changed=%v err=%v", changed, err)
	}
	if len(s.Current().External) != 2 {
		t.Errorf("%d external rules, want 2", len(s.Current().External))
	}
	if got := gauge(t, reg, "kapacity_adapter_config_last_reload_successful"); got != 1 {
		t.Errorf("last_reload_successful = %v after a good reload, want 1", got)
	}
}

func TestNewSourceRejectsInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, "rules: [{seriesQuery: x, bogus: 1}]\n")
	_, err := NewSource(path, namingtest.NewRESTMapper(), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "field bogus not found") {
		t.Fatalf("NewSource error = %v, want the unknown field named", err)
	}
	if _, err := NewSource(filepath.Join(t.TempDir(), "missing.yaml"), namingtest.NewRESTMapper(), prometheus.NewRegistry()); err == nil {
		t.Fatal("NewSource accepted a missing file")
	}
}

// Kapacity's shipped default compiles, and its workload patterns map to the apps resources.
func TestCompileKapacityDefault(t *testing.T) {
	rs, err := Load(deployconfig.KapacityDefault(), namingtest.NewRESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Resources == nil || len(rs.External) != 2 || len(rs.Custom) != 0 { // the ready pods under two names
		t.Errorf("compiled %d custom, %d external rules, resources %v", len(rs.Custom), len(rs.External), rs.Resources != nil)
	}
	want := map[schema.GroupResource]schema.GroupKind{
		{Group: "apps", Resource: "deployments"}:  {Group: "apps", Kind: "Deployment"},
		{Group: "apps", Resource: "replicasets"}:  {Group: "apps", Kind: "ReplicaSet"},
		{Group: "apps", Resource: "statefulsets"}: {Group: "apps", Kind: "StatefulSet"},
	}
	if len(rs.Workloads) != len(want) {
		t.Fatalf("workloads %v, want %v", rs.Workloads, want)
	}
	for gr, gk := range want {
		if rs.Workloads[gr] != gk {
			t.Errorf("workload %s -> %v, want %v", gr, rs.Workloads[gr], gk)
		}
	}
}

func TestSourceWatch(t *testing.T) {
	s, path, _ := newTestSource(t, configOneExternal)
	var mu sync.Mutex
	var seen []*RuleSet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Watch(ctx, 5*time.Millisecond, func(rs *RuleSet) {
			mu.Lock()
			seen = append(seen, rs)
			mu.Unlock()
		})
		close(done)
	}()
	writeConfig(t, path, configTwoExternal)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not report the changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || len(seen[0].External) != 2 || s.Current() != seen[0] {
		t.Errorf("Watch reported %d rule sets, want exactly the new one", len(seen))
	}
}
