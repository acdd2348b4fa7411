package naming

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

const anyQuery = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"

// Conformance cases 1, 2, 3, 5 and 6.
func TestRuleNaming(t *testing.T) {
	tests := []struct {
		name   string
		rule   metricsconfig.DiscoveryRule
		series []string
		want   map[string]string // series -> API name, for the series kept
	}{
		{
			name:   "matches and as",
			rule:   metricsconfig.DiscoveryRule{Name: metricsconfig.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"}},
			series: []string{"http_requests_total", "a_b"},
			want:   map[string]string{"http_requests_total": "http_requests_per_second"},
		},
		{
			name:   "no matches no as",
			rule:   metricsconfig.DiscoveryRule{},
			series: []string{"a_b"},
			want:   map[string]string{"a_b": "a_b"},
		},
		{
			name:   "one group implies $1",
			rule:   metricsconfig.DiscoveryRule{Name: metricsconfig.NameMapping{Matches: "^container_(.*)_seconds_total$"}},
			series: []string{"container_cpu_usage_seconds_total", "container_memory_usage_bytes"},
			want:   map[string]string{"container_cpu_usage_seconds_total": "cpu_usage"},
		},
		{
			name:   "literal as",
			rule:   metricsconfig.DiscoveryRule{Name: metricsconfig.NameMapping{As: "cheesy"}},
			series: []string{"a", "b_total"},
			want:   map[string]string{"a": "cheesy", "b_total": "cheesy"},
		},
		{
			// $0 is the matched part only, so the name is "_total".
			name: "filters and implicit is filter",
			rule: metricsconfig.DiscoveryRule{
				SeriesFilters: []metricsconfig.RegexFilter{{IsNot: "_seconds_total"}},
				Name:          metricsconfig.NameMapping{Matches: "_total$"},
			},
			series: []string{"a_total", "a_seconds_total", "a_total_x", "a"},
			want:   map[string]string{"a_total": "_total"},
		},
		{
			name: "is filter",
			rule: metricsconfig.DiscoveryRule{
				SeriesFilters: []metricsconfig.RegexFilter{{Is: "^my_.*"}},
			},
			series: []string{"my_label", "your_label"},
			want:   map[string]string{"my_label": "my_label"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.SeriesQuery = "{}"
			tc.rule.MetricsQuery = anyQuery
			rule, err := CompileRule(tc.rule, namingtest.NewMapper())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range tc.series {
				if !rule.Accepts(s) {
					continue
				}
				name, ok := rule.MetricName(s)
				if !ok {
					t.Errorf("series %q accepted but not named", s)
					continue
				}
				got[s] = name
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Conformance cases 10, 11 and 13, and override normalisation.
func TestResourceConverter(t *testing.T) {
	mapper := namingtest.NewMapper()
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}

	conv, err := NewResourceConverter(metricsconfig.ResourceMapping{Template: "kube_<<.Group>>_<<.Resource>>"}, mapper)
	if err != nil {
		t.Fatal(err)
	}
	got := conv.ResourcesForSeries([]string{"kube_apps_deployment", "kube__namespace", "kube__pod", "other"})
	if fmt.Sprint(got) != fmt.Sprint([]schema.GroupResource{deployments}) {
		t.Errorf("ResourcesForSeries = %v, want [deployments.apps]", got)
	}
	if label, err := conv.LabelForResource(deployments); err != nil || label != "kube_apps_deployment" {
		t.Errorf("LabelForResource(deployments.apps) = %q, %v", label, err)
	}

	conv, err = NewResourceConverter(metricsconfig.ResourceMapping{Template: "<<.Group>>_<<.Resource>>"}, mapper)
	if err != nil {
		t.Fatal(err)
	}
	for gr, want := range map[schema.GroupResource]string{podsResource: "_pod", deployments: "apps_deployment"} {
		if label, err := conv.LabelForResource(gr); err != nil || label != want {
			t.Errorf("LabelForResource(%v) = %q, %v; want %q", gr, label, err, want)
		}
	}

	conv, err = NewResourceConverter(metricsconfig.ResourceMapping{Overrides: map[string]metricsconfig.GroupResource{
		"ns":     {Resource: "namespace"},
		"pod":    {Resource: "pod"},
		"deploy": {Group: "apps", Resource: "deployment"},
	}}, mapper)
	if err != nil {
		t.Fatal(err)
	}
	got = conv.ResourcesForSeries([]string{"pod", "ns", "deploy", "instance"})
	want := []schema.GroupResource{deployments, namespacesResource, podsResource}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ResourcesForSeries = %v, want %v", got, want)
	}
	if label, err := conv.LabelForResource(namespacesResource); err != nil || label != "ns" {
		t.Errorf("namespace label = %q, %v", label, err)
	}
	if _, err := conv.LabelForResource(nodesResource); err == nil || err.Error() != "no generic resource label form specified for this metric" {
		t.Errorf("label for an unmapped resource: %v", err)
	}

	_, err = CompileRules("rules", []metricsconfig.DiscoveryRule{{
		SeriesQuery:  "{}",
		Resources:    metricsconfig.ResourceMapping{Overrides: map[string]metricsconfig.GroupResource{"foo": {Resource: "widgets"}}},
		MetricsQuery: anyQuery,
	}}, mapper)
	wantErr := "rules[0].resources.overrides[foo]: unable to normalize group-resource { widgets}: no matches for /, Resource=widgets"
	if err == nil || err.Error() != wantErr {
		t.Errorf("error = %v, want %q", err, wantErr)
	}
}

func TestIsNamespacedResource(t *testing.T) {
	for gr, want := range map[schema.GroupResource]bool{
		podsResource:                    true,
		namespacesResource:              false,
		nodesResource:                   false,
		{Resource: "persistentvolumes"}: false,
		{Group: "storage.k8s.io", Resource: "storageclasses"}: true,
		{Group: "apps", Resource: "deployments"}:              true,
	} {
		if got := IsNamespacedResource(gr); got != want {
			t.Errorf("IsNamespacedResource(%v) = %v, want %v", gr, got, want)
		}
	}
}

// legacySeries are discovery results for the legacy default config.
var legacySeries = map[string][]Series{
	`{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`: {
		{Name: "container_some_usage", LabelNames: []string{"namespace", "pod", "container"}},
		{Name: "container_some_count_total", LabelNames: []string{"namespace", "pod", "container"}},
		{Name: "container_some_time_seconds_total", LabelNames: []string{"namespace", "pod", "container"}},
	},
	`{kube_namespace!="",__name__!~"^container_.*"}`: {
		{Name: "ingress_hits_total", LabelNames: []string{"kube_namespace", "kube_ingress", "kube_service", "kube_pod"}},
		{Name: "service_proxy_packets", LabelNames: []string{"kube_namespace", "kube_service"}},
		{Name: "work_queue_wait_seconds_total", LabelNames: []string{"kube_namespace", "kube_deployment"}},
	},
}

// Conformance cases 15-18: the legacy default config DC(1m, kube_).
func TestLegacyDefaultQueries(t *testing.T) {
	rules, err := CompileRules("rules", metricsconfig.DefaultConfig(time.Minute, "kube_").Rules, namingtest.NewMapper())
	if err != nil {
		t.Fatal(err)
	}
	if got := SeriesQueries(rules); len(got) != 2 {
		t.Errorf("SeriesQueries = %q, want 2 distinct queries", got)
	}
	registry := CustomMetrics(rules, legacySeries)

	var listed []string
	for key := range registry {
		listed = append(listed, fmt.Sprintf("%s/%s namespaced=%v", key.GroupResource, key.Metric, key.Namespaced))
	}
	sort.Strings(listed)
	wantListed := []string{
		"deployments.apps/work_queue_wait namespaced=true",
		"namespaces/ingress_hits namespaced=false",
		"namespaces/service_proxy_packets namespaced=false",
		"namespaces/some_count namespaced=false",
		"namespaces/some_time namespaced=false",
		"namespaces/some_usage namespaced=false",
		"namespaces/work_queue_wait namespaced=false",
		"pods/ingress_hits namespaced=true",
		"pods/some_count namespaced=true",
		"pods/some_time namespaced=true",
		"pods/some_usage namespaced=true",
		"services/ingress_hits namespaced=true",
		"services/service_proxy_packets namespaced=true",
	}
	if strings.Join(listed, "\n") != strings.Join(wantListed, "\n") {
		t.Errorf("registry:\n%s\nwant:\n%s", strings.Join(listed, "\n"), strings.Join(wantListed, "\n"))
	}

	services := schema.GroupResource{Resource: "services"}
	tests := []struct {
		name     string
		resource schema.GroupResource
		metric   string
		selector string
		names    []string
		want     string
	}{
		{
			name: "case 15", resource: podsResource, metric: "some_usage", names: []string{"somepod1", "somepod2"},
			want: `sum(container_some_usage{namespace="somens",pod=~"somepod1|somepod2",container!="POD"}) by (pod)`,
		},
		{
			name: "case 16", resource: podsResource, metric: "some_count", names: []string{"somepod1", "somepod2"},
			want: `sum(rate(container_some_count_total{namespace="somens",pod=~"somepod1|somepod2",container!="POD"}[1m])) by (pod)`,
		},
		{
			name: "case 17", resource: services, metric: "ingress_hits", selector: "param1=value1", names: []string{"somesvc"},
			want: `sum(rate(ingress_hits_total{param1="value1",kube_namespace="somens",kube_service="somesvc"}[1m])) by (kube_service)`,
		},
		{
			name: "case 18", resource: services, metric: "service_proxy_packets", names: []string{"somesvc"},
			want: `sum(service_proxy_packets{kube_namespace="somens",kube_service="somesvc"}) by (kube_service)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, ok := registry[CustomMetricKey{GroupResource: tc.resource, Namespaced: true, Metric: tc.metric}]
			if !ok {
				t.Fatalf("%s/%s not registered", tc.resource, tc.metric)
			}
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ref.Rule.Query.Build(ObjectQuery{
				Series: ref.SeriesName, Resource: tc.resource, Namespace: "somens", MetricSelector: sel, Names: tc.names,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestExternalMetricsRegistry(t *testing.T) {
	rules, err := CompileRules("externalRules", []metricsconfig.DiscoveryRule{
		{SeriesQuery: `{__name__=~"queue_.*"}`, MetricsQuery: anyQuery},
		{SeriesQuery: `{__name__=~"queue_.*"}`, Name: metricsconfig.NameMapping{Matches: "^queue_(.*)$", As: "q_$1"}, MetricsQuery: anyQuery},
	}, namingtest.NewMapper())
	if err != nil {
		t.Fatal(err)
	}
	got := ExternalMetrics(rules, map[string][]Series{`{__name__=~"queue_.*"}`: {{Name: "queue_depth"}}})
	var names []string
	for name, ref := range got {
		if ref.SeriesName != "queue_depth" {
			t.Errorf("%s -> series %q", name, ref.SeriesName)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[q_depth queue_depth]" {
		t.Errorf("external metrics = %v", names)
	}
}
