package naming

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promql"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// resourceNameLabels names each resource's label after the resource itself,
// so the namespace label is "namespaces".
type resourceNameLabels struct{}

func (resourceNameLabels) LabelForResource(gr schema.GroupResource) (string, error) {
	return gr.Resource, nil
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// The metrics-query template cases of prometheus-adapter's
// metrics_query_test (reference §3.1), custom side.
func TestBuildTemplateFields(t *testing.T) {
	resource := schema.GroupResource{Resource: "resource"}
	tests := []struct {
		name     string
		template string
		query    ObjectQuery
		want     string
	}{
		{name: "series", template: "<<.Series>>", query: ObjectQuery{Series: "foo", Names: []string{"bar"}}, want: "foo"},
		{name: "single label matcher", template: "<<.LabelMatchers>>", query: ObjectQuery{Names: []string{"bar"}}, want: `resource="bar"`},
		{name: "multiple label matchers", template: "<<.LabelMatchers>>", query: ObjectQuery{Names: []string{"bar", "baz"}}, want: `resource=~"bar|baz"`},
		{
			name: "label matchers with metric selector", template: "<<.LabelMatchers>>",
			query: ObjectQuery{MetricSelector: mustSelector(t, "metric1=value1"), Names: []string{"bar"}},
			want:  `metric1="value1",resource="bar"`,
		},
		{name: "values by name single", template: `<<index .LabelValuesByName "resource">>`, query: ObjectQuery{Names: []string{"bar"}}, want: "bar"},
		{name: "values by name multiple", template: `<<index .LabelValuesByName "resource">>`, query: ObjectQuery{Names: []string{"bar", "baz"}}, want: "bar|baz"},
		{
			name: "values by name with namespace", template: `<<index .LabelValuesByName "namespaces">> <<index .LabelValuesByName "resource">>`,
			query: ObjectQuery{Namespace: "default", Names: []string{"bar", "baz"}}, want: "default bar|baz",
		},
		{name: "group by", template: "<<.GroupBy>>", query: ObjectQuery{Names: []string{"bar"}}, want: "resource"},
		{name: "group by extra", template: "<<.GroupBy>>", query: ObjectQuery{ExtraGroupBy: []string{"extra", "groups"}, Names: []string{"bar"}}, want: "resource,extra,groups"},
		{name: "group by slice", template: "<<.GroupBySlice>>", query: ObjectQuery{Names: []string{"bar"}}, want: "[resource]"},
		{name: "group by slice extra", template: "<<.GroupBySlice>>", query: ObjectQuery{ExtraGroupBy: []string{"extra", "groups"}, Names: []string{"bar"}}, want: "[resource extra groups]"},
		{
			// Values are escaped for the string literal they are meant for.
			name: "values by name escaped", template: `{resource=~"<<index .LabelValuesByName "resource">>"}`,
			query: ObjectQuery{Names: []string{"a.b", `c"d`}}, want: `{resource=~"a\\.b|c\"d"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := NewMetricsQuery(tc.template, resourceNameLabels{}, true)
			if err != nil {
				t.Fatal(err)
			}
			tc.query.Resource = resource
			got, err := q.Build(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Reference §3.1, external side.
func TestBuildExternalTemplateFields(t *testing.T) {
	tests := []struct {
		name       string
		template   string
		namespaced bool
		query      ExternalQuery
		want       string
	}{
		{name: "group by", template: "<<.GroupBy>>", namespaced: true, query: ExternalQuery{GroupBy: "foo"}, want: "foo"},
		{name: "group by slice", template: "<<.GroupBySlice>>", namespaced: true, query: ExternalQuery{GroupBySlice: []string{"foo", "bar"}}, want: "[foo bar]"},
		{
			name: "namespace included", template: `<<index .LabelValuesByName "namespaces">> <<.GroupBySlice>>`, namespaced: true,
			query: ExternalQuery{Namespace: "default", GroupBySlice: []string{"foo", "bar"}}, want: "default [foo bar]",
		},
		{
			name: "namespace not included when not namespaced", template: `<<index .LabelValuesByName "namespaces">> <<.GroupBySlice>>`, namespaced: false,
			query: ExternalQuery{Namespace: "default", GroupBySlice: []string{"foo", "bar"}}, want: " [foo bar]",
		},
		{
			name: "label matchers with namespace", template: "<<.LabelMatchers>>", namespaced: true,
			query: ExternalQuery{Namespace: "default", MetricSelector: mustSelector(t, "foo=bar")}, want: `foo="bar",namespaces="default"`,
		},
		{
			name: "label matchers multiple values", template: "<<.LabelMatchers>>", namespaced: true,
			query: ExternalQuery{MetricSelector: mustSelector(t, "foo=bar,qux in (bar,baz)")}, want: `foo="bar",qux=~"bar|baz"`,
		},
		{
			name: "values by name", template: "<<.LabelValuesByName>>", namespaced: false,
			query: ExternalQuery{Namespace: "default", MetricSelector: mustSelector(t, "foo=bar")}, want: "map[foo:bar]",
		},
		{
			name: "values by name multiple", template: "<<.LabelValuesByName>>", namespaced: false,
			query: ExternalQuery{MetricSelector: mustSelector(t, "foo in (bar,baz)")}, want: "map[foo:bar|baz]",
		},
		{
			name: "extra matchers ordered with the selector", template: "<<.LabelMatchers>>", namespaced: true,
			query: ExternalQuery{
				Namespace:      "ns",
				MetricSelector: mustSelector(t, "container=app,zone=a"),
				ExtraMatchers:  []promql.Matcher{{Name: "pod", Type: promql.MatchRegexp, Value: "^web-[0-9]+$"}},
			},
			want: `container="app",pod=~"^web-[0-9]+$",zone="a",namespaces="ns"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := NewMetricsQuery(tc.template, resourceNameLabels{}, tc.namespaced)
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.BuildExternal(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Conformance cases 23 and 24.
func TestExternalRuleQueries(t *testing.T) {
	rule := func(namespaced bool) *Rule {
		r, err := CompileRule(metricsconfig.DiscoveryRule{
			SeriesQuery: `{__name__="queue_depth"}`,
			Resources: metricsconfig.ResourceMapping{
				Overrides:  map[string]metricsconfig.GroupResource{"namespace": {Resource: "namespace"}},
				Namespaced: &namespaced,
			},
			MetricsQuery: "sum(<<.Series>>{<<.LabelMatchers>>}) by (name)",
		}, namingtest.NewMapper())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name       string
		namespaced bool
		selector   string
		want       string
	}{
		{name: "no selector", namespaced: true, want: `sum(queue_depth{namespace="default"}) by (name)`},
		{name: "not namespaced", namespaced: false, want: `sum(queue_depth{}) by (name)`},
		{name: "selector", namespaced: true, selector: "topic in (b,a),queue=q1", want: `sum(queue_depth{queue="q1",topic=~"a|b",namespace="default"}) by (name)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rule(tc.namespaced).Query.BuildExternal(ExternalQuery{
				Series: "queue_depth", Namespace: "default", MetricSelector: mustSelector(t, tc.selector),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	_, err := rule(true).Query.BuildExternal(ExternalQuery{Series: "queue_depth", Namespace: "default", MetricSelector: mustSelector(t, "foo>3")})
	if !errors.Is(err, promql.ErrUnsupportedOperator) {
		t.Errorf("foo>3: error %v, want %v", err, promql.ErrUnsupportedOperator)
	}
}

func TestBuildErrors(t *testing.T) {
	q, err := NewMetricsQuery(anyQuery, resourceNameLabels{}, true)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := NewMetricsQuery(`<<if false>>x<<end>>`, resourceNameLabels{}, true)
	if err != nil {
		t.Fatal(err)
	}
	noTemplate, err := NewResourceConverter(metricsconfig.ResourceMapping{}, namingtest.NewMapper())
	if err != nil {
		t.Fatal(err)
	}
	noLabels, err := NewMetricsQuery(anyQuery, noTemplate, true)
	if err != nil {
		t.Fatal(err)
	}
	pods := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name  string
		query *MetricsQuery
		req   ObjectQuery
		want  string
	}{
		{name: "no names", query: q, req: ObjectQuery{Series: "x", Resource: pods}, want: "no pods names given"},
		{name: "empty rendering", query: empty, req: ObjectQuery{Series: "x", Resource: pods, Names: []string{"a"}}, want: promql.ErrEmptyQuery.Error()},
		{name: "no namespace label", query: noLabels, req: ObjectQuery{Series: "x", Resource: pods, Namespace: "ns", Names: []string{"a"}}, want: "no generic resource label form specified for this metric"},
		{name: "bad series", query: q, req: ObjectQuery{Series: `x{a="b"}`, Resource: pods, Names: []string{"a"}}, want: "is not a valid Prometheus metric name"},
		{name: "bad group-by label", query: q, req: ObjectQuery{Series: "x", Resource: pods, ExtraGroupBy: []string{"a) or (b"}, Names: []string{"a"}}, want: "is not a valid Prometheus label name"},
		{name: "unsupported operator", query: q, req: ObjectQuery{Series: "x", Resource: pods, MetricSelector: mustSelector(t, "foo>3"), Names: []string{"a"}}, want: "operator not supported by prometheus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.query.Build(tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build = %q, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}

// Names and namespaces come from requests; they must never break out of
// their string literal.
func TestBuildEscapesRequestStrings(t *testing.T) {
	q, err := NewMetricsQuery(anyQuery, resourceNameLabels{}, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Build(ObjectQuery{
		Series:    "x",
		Resource:  schema.GroupResource{Resource: "pods"},
		Namespace: `a"} or vector(1) or x{b="`,
		Names:     []string{`p"}`, "q.r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(x{namespaces="a\"} or vector(1) or x{b=\"",pods=~"p\"\\}|q\\.r"}) by (pods)`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestBuildBatches(t *testing.T) {
	q, err := NewMetricsQuery(anyQuery, resourceNameLabels{}, true)
	if err != nil {
		t.Fatal(err)
	}
	req := ObjectQuery{Series: "x", Resource: schema.GroupResource{Resource: "pods"}, Namespace: "ns"}

	req.Names = []string{"somepod1", "somepod2"}
	got, err := q.BuildBatches(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != `sum(x{namespaces="ns",pods=~"somepod1|somepod2"}) by (pods)` {
		t.Errorf("small list: %q", got)
	}

	req.Names = nil
	for i := range 2000 {
		req.Names = append(req.Names, "web-5d8f7c9b6-"+strconv.Itoa(100000+i))
	}
	const limit = 2048
	got, err = q.BuildBatches(req, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 {
		t.Fatalf("expected several batches, got %d", len(got))
	}
	matcher := regexp.MustCompile(`pods=~"((?:[^"\\]|\\.)*)"`)
	seen := 0
	for _, query := range got {
		m := matcher.FindStringSubmatch(query)
		if m == nil {
			t.Fatalf("no pod matcher in %s", query)
		}
		if len(m[1]) > limit {
			t.Errorf("pod regex of %d bytes exceeds %d", len(m[1]), limit)
		}
		if !strings.HasPrefix(m[1], `web-5d8f7c9b6-(?:`) {
			t.Errorf("expected the common prefix to be factored: %.60s", m[1])
		}
		seen += strings.Count(m[1], "|") + 1
	}
	if seen != len(req.Names) {
		t.Errorf("batches cover %d names, want %d", seen, len(req.Names))
	}
}
