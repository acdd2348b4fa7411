package naming

import (
	"fmt"
	"regexp"

	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// Rule is a compiled discovery rule.
type Rule struct {
	// SeriesQuery is passed as match[] to /api/v1/series; rules with equal
	// queries share one discovery call.
	SeriesQuery string
	// Resources maps the rule's series labels to resources.
	Resources *ResourceConverter
	// Query renders the rule's metricsQuery.
	Query *MetricsQuery

	filters []func(string) bool
	nameRE  *regexp.Regexp
	nameAs  string
}

// CompileRule compiles one discovery rule. Errors name the failing field.
func CompileRule(r metricsconfig.DiscoveryRule, mapper ResourceMapper) (*Rule, error) {
	rule := &Rule{SeriesQuery: r.SeriesQuery}
	for j, f := range r.SeriesFilters {
		fn, err := metricsconfig.CompileRegexFilter(f)
		if err != nil {
			return nil, fmt.Errorf("seriesFilters[%d]: %w", j, err)
		}
		rule.filters = append(rule.filters, fn)
	}
	if r.Name.Matches != "" {
		// name.matches doubles as an implicit `is` filter: a series whose
		// name cannot be mapped has no metric name.
		fn, err := metricsconfig.CompileRegexFilter(metricsconfig.RegexFilter{Is: r.Name.Matches})
		if err != nil {
			return nil, fmt.Errorf("name.matches: %w", err)
		}
		rule.filters = append(rule.filters, fn)
	}
	re, as, err := metricsconfig.CompileNameMapping(r.Name)
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	rule.nameRE, rule.nameAs = re, as
	if rule.Resources, err = NewResourceConverter(r.Resources, mapper); err != nil {
		return nil, fmt.Errorf("resources.%w", err)
	}
	if rule.Query, err = NewMetricsQuery(r.MetricsQuery, rule.Resources, r.Resources.IsNamespaced()); err != nil {
		return nil, fmt.Errorf("metricsQuery: %w", err)
	}
	return rule, nil
}

// CompileRules compiles a rule list; field is "rules" or "externalRules"
// and prefixes errors, e.g. "rules[2].seriesFilters[0]: ...".
func CompileRules(field string, rules []metricsconfig.DiscoveryRule, mapper ResourceMapper) ([]*Rule, error) {
	out := make([]*Rule, 0, len(rules))
	for i, r := range rules {
		compiled, err := CompileRule(r, mapper)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].%w", field, i, err)
		}
		out = append(out, compiled)
	}
	return out, nil
}

// Accepts reports whether a discovered series passes the rule's filters.
func (r *Rule) Accepts(seriesName string) bool {
	for _, keep := range r.filters {
		if !keep(seriesName) {
			return false
		}
	}
	return true
}

// MetricName returns the API metric name of a series, false when the
// series name does not match name.matches.
func (r *Rule) MetricName(seriesName string) (string, bool) {
	idx := r.nameRE.FindStringSubmatchIndex(seriesName)
	if idx == nil {
		return "", false
	}
	return string(r.nameRE.ExpandString(nil, r.nameAs, seriesName, idx)), true
}
