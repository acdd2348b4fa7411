package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageBoundaries keeps the layout of ../shared/design/ARCHITECTURE.md true: each rule is a
// folder whose non-test code must not import a path. A newcomer then finds each concept in one
// place, and the shipped binary carries no test harness.
func TestPackageBoundaries(t *testing.T) {
	const module = "github.com/kapacitystack/kapacity/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		from, mustNotImport, why string
	}{
		{"", module + "test/", "product code never imports the test suites (the demo's cluster is localcluster/)"},
		{"adapter/", module + "executor/", "the adapter knows nothing of controllers (portrait evaluation is in config/portrait)"},
		{"adapter/", module + "recommender/", "the adapter serves metrics; algorithms live in the recommender"},
		{"historyapi/", module + "adapter/provider", "the history API defines its own query interfaces"},
		{"historyapi/", module + "executor/", "the history API knows nothing of controllers"},
		{"config/", module + "adapter/", "config/ is pure data"},
		{"config/", module + "executor/", "config/ is pure data"},
		{"config/", module + "historyapi/", "config/ is pure data"},
		{"config/", module + "recommender/", "config/ is pure data"},
		// Loading a kubeconfig into a rest.Config is parsing (config/kubeconfig); clients are not.
		{"config/", "k8s.io/client-go/kubernetes", "config/ is pure data: no clients"},
		{"config/", "k8s.io/client-go/dynamic", "config/ is pure data: no clients"},
		{"config/", "sigs.k8s.io/controller-runtime", "config/ is pure data: no clients"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], module), fields[1:]
		if strings.HasPrefix(pkg, "test/") {
			continue
		}
		for _, r := range rules {
			if !strings.HasPrefix(pkg, r.from) {
				continue
			}
			for _, imp := range imports {
				if strings.HasPrefix(imp, r.mustNotImport) {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
}
