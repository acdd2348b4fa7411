package metricsconfig

import (
	"io"
	"reflect"
	"strings"
	"testing"

	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

// FuzzLoad: whatever bytes the config file holds, Load never panics; a config it accepts
// survives Marshal and Load unchanged, and none of its query templates fails at execution for a
// field QueryData lacks (the check at load is complete for field names).
func FuzzLoad(f *testing.F) {
	f.Add(deployconfig.KapacityDefault())
	f.Add([]byte(`
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  seriesFilters: [{isNot: "^x$"}]
  resources: {template: "<<.Resource>>", overrides: {namespace: {resource: namespace}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: '{__name__="queue"}'
  resources: {namespaced: false}
  metricsQuery: '<<with .LabelValuesByName.pod>><<.>><<end>><<range .GroupBySlice>><<$.Serise>><<end>>'
`))
	f.Add([]byte("rules: [{seriesQuery: x, metricsQuery: '<<.Series.Name>>'}]"))
	f.Add([]byte("workloadPodNamePatterns: [{kind: Deployment, pattern: '^%s-%d$'}]"))
	f.Add([]byte("resourceRules: {window: -1s}\nbogus: 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(data)
		if err != nil {
			return
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("an accepted config does not marshal: %v", err)
		}
		again, err := Load(out)
		if err != nil {
			t.Fatalf("an accepted config, marshalled, is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(cfg), normalize(again)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, again)
		}
		for _, text := range queryTemplates(cfg) {
			tmpl, err := ParseQueryTemplate("q", text)
			if err != nil {
				t.Fatalf("accepted template %q does not parse again: %v", text, err)
			}
			data := QueryData{Series: "s", LabelMatchers: `a="b"`, LabelValuesByName: map[string]string{"pod": "p"}, GroupBy: "pod", GroupBySlice: []string{"pod"}}
			if err := tmpl.Execute(io.Discard, data); err != nil && strings.Contains(err.Error(), "can't evaluate field") {
				t.Fatalf("accepted template %q names a field QueryData lacks: %v", text, err)
			}
		}
	})
}

// normalize maps empty slices and maps to nil, which YAML does not tell apart.
func normalize(cfg *MetricsDiscoveryConfig) *MetricsDiscoveryConfig {
	c := *cfg
	if len(c.Rules) == 0 {
		c.Rules = nil
	}
	if len(c.ExternalRules) == 0 {
		c.ExternalRules = nil
	}
	if len(c.WorkloadPodNamePatterns) == 0 {
		c.WorkloadPodNamePatterns = nil
	}
	for _, rules := range [][]DiscoveryRule{c.Rules, c.ExternalRules} {
		for i := range rules {
			if len(rules[i].SeriesFilters) == 0 {
				rules[i].SeriesFilters = nil
			}
			if len(rules[i].Resources.Overrides) == 0 {
				rules[i].Resources.Overrides = nil
			}
		}
	}
	return &c
}

func queryTemplates(cfg *MetricsDiscoveryConfig) []string {
	var out []string
	for _, r := range append(append([]DiscoveryRule{}, cfg.Rules...), cfg.ExternalRules...) {
		out = append(out, r.MetricsQuery)
	}
	if rr := cfg.ResourceRules; rr != nil {
		for _, r := range []ResourceRule{rr.CPU, rr.Memory} {
			out = append(out, r.ContainerQuery, r.NodeQuery, r.ReadyPodsOnlyContainerQuery)
		}
	}
	return out
}
