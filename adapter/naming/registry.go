package naming

import (
	"sort"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Series is a discovered series: its name and label names (values do not
// matter to discovery).
type Series struct {
	Name       string
	LabelNames []string
}

// CustomMetricKey identifies a custom metric as the API lists it.
type CustomMetricKey struct {
	GroupResource schema.GroupResource
	Namespaced    bool
	Metric        string
}

// SeriesRef tells how to serve a metric: which series, through which rule.
type SeriesRef struct {
	SeriesName string
	Rule       *Rule
}

// SeriesQueries returns the distinct series queries of rules, sorted, so
// discovery issues one /api/v1/series call per query.
func SeriesQueries(rules []*Rule) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		if !seen[r.SeriesQuery] {
			seen[r.SeriesQuery] = true
			out = append(out, r.SeriesQuery)
		}
	}
	sort.Strings(out)
	return out
}

// CustomMetrics builds the custom-metrics registry from the series each
// series query returned. A series yields one metric per resource its labels
// name; when several series or rules give the same key, the later rule (and,
// within a rule, the later series) wins, as in prometheus-adapter.
func CustomMetrics(rules []*Rule, seriesByQuery map[string][]Series) map[CustomMetricKey]SeriesRef {
	out := map[CustomMetricKey]SeriesRef{}
	for _, r := range rules {
		for _, s := range seriesByQuery[r.SeriesQuery] {
			if !r.Accepts(s.Name) {
				continue
			}
			name, ok := r.MetricName(s.Name)
			if !ok {
				continue
			}
			for _, gr := range r.Resources.ResourcesForSeries(s.LabelNames) {
				key := CustomMetricKey{GroupResource: gr, Namespaced: IsNamespacedResource(gr), Metric: name}
				out[key] = SeriesRef{SeriesName: s.Name, Rule: r}
			}
		}
	}
	return out
}

// ExternalMetrics builds the external-metrics registry: API metric name ->
// series, later rules and series winning.
func ExternalMetrics(rules []*Rule, seriesByQuery map[string][]Series) map[string]SeriesRef {
	out := map[string]SeriesRef{}
	for _, r := range rules {
		for _, s := range seriesByQuery[r.SeriesQuery] {
			if !r.Accepts(s.Name) {
				continue
			}
			if name, ok := r.MetricName(s.Name); ok {
				out[name] = SeriesRef{SeriesName: s.Name, Rule: r}
			}
		}
	}
	return out
}
