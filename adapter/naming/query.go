package naming

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/promql"
)

// LabelResolver names the series label holding a resource's object names.
// *ResourceConverter implements it.
type LabelResolver interface {
	LabelForResource(gr schema.GroupResource) (string, error)
}

// MetricsQuery renders one rule's metrics-query template for requests.
type MetricsQuery struct {
	tmpl       *promql.QueryTemplate
	labels     LabelResolver
	namespaced bool
}

// NewMetricsQuery parses a metrics-query template. namespaced is the rule's
// resources.namespaced; only external queries consult it.
func NewMetricsQuery(text string, labels LabelResolver, namespaced bool) (*MetricsQuery, error) {
	t, err := promql.ParseQueryTemplate("metricsQuery", text)
	if err != nil {
		return nil, err
	}
	return &MetricsQuery{tmpl: t, labels: labels, namespaced: namespaced}, nil
}

// Namespaced reports the rule's resources.namespaced: false means an external query of it reads
// every namespace's series, whatever namespace it is asked in.
func (q *MetricsQuery) Namespaced() bool { return q.namespaced }

// ObjectQuery asks for a metric of named objects of one resource (custom
// metrics, resource metrics, Kapacity's pod/container queries).
type ObjectQuery struct {
	// Series is the Prometheus series name ("" for resource queries, whose
	// templates name their series themselves).
	Series string
	// Resource is the (normalised) resource of the objects.
	Resource schema.GroupResource
	// Namespace, when set, adds a matcher on the namespace label.
	Namespace string
	// ExtraGroupBy labels are added to the grouping (e.g. the container label).
	ExtraGroupBy []string
	// MetricSelector restricts the series by their labels; nil means all.
	MetricSelector labels.Selector
	// Names are the objects' names; at least one is required.
	Names []string
}

// Build renders the query for all names at once, as prometheus-adapter
// does (names regex-quoted). Prefer BuildBatches when the name list comes
// from a list call and may be long.
func (q *MetricsQuery) Build(req ObjectQuery) (string, error) {
	if len(req.Names) == 0 {
		return "", fmt.Errorf("no %s names given for metric query", req.Resource)
	}
	var nameMatcher promql.Matcher
	if len(req.Names) == 1 {
		nameMatcher = promql.Matcher{Type: promql.MatchEqual, Value: req.Names[0]}
	} else {
		nameMatcher = promql.Matcher{Type: promql.MatchRegexp, Value: promql.RegexAlternation(req.Names)}
	}
	return q.buildObject(req, nameMatcher)
}

// BuildBatches renders one query per batch of names so that no name
// matcher exceeds maxRegexBytes (promql.DefaultMaxRegexBytes when <= 0); see
// promql.NameMatchers. The caller runs every query and merges the samples,
// which works because the queries group by the resource label.
func (q *MetricsQuery) BuildBatches(req ObjectQuery, maxRegexBytes int) ([]string, error) {
	if len(req.Names) == 0 {
		return nil, fmt.Errorf("no %s names given for metric query", req.Resource)
	}
	batches := promql.NameMatchers("placeholder", req.Names, maxRegexBytes)
	queries := make([]string, 0, len(batches))
	for _, m := range batches {
		query, err := q.buildObject(req, m)
		if err != nil {
			return nil, err
		}
		queries = append(queries, query)
	}
	return queries, nil
}

// buildObject renders an object query whose name matcher (label left
// blank) is given.
func (q *MetricsQuery) buildObject(req ObjectQuery, nameMatcher promql.Matcher) (string, error) {
	if err := checkSeries(req.Series); err != nil {
		return "", err
	}
	matchers, err := promql.MatchersForSelector(req.MetricSelector)
	if err != nil {
		return "", fmt.Errorf("unable to convert metric selector: %w", err)
	}
	valuesByName := promql.ValuesByName(req.MetricSelector)
	if req.Namespace != "" {
		nsLabel, err := q.labels.LabelForResource(namespacesResource)
		if err != nil {
			return "", fmt.Errorf("unable to find the namespace label: %w", err)
		}
		ns := promql.Matcher{Name: nsLabel, Type: promql.MatchEqual, Value: req.Namespace}
		matchers = append(matchers, ns)
		valuesByName[nsLabel], _ = promql.ValueForMatcher(ns)
	}
	resLabel, err := q.labels.LabelForResource(req.Resource)
	if err != nil {
		return "", fmt.Errorf("unable to find the label for %s: %w", req.Resource, err)
	}
	nameMatcher.Name = resLabel
	matchers = append(matchers, nameMatcher)
	valuesByName[resLabel], _ = promql.ValueForMatcher(nameMatcher)

	groupBy := append([]string{resLabel}, req.ExtraGroupBy...)
	if err := checkLabelNames(groupBy); err != nil {
		return "", err
	}
	return q.render(req.Series, matchers, valuesByName, strings.Join(groupBy, ","), groupBy)
}

// ExternalQuery asks for a metric not tied to named objects (external
// metrics, Kapacity's workload queries).
type ExternalQuery struct {
	// Series is the Prometheus series name ("" for resource templates).
	Series string
	// Namespace, when set and the rule is namespaced (or KeepNamespace is
	// set), adds a matcher on the namespace label.
	Namespace string
	// KeepNamespace adds the namespace matcher even for a rule with
	// namespaced: false, for queries about one namespace's objects (a
	// workload's pods), which must not read other namespaces.
	KeepNamespace bool
	// GroupBy and GroupBySlice are passed to the template unchanged.
	GroupBy      string
	GroupBySlice []string
	// MetricSelector restricts the series by their labels; nil means all.
	MetricSelector labels.Selector
	// ExtraMatchers are trusted matchers built by the caller (e.g. a
	// workload's pod-name regex); they are validated but not escaped and
	// are ordered with the selector's matchers by label name.
	ExtraMatchers []promql.Matcher
}

// BuildExternal renders an external query.
func (q *MetricsQuery) BuildExternal(req ExternalQuery) (string, error) {
	if err := checkSeries(req.Series); err != nil {
		return "", err
	}
	matchers, err := promql.MatchersForSelector(req.MetricSelector)
	if err != nil {
		return "", fmt.Errorf("unable to convert metric selector: %w", err)
	}
	valuesByName := promql.ValuesByName(req.MetricSelector)
	for _, m := range req.ExtraMatchers {
		if v, ok := promql.ValueForMatcher(m); ok {
			valuesByName[m.Name] = v
		}
	}
	matchers = append(matchers, req.ExtraMatchers...)
	sort.SliceStable(matchers, func(i, j int) bool { return matchers[i].Name < matchers[j].Name })
	if (q.namespaced || req.KeepNamespace) && req.Namespace != "" {
		nsLabel, err := q.labels.LabelForResource(namespacesResource)
		if err != nil {
			return "", fmt.Errorf("unable to find the namespace label: %w", err)
		}
		ns := promql.Matcher{Name: nsLabel, Type: promql.MatchEqual, Value: req.Namespace}
		matchers = append(matchers, ns)
		valuesByName[nsLabel], _ = promql.ValueForMatcher(ns)
	}
	var groupBy []string
	if req.GroupBy != "" {
		groupBy = strings.Split(req.GroupBy, ",")
	}
	if err := checkLabelNames(append(groupBy, req.GroupBySlice...)); err != nil {
		return "", err
	}
	return q.render(req.Series, matchers, valuesByName, req.GroupBy, req.GroupBySlice)
}

// render executes the template with validated matchers.
func (q *MetricsQuery) render(series string, matchers []promql.Matcher, valuesByName map[string]string, groupBy string, groupBySlice []string) (string, error) {
	rendered, err := promql.RenderMatchers(matchers)
	if err != nil {
		return "", err
	}
	return q.tmpl.Execute(promql.QueryData{
		Series:            series,
		LabelMatchers:     rendered,
		LabelValuesByName: valuesByName,
		GroupBy:           groupBy,
		GroupBySlice:      groupBySlice,
	})
}

func checkSeries(series string) error {
	if series != "" && !promql.IsValidMetricName(series) {
		return fmt.Errorf("series name %q is not a valid Prometheus metric name", series)
	}
	return nil
}

func checkLabelNames(names []string) error {
	for _, n := range names {
		if !promql.IsValidLabelName(strings.TrimSpace(n)) {
			return fmt.Errorf("group-by label %q is not a valid Prometheus label name", n)
		}
	}
	return nil
}
