package metricsconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Conformance case 8: unknown fields are rejected with go-yaml's message.
func TestParseRejectsUnknownFields(t *testing.T) {
	in := "rules:\n- seriesQuery: x\n  bogus: 1\n"
	_, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("expected an error")
	}
	// prometheus-adapter's type is config.DiscoveryRule; ours lives in
	// package metricsconfig.
	want := "unable to parse metrics discovery config: yaml: unmarshal errors:\n  line 3: field bogus not found in type metricsconfig.DiscoveryRule"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestParseAllFields(t *testing.T) {
	in := `
rules:
- seriesQuery: '{__name__=~"^container_.*"}'
  seriesFilters:
  - is: ^container_
  - isNot: _total$
  resources:
    template: <<.Resource>>
    overrides:
      ns: {resource: namespace}
      deploy: {group: apps, resource: deployment}
    namespaced: false
  name:
    matches: ^container_(.*)$
    as: ${1}_x
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
externalRules:
- seriesQuery: '{__name__="q"}'
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>})
resourceRules:
  cpu:
    containerQuery: a<<.LabelMatchers>>
    nodeQuery: b<<.LabelMatchers>>
    readyPodsOnlyContainerQuery: c<<.LabelMatchers>>
    resources: {overrides: {pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: d<<.LabelMatchers>>
    resources: {template: <<.Resource>>}
    containerLabel: container
  window: 1h30m
workloadPodNamePatterns:
- {group: apps, kind: Deployment, pattern: '^%s-[a-z0-9]+-[a-z0-9]+$'}
`
	cfg, err := Load([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	if len(r.SeriesFilters) != 2 || r.SeriesFilters[1].IsNot != "_total$" {
		t.Errorf("seriesFilters = %+v", r.SeriesFilters)
	}
	if r.Resources.IsNamespaced() {
		t.Error("namespaced: false not honoured")
	}
	if !cfg.ExternalRules[0].Resources.IsNamespaced() {
		t.Error("namespaced must default to true")
	}
	if got := r.Resources.Overrides["deploy"]; got != (GroupResource{Group: "apps", Resource: "deployment"}) {
		t.Errorf("override = %+v", got)
	}
	if r.Name.As != "${1}_x" {
		t.Errorf("name.as = %q", r.Name.As)
	}
	if got := cfg.ResourceRules.Window.Duration(); got != 90*time.Minute {
		t.Errorf("window = %v", got)
	}
	if cfg.ResourceRules.CPU.ReadyPodsOnlyContainerQuery != "c<<.LabelMatchers>>" {
		t.Errorf("readyPodsOnlyContainerQuery = %q", cfg.ResourceRules.CPU.ReadyPodsOnlyContainerQuery)
	}
	if len(cfg.WorkloadPodNamePatterns) != 1 || cfg.WorkloadPodNamePatterns[0].Kind != "Deployment" {
		t.Errorf("workloadPodNamePatterns = %+v", cfg.WorkloadPodNamePatterns)
	}
}

func TestParseRejectsBadWindow(t *testing.T) {
	_, err := Parse([]byte("resourceRules:\n  window: 5 minutes\n"))
	if err == nil || !strings.Contains(err.Error(), `not a valid duration string: "5 minutes"`) {
		t.Errorf("err = %v", err)
	}
}

func validRule() DiscoveryRule {
	return DiscoveryRule{
		SeriesQuery:  `{__name__="x"}`,
		Resources:    ResourceMapping{Template: "<<.Resource>>"},
		MetricsQuery: "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
	}
}

func validResourceRule() ResourceRule {
	return ResourceRule{
		ContainerQuery: "sum(x{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
		Resources:      ResourceMapping{Overrides: map[string]GroupResource{"pod": {Resource: "pod"}}},
		ContainerLabel: "container",
	}
}

func TestValidate(t *testing.T) {
	withRule := func(edit func(*DiscoveryRule)) *MetricsDiscoveryConfig {
		r := validRule()
		edit(&r)
		return &MetricsDiscoveryConfig{Rules: []DiscoveryRule{validRule(), validRule(), r}}
	}
	withResourceRule := func(edit func(*ResourceRule)) *MetricsDiscoveryConfig {
		cpu := validResourceRule()
		edit(&cpu)
		return &MetricsDiscoveryConfig{ResourceRules: &ResourceRules{CPU: cpu, Memory: validResourceRule()}}
	}
	tests := []struct {
		name    string
		cfg     *MetricsDiscoveryConfig
		wantErr []string // substrings; empty means valid
	}{
		{name: "valid", cfg: withRule(func(*DiscoveryRule) {})},
		{name: "empty config", cfg: &MetricsDiscoveryConfig{}},
		{
			// Conformance case 7.
			name:    "filter with neither is nor isNot",
			cfg:     withRule(func(r *DiscoveryRule) { r.SeriesFilters = []RegexFilter{{}} }),
			wantErr: []string{"rules[2].seriesFilters[0]: must have either an `is` or `isNot` expression in a filter"},
		},
		{
			name:    "filter with both",
			cfg:     withRule(func(r *DiscoveryRule) { r.SeriesFilters = []RegexFilter{{Is: "a", IsNot: "b"}} }),
			wantErr: []string{"rules[2].seriesFilters[0]: cannot have both an `is`"},
		},
		{
			name:    "bad filter regex",
			cfg:     withRule(func(r *DiscoveryRule) { r.SeriesFilters = []RegexFilter{{IsNot: "("}} }),
			wantErr: []string{"rules[2].seriesFilters[0]: unable to compile `isNot` filter \"(\": error parsing regexp"},
		},
		{
			name:    "bad name regex",
			cfg:     withRule(func(r *DiscoveryRule) { r.Name.Matches = "[" }),
			wantErr: []string{"rules[2].name: unable to compile series name match expression"},
		},
		{
			name:    "two capture groups without as",
			cfg:     withRule(func(r *DiscoveryRule) { r.Name.Matches = "(a)(b)" }),
			wantErr: []string{"rules[2].name: must specify an 'as' value for name matcher"},
		},
		{
			name: "two capture groups with as",
			cfg:  withRule(func(r *DiscoveryRule) { r.Name = NameMapping{Matches: "(a)(b)", As: "$2$1"} }),
		},
		{
			// Conformance case 12.
			name:    "template without resource",
			cfg:     withRule(func(r *DiscoveryRule) { r.Resources.Template = "kube_<<.Group>>" }),
			wantErr: []string{"rules[2].resources.template: must include at least `{{.Resource}}` in the label template"},
		},
		{
			name:    "template parse error",
			cfg:     withRule(func(r *DiscoveryRule) { r.Resources.Template = "kube_<<.Resource" }),
			wantErr: []string{"rules[2].resources.template: unable to parse label template"},
		},
		{
			name:    "template with unknown field",
			cfg:     withRule(func(r *DiscoveryRule) { r.Resources.Template = "<<.Kind>>" }),
			wantErr: []string{"rules[2].resources.template: unable to render label template"},
		},
		{
			name:    "override with invalid label name",
			cfg:     withRule(func(r *DiscoveryRule) { r.Resources.Overrides = map[string]GroupResource{"k8s.pod": {Resource: "pod"}} }),
			wantErr: []string{`rules[2].resources.overrides[k8s.pod]: "k8s.pod" is not a valid Prometheus label name`},
		},
		{
			name:    "override without resource",
			cfg:     withRule(func(r *DiscoveryRule) { r.Resources.Overrides = map[string]GroupResource{"pod": {Group: "x"}} }),
			wantErr: []string{"rules[2].resources.overrides[pod].resource: must not be empty"},
		},
		{
			name:    "bad metricsQuery template",
			cfg:     withRule(func(r *DiscoveryRule) { r.MetricsQuery = "sum(<<.Series>>{<<.LabelMatchers>>}" + "<<if>>" }),
			wantErr: []string{"rules[2].metricsQuery: unable to parse metrics query template"},
		},
		{
			// A typo parsed fine and then failed every query of the rule.
			name:    "metricsQuery with a misspelt field",
			cfg:     withRule(func(r *DiscoveryRule) { r.MetricsQuery = "sum(<<.Serise>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)" }),
			wantErr: []string{"rules[2].metricsQuery: unknown field .Serise (did you mean .Series?)"},
		},
		{
			name:    "misspelt field through $",
			cfg:     withRule(func(r *DiscoveryRule) { r.MetricsQuery = "<<range .GroupBySlice>><<$.LabelMatcher>><<end>>" }),
			wantErr: []string{"rules[2].metricsQuery: unknown field .LabelMatcher (did you mean .LabelMatchers?)"},
		},
		{
			name:    "field of a field that has none",
			cfg:     withRule(func(r *DiscoveryRule) { r.MetricsQuery = "<<.Series.Name>>" }),
			wantErr: []string{"rules[2].metricsQuery: .Series.Name: .Series is a string and has no fields"},
		},
		{
			// Inside range and with, dot is something else: only $ is checked there.
			name: "fields inside range and with, index, map keys",
			cfg: withRule(func(r *DiscoveryRule) {
				r.MetricsQuery = `<<with .LabelValuesByName.pod>>x{pod=~"<<.>>"}<<end>><<range $i, $g := .GroupBySlice>><<$g>><<end>><<index .LabelValuesByName "namespace">><<len .GroupBySlice>>`
			}),
		},
		{
			name:    "resource rule with a misspelt field",
			cfg:     withResourceRule(func(r *ResourceRule) { r.ContainerQuery = "sum by (<<.Groupby>>) (x{<<.LabelMatchers>>})" }),
			wantErr: []string{"resourceRules.cpu.containerQuery: unknown field .Groupby (did you mean .GroupBy?)"},
		},
		{
			name:    "empty metricsQuery",
			cfg:     withRule(func(r *DiscoveryRule) { r.MetricsQuery = "" }),
			wantErr: []string{"rules[2].metricsQuery: must not be empty"},
		},
		{
			name:    "empty seriesQuery",
			cfg:     withRule(func(r *DiscoveryRule) { r.SeriesQuery = " " }),
			wantErr: []string{"rules[2].seriesQuery: must not be empty"},
		},
		{
			name: "external rule index",
			cfg: &MetricsDiscoveryConfig{ExternalRules: []DiscoveryRule{validRule(), func() DiscoveryRule {
				r := validRule()
				r.SeriesFilters = []RegexFilter{{Is: "a"}, {}}
				return r
			}()}},
			wantErr: []string{"externalRules[1].seriesFilters[1]: must have either"},
		},
		{
			name: "several problems reported together",
			cfg: withRule(func(r *DiscoveryRule) {
				r.SeriesFilters = []RegexFilter{{}}
				r.MetricsQuery = ""
			}),
			wantErr: []string{"rules[2].seriesFilters[0]", "rules[2].metricsQuery"},
		},
		{name: "valid resource rules", cfg: withResourceRule(func(*ResourceRule) {})},
		{
			name:    "resource rule without container query",
			cfg:     withResourceRule(func(r *ResourceRule) { r.ContainerQuery = "" }),
			wantErr: []string{"resourceRules.cpu.containerQuery: must not be empty"},
		},
		{
			name:    "resource rule bad node query",
			cfg:     withResourceRule(func(r *ResourceRule) { r.NodeQuery = "<<.Nope" }),
			wantErr: []string{"resourceRules.cpu.nodeQuery: unable to parse metrics query template"},
		},
		{
			name:    "resource rule bad ready-pods-only query",
			cfg:     withResourceRule(func(r *ResourceRule) { r.ReadyPodsOnlyContainerQuery = "<<end>>" }),
			wantErr: []string{"resourceRules.cpu.readyPodsOnlyContainerQuery: unable to parse"},
		},
		{
			name:    "resource rule bad container label",
			cfg:     withResourceRule(func(r *ResourceRule) { r.ContainerLabel = "" }),
			wantErr: []string{`resourceRules.cpu.containerLabel: "" is not a valid Prometheus label name`},
		},
		{
			name:    "resource rule bad template",
			cfg:     withResourceRule(func(r *ResourceRule) { r.Resources.Template = "x" }),
			wantErr: []string{"resourceRules.cpu.resources.template: must include at least `{{.Resource}}`"},
		},
		{
			name: "workload patterns",
			cfg: &MetricsDiscoveryConfig{WorkloadPodNamePatterns: []WorkloadPodNamePattern{
				{Group: "apps", Kind: "Deployment", Pattern: "^%s-[a-z0-9]+-[a-z0-9]+$"},
				{Group: "apps", Kind: "StatefulSet", Pattern: "^%s-([0-9]+$"},
				{Group: "apps", Kind: "ReplicaSet", Pattern: "^[a-z]+$"},
				{Group: "apps", Kind: "Deployment", Pattern: "^%s-.*$"},
				{Group: "apps", Pattern: "^%s-%d$"},
			}},
			wantErr: []string{
				"workloadPodNamePatterns[1].pattern: pattern \"^%s-([0-9]+$\" is not a valid regular expression",
				"workloadPodNamePatterns[2].pattern: pattern \"^[a-z]+$\" must contain exactly one %s placeholder",
				"workloadPodNamePatterns[3]: duplicates workloadPodNamePatterns[0] for Deployment.apps",
				"workloadPodNamePatterns[4].kind: must not be empty",
				"workloadPodNamePatterns[4].pattern: pattern \"^%s-%d$\" must not contain format verbs other than %s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("expected errors containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantStr string
		wantErr bool
	}{
		{in: "1m", want: time.Minute, wantStr: "1m"},
		{in: "5m", want: 5 * time.Minute, wantStr: "5m"},
		{in: "90s", want: 90 * time.Second, wantStr: "1m30s"},
		{in: "1h30m", want: 90 * time.Minute, wantStr: "1h30m"},
		{in: "1w2d", want: 9 * 24 * time.Hour, wantStr: "1w2d"},
		{in: "1y", want: 365 * 24 * time.Hour, wantStr: "1y"},
		{in: "250ms", want: 250 * time.Millisecond, wantStr: "250ms"},
		{in: "0", want: 0, wantStr: "0s"},
		{in: "", wantErr: true},
		{in: "1.5m", wantErr: true},
		{in: "5m1h", wantErr: true},
		{in: "-1m", wantErr: true},
		{in: "99999999999999999999y", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got.Duration() != tc.want || got.String() != tc.wantStr {
			t.Errorf("ParseDuration(%q) = %v (%q), %v; want %v (%q)", tc.in, got.Duration(), got.String(), err, tc.want, tc.wantStr)
		}
	}
}

func TestLabelTemplate(t *testing.T) {
	tests := []struct {
		template               string
		label                  string
		wantGroup, wantRes     string
		wantOK                 bool
		renderGroup, renderRes string
		wantRender             string
	}{
		// Conformance cases 10 and 11 (template side).
		{template: "kube_<<.Group>>_<<.Resource>>", label: "kube_apps_deployment", wantGroup: "apps", wantRes: "deployment", wantOK: true, renderGroup: "apps", renderRes: "deployment", wantRender: "kube_apps_deployment"},
		{template: "kube_<<.Group>>_<<.Resource>>", label: "kube__namespace", renderRes: "pod", wantRender: "kube__pod"},
		{template: "<<.Group>>_<<.Resource>>", label: "apps_deployment", wantGroup: "apps", wantRes: "deployment", wantOK: true, renderRes: "pod", wantRender: "_pod"},
		{template: "kube_<<.Resource>>", label: "kube_pod", wantRes: "pod", wantOK: true, renderRes: "pod", wantRender: "kube_pod"},
		{template: "kube_<<.Resource>>", label: "other"},
		// Literal text is regex-quoted: "." does not match any character.
		{template: "k.<<.Resource>>", label: "kx_pod"},
		{template: "k.<<.Resource>>", label: "k.pod", wantRes: "pod", wantOK: true},
	}
	for _, tc := range tests {
		lt, err := CompileLabelTemplate(tc.template)
		if err != nil {
			t.Fatalf("CompileLabelTemplate(%q): %v", tc.template, err)
		}
		g, r, ok := lt.Match(tc.label)
		if g != tc.wantGroup || r != tc.wantRes || ok != tc.wantOK {
			t.Errorf("%q.Match(%q) = %q, %q, %v; want %q, %q, %v", tc.template, tc.label, g, r, ok, tc.wantGroup, tc.wantRes, tc.wantOK)
		}
		if tc.wantRender != "" {
			got, err := lt.Render(tc.renderGroup, tc.renderRes)
			if err != nil || got != tc.wantRender {
				t.Errorf("%q.Render(%q, %q) = %q, %v; want %q", tc.template, tc.renderGroup, tc.renderRes, got, err, tc.wantRender)
			}
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig(5*time.Minute, "kube_")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("legacy default config is invalid: %v", err)
	}
	if got, want := cfg.Rules[0].MetricsQuery, `sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[5m])) by (<<.GroupBy>>)`; got != want {
		t.Errorf("rule 0 metricsQuery = %q, want %q", got, want)
	}
	if got, want := cfg.Rules[3].SeriesQuery, `{kube_namespace!="",__name__!~"^container_.*"}`; got != want {
		t.Errorf("rule 3 seriesQuery = %q, want %q", got, want)
	}
	if got, want := cfg.ResourceRules.CPU.ContainerLabel, "kube_container"; got != want {
		t.Errorf("containerLabel = %q, want %q", got, want)
	}
	if got := cfg.ResourceRules.Window.String(); got != "5m" {
		t.Errorf("window = %q", got)
	}
	// Round trip through YAML, as config-gen users do.
	out, err := Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatalf("reloading the marshalled default config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip changed the config:\n%s", out)
	}
}

func TestCompilePodNamePatternQuotesName(t *testing.T) {
	re, err := CompilePodNamePattern("^%s-[0-9]+$", "db.v1")
	if err != nil {
		t.Fatal(err)
	}
	if re.MatchString("dbxv1-0") {
		t.Error("workload name must be matched literally")
	}
	if !re.MatchString("db.v1-0") {
		t.Error("expected db.v1-0 to match")
	}
}
