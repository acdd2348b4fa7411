// Package monitoring_test checks Kapacity's Grafana dashboard and alert rules: every query parses
// (promtool) and reads only metrics that Kapacity, controller-runtime or kube-state-metrics export.
// `promtool test rules` (make test-monitoring) tests what each alert does.
package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func queries(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("kapacity-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("kapacity-dashboard.json: %v", err)
	}
	out := map[string]string{}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`\$\{?(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
					t.Errorf("panel %q uses variable $%s, which the dashboard does not define", p.Title, m[1])
				}
			}
			out[fmt.Sprintf("dashboard %q query %d", p.Title, i)] = tg.Expr
		}
	}
	raw, err = os.ReadFile("kapacity-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("kapacity-rules.yaml: %v", err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out
}

// exported are the metric names the repository's Go code defines (string literals).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`"(kapacity_[a-z0-9_]+)"`)
	for _, dir := range []string{"adapter", "executor", "historyapi"} {
		err := filepath.WalkDir(filepath.Join("..", "..", dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				names[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// Metrics of other components the dashboard reads: controller-runtime's (every manager serves
// them) and kube-state-metrics' pod info (optional; its panel says so).
var thirdParty = []string{"controller_runtime_reconcile_time_seconds", "controller_runtime_reconcile_errors_total",
	"controller_runtime_reconcile_total", "workqueue_depth", "kube_pod_info"}

func TestQueriesReadExportedMetrics(t *testing.T) {
	have := exported(t)
	if !have["kapacity_ihpa_replicas"] || !have["kapacity_adapter_request_duration_seconds"] {
		t.Fatalf("found %d metric names in the code, not the manager's and the adapter's: is the test run from deploy/monitoring?", len(have))
	}
	metric := regexp.MustCompile(`\b(kapacity|controller_runtime|workqueue|kube)_[a-z0-9_]+`)
	for where, expr := range queries(t) {
		for _, m := range metric.FindAllString(expr, -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(m, suffix); ok && (have[b] || slices.Contains(thirdParty, b)) {
					base = b
				}
			}
			if !have[base] && !slices.Contains(thirdParty, base) {
				t.Errorf("%s reads %s, which nothing exports", where, m)
			}
		}
	}
}

// TestQueriesParse has promtool parse every dashboard query, as recording rules with the
// dashboard's variables filled in.
func TestQueriesParse(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		if p, err := exec.LookPath(filepath.Join("..", "..", "bin", "promtool")); err == nil {
			promtool = p
		} else if p, err := exec.LookPath("promtool"); err == nil {
			promtool = p
		} else {
			t.Skip("no promtool (make tools installs it; make test-monitoring runs this test with it)")
		}
	}
	fill := strings.NewReplacer("${ihpa}", "web", "$ihpa", "web", "$namespace", "shop", "$adapter_job", ".*", "$manager_job", ".*")
	var b strings.Builder
	b.WriteString("groups:\n- name: dashboard\n  rules:\n")
	i := 0
	for where, expr := range queries(t) {
		i++
		q, err := json.Marshal(fill.Replace(expr)) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - record: q%d # %s\n    expr: %s\n", i, strings.ReplaceAll(where, "\n", " "), q)
	}
	file := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, b.String())
	}
}

// TestChartCopiesAreCurrent: the Helm chart cannot read files outside its folder, so it holds
// copies of the dashboard and the rules; they must be these files, byte for byte.
func TestChartCopiesAreCurrent(t *testing.T) {
	for _, name := range []string{"kapacity-dashboard.json", "kapacity-rules.yaml"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join("..", "helm", "kapacity", "files", "monitoring", name)
		dst, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatalf("the chart's copy: %v", err)
		}
		if string(src) != string(dst) {
			t.Errorf("%s differs from deploy/monitoring/%s: cp deploy/monitoring/%s %s", copyPath, name, name, copyPath)
		}
	}
}
