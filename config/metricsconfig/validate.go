package metricsconfig

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// labelNamePattern is Prometheus' classic label-name grammar; label names
// from the config end up in PromQL unquoted, so nothing else is accepted.
var labelNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks everything that can be checked without a cluster:
// regular expressions, templates, filters and workload patterns. Every
// problem is reported, each prefixed with the path of the offending field
// (e.g. "rules[2].seriesFilters[0]: ..."). Resolving resources through a
// RESTMapper happens later, in adapter/naming.
func (c *MetricsDiscoveryConfig) Validate() error {
	var errs []error
	for i := range c.Rules {
		errs = append(errs, validateDiscoveryRule(fmt.Sprintf("rules[%d]", i), &c.Rules[i])...)
	}
	for i := range c.ExternalRules {
		errs = append(errs, validateDiscoveryRule(fmt.Sprintf("externalRules[%d]", i), &c.ExternalRules[i])...)
	}
	if c.ResourceRules != nil {
		errs = append(errs, validateResourceRule("resourceRules.cpu", &c.ResourceRules.CPU)...)
		errs = append(errs, validateResourceRule("resourceRules.memory", &c.ResourceRules.Memory)...)
		if c.ResourceRules.Window < 0 {
			errs = append(errs, fmt.Errorf("resourceRules.window: must not be negative"))
		}
	}
	errs = append(errs, validateWorkloadPodNamePatterns(c.WorkloadPodNamePatterns)...)
	return errors.Join(errs...)
}

func validateDiscoveryRule(path string, r *DiscoveryRule) []error {
	var errs []error
	if strings.TrimSpace(r.SeriesQuery) == "" {
		errs = append(errs, fmt.Errorf("%s.seriesQuery: must not be empty", path))
	}
	for j, f := range r.SeriesFilters {
		if _, err := CompileRegexFilter(f); err != nil {
			errs = append(errs, fmt.Errorf("%s.seriesFilters[%d]: %w", path, j, err))
		}
	}
	if _, _, err := CompileNameMapping(r.Name); err != nil {
		errs = append(errs, fmt.Errorf("%s.name: %w", path, err))
	}
	errs = append(errs, validateResourceMapping(path+".resources", r.Resources)...)
	if strings.TrimSpace(r.MetricsQuery) == "" {
		// prometheus-adapter accepts this and then fails every query; failing
		// at start-up is kinder.
		errs = append(errs, fmt.Errorf("%s.metricsQuery: must not be empty", path))
	} else if _, err := ParseQueryTemplate("metricsQuery", r.MetricsQuery); err != nil {
		errs = append(errs, fmt.Errorf("%s.metricsQuery: %w", path, err))
	}
	return errs
}

func validateResourceMapping(path string, m ResourceMapping) []error {
	var errs []error
	if m.Template != "" {
		if _, err := CompileLabelTemplate(m.Template); err != nil {
			errs = append(errs, fmt.Errorf("%s.template: %w", path, err))
		}
	}
	labels := make([]string, 0, len(m.Overrides))
	for label := range m.Overrides {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	for _, label := range labels {
		if !labelNamePattern.MatchString(label) {
			errs = append(errs, fmt.Errorf("%s.overrides[%s]: %q is not a valid Prometheus label name", path, label, label))
		}
		if m.Overrides[label].Resource == "" {
			errs = append(errs, fmt.Errorf("%s.overrides[%s].resource: must not be empty", path, label))
		}
	}
	return errs
}

func validateResourceRule(path string, r *ResourceRule) []error {
	var errs []error
	if strings.TrimSpace(r.ContainerQuery) == "" {
		errs = append(errs, fmt.Errorf("%s.containerQuery: must not be empty", path))
	}
	queries := []struct{ field, text string }{
		{"containerQuery", r.ContainerQuery},
		{"nodeQuery", r.NodeQuery},
		{"readyPodsOnlyContainerQuery", r.ReadyPodsOnlyContainerQuery},
	}
	for _, q := range queries {
		if _, err := ParseQueryTemplate(q.field, q.text); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", path, q.field, err))
		}
	}
	errs = append(errs, validateResourceMapping(path+".resources", r.Resources)...)
	if !labelNamePattern.MatchString(r.ContainerLabel) {
		errs = append(errs, fmt.Errorf("%s.containerLabel: %q is not a valid Prometheus label name", path, r.ContainerLabel))
	}
	return errs
}

func validateWorkloadPodNamePatterns(patterns []WorkloadPodNamePattern) []error {
	var errs []error
	seen := map[[2]string]int{}
	for i, p := range patterns {
		path := fmt.Sprintf("workloadPodNamePatterns[%d]", i)
		if p.Kind == "" {
			errs = append(errs, fmt.Errorf("%s.kind: must not be empty", path))
		}
		key := [2]string{p.Group, p.Kind}
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicates workloadPodNamePatterns[%d] for %s.%s", path, first, p.Kind, p.Group))
		} else {
			seen[key] = i
		}
		if _, err := CompilePodNamePattern(p.Pattern, "workload"); err != nil {
			errs = append(errs, fmt.Errorf("%s.pattern: %w", path, err))
		}
	}
	return errs
}

// CompileRegexFilter compiles a seriesFilters entry. The returned function
// reports whether a series name passes the filter.
func CompileRegexFilter(f RegexFilter) (func(string) bool, error) {
	switch {
	case f.Is != "" && f.IsNot != "":
		return nil, fmt.Errorf("cannot have both an `is` (%q) and `isNot` (%q) expression in a single filter", f.Is, f.IsNot)
	case f.Is != "":
		re, err := regexp.Compile(f.Is)
		if err != nil {
			return nil, fmt.Errorf("unable to compile `is` filter %q: %w", f.Is, err)
		}
		return re.MatchString, nil
	case f.IsNot != "":
		re, err := regexp.Compile(f.IsNot)
		if err != nil {
			return nil, fmt.Errorf("unable to compile `isNot` filter %q: %w", f.IsNot, err)
		}
		return func(s string) bool { return !re.MatchString(s) }, nil
	default:
		return nil, fmt.Errorf("must have either an `is` or `isNot` expression in a filter")
	}
}

// CompileNameMapping compiles name.matches and resolves the default of
// name.as ($0 without capture groups, $1 with exactly one).
func CompileNameMapping(n NameMapping) (*regexp.Regexp, string, error) {
	matches := n.Matches
	if matches == "" {
		matches = ".*"
	}
	re, err := regexp.Compile(matches)
	if err != nil {
		return nil, "", fmt.Errorf("unable to compile series name match expression %q: %w", n.Matches, err)
	}
	as := n.As
	if as == "" {
		switch re.NumSubexp() {
		case 0:
			as = "$0"
		case 1:
			as = "$1"
		default:
			return nil, "", fmt.Errorf("must specify an 'as' value for name matcher %q associated with series query", n.Matches)
		}
	}
	return re, as, nil
}

// CompilePodNamePattern instantiates a workloadPodNamePatterns pattern for a
// workload name. The name is regex-escaped (prometheus-adapter-based Kapacity
// inserts it verbatim, so a "." in a name matched any character).
func CompilePodNamePattern(pattern, workloadName string) (*regexp.Regexp, error) {
	if n := strings.Count(pattern, "%s"); n != 1 {
		return nil, fmt.Errorf("pattern %q must contain exactly one %%s placeholder for the workload name, found %d", pattern, n)
	}
	if strings.Count(strings.ReplaceAll(pattern, "%%", ""), "%") != 1 {
		return nil, fmt.Errorf("pattern %q must not contain format verbs other than %%s (write %%%% for a literal %%)", pattern)
	}
	expr := fmt.Sprintf(pattern, regexp.QuoteMeta(workloadName))
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("pattern %q is not a valid regular expression: %w", pattern, err)
	}
	return re, nil
}
