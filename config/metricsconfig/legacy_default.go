package metricsconfig

import (
	"fmt"
	"time"
)

// DefaultConfig returns prometheus-adapter's legacy default config (the
// output of its config-gen tool): rules for cAdvisor container series and for
// every namespaced series, plus resource rules, with rate windows of
// rateInterval and resource labels prefixed with labelPrefix (e.g. "kube_").
func DefaultConfig(rateInterval time.Duration, labelPrefix string) *MetricsDiscoveryConfig {
	window := Duration(rateInterval)
	r := window.String()
	containerSeries := `{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`
	namespacedSeries := fmt.Sprintf(`{%snamespace!="",__name__!~"^container_.*"}`, labelPrefix)
	// Functions rather than values so that no two rules share an overrides map.
	containerResources := func() ResourceMapping {
		return ResourceMapping{Overrides: map[string]GroupResource{
			"namespace": {Resource: "namespace"},
			"pod":       {Resource: "pod"},
		}}
	}
	templateResources := ResourceMapping{Template: labelPrefix + "<<.Resource>>"}
	containerRate := fmt.Sprintf(`sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[%s])) by (<<.GroupBy>>)`, r)
	rate := fmt.Sprintf(`sum(rate(<<.Series>>{<<.LabelMatchers>>}[%s])) by (<<.GroupBy>>)`, r)
	nodeResources := func() ResourceMapping {
		return ResourceMapping{Overrides: map[string]GroupResource{
			"namespace": {Resource: "namespace"},
			"pod":       {Resource: "pod"},
			"instance":  {Resource: "node"},
		}}
	}

	return &MetricsDiscoveryConfig{
		Rules: []DiscoveryRule{
			{
				SeriesQuery:  containerSeries,
				Resources:    containerResources(),
				Name:         NameMapping{Matches: "^container_(.*)_seconds_total$"},
				MetricsQuery: containerRate,
			},
			{
				SeriesQuery:   containerSeries,
				SeriesFilters: []RegexFilter{{IsNot: "^container_.*_seconds_total$"}},
				Resources:     containerResources(),
				Name:          NameMapping{Matches: "^container_(.*)_total$"},
				MetricsQuery:  containerRate,
			},
			{
				SeriesQuery:   containerSeries,
				SeriesFilters: []RegexFilter{{IsNot: "^container_.*_total$"}},
				Resources:     containerResources(),
				Name:          NameMapping{Matches: "^container_(.*)$"},
				MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>,container!="POD"}) by (<<.GroupBy>>)`,
			},
			{
				SeriesQuery:   namespacedSeries,
				SeriesFilters: []RegexFilter{{IsNot: ".*_total$"}},
				Resources:     templateResources,
				MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
			},
			{
				SeriesQuery:   namespacedSeries,
				SeriesFilters: []RegexFilter{{IsNot: ".*_seconds_total"}},
				Resources:     templateResources,
				Name:          NameMapping{Matches: "^(.*)_total$"},
				MetricsQuery:  rate,
			},
			{
				SeriesQuery:  namespacedSeries,
				Resources:    templateResources,
				Name:         NameMapping{Matches: "^(.*)_seconds_total$"},
				MetricsQuery: rate,
			},
		},
		ResourceRules: &ResourceRules{
			CPU: ResourceRule{
				ContainerQuery: fmt.Sprintf(`sum(rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[%s])) by (<<.GroupBy>>)`, r),
				NodeQuery:      fmt.Sprintf(`sum(rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>, id='/'}[%s])) by (<<.GroupBy>>)`, r),
				Resources:      nodeResources(),
				ContainerLabel: labelPrefix + "container",
			},
			Memory: ResourceRule{
				ContainerQuery: `sum(container_memory_working_set_bytes{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
				NodeQuery:      `sum(container_memory_working_set_bytes{<<.LabelMatchers>>,id='/'}) by (<<.GroupBy>>)`,
				Resources:      nodeResources(),
				ContainerLabel: labelPrefix + "container",
			},
			Window: window,
		},
	}
}
