package provider

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// Conformance cases 23-25 (spec §3.2) through GetExternalMetric. Kapacity differs from the
// reference on one point on purpose: an operator PromQL lacks is the client's mistake, so a 400
// naming it, not prometheus-adapter's 500.
func TestExternalConformance(t *testing.T) {
	tests := []struct {
		name        string
		metric      string
		namespace   string
		selector    string
		wantQuery   string
		wantCode    int32
		wantMessage string
	}{
		{name: "23 no selector", metric: "queue_depth", namespace: "default",
			wantQuery: `sum(queue_depth{namespace="default"}) by (name)`},
		{name: "23 namespaced false", metric: "queue_depth_all", namespace: "default",
			wantQuery: `sum(queue_depth{}) by (name)`},
		{name: "24 in and equals", metric: "queue_depth", namespace: "default", selector: "topic in (b,a),queue=q1",
			wantQuery: `sum(queue_depth{queue="q1",topic=~"a|b",namespace="default"}) by (name)`},
		{name: "25 exists", metric: "queue_depth", namespace: "default", selector: "foo",
			wantQuery: `sum(queue_depth{foo!="",namespace="default"}) by (name)`},
		{name: "25 does not exist", metric: "queue_depth", namespace: "default", selector: "!foo",
			wantQuery: `sum(queue_depth{foo="",namespace="default"}) by (name)`},
		{name: "25 notin one", metric: "queue_depth", namespace: "default", selector: "foo notin (x)",
			wantQuery: `sum(queue_depth{foo!~"x",namespace="default"}) by (name)`},
		{name: "25 notin two", metric: "queue_depth", namespace: "default", selector: "foo notin (x,y)",
			wantQuery: `sum(queue_depth{foo!~"x|y",namespace="default"}) by (name)`},
		{name: "25 not equals", metric: "queue_depth", namespace: "default", selector: "foo!=x",
			wantQuery: `sum(queue_depth{foo!="x",namespace="default"}) by (name)`},
		{name: "25 greater than", metric: "queue_depth", namespace: "default", selector: "foo>3",
			wantCode: 400, wantMessage: "operator not supported by prometheus"},
		{name: "25 less than", metric: "queue_depth", namespace: "default", selector: "foo<3",
			wantCode: 400, wantMessage: "operator not supported by prometheus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{
				tc.wantQuery: {value: vector(sample(3, "name", "q", "namespace", "default"))},
			}}
			e := newExternal(discoveredRegistry(t), q)
			sel := labels.Everything()
			if tc.selector != "" {
				sel = mustSelector(t, tc.selector)
			}
			list, err := e.GetExternalMetric(context.Background(), tc.namespace, sel, cmprovider.ExternalMetricInfo{Metric: tc.metric})
			if tc.wantCode != 0 {
				if list != nil {
					t.Errorf("got %+v, want no value", list)
				}
				if code := statusCode(err); code != tc.wantCode {
					t.Fatalf("error %v (HTTP %d), want HTTP %d", err, code, tc.wantCode)
				}
				if !strings.Contains(err.Error(), tc.wantMessage) {
					t.Errorf("error %q does not contain %q", err, tc.wantMessage)
				}
				if n := len(q.seen()); n != 0 {
					t.Errorf("%d queries for a request PromQL cannot express", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := q.seen(); len(got) != 1 || got[0] != tc.wantQuery {
				t.Fatalf("queries %q, want [%q]", got, tc.wantQuery)
			}
			if len(list.Items) != 1 {
				t.Fatalf("%d items, want 1", len(list.Items))
			}
			item := list.Items[0]
			if item.MetricName != tc.metric || item.Value.String() != "3" ||
				len(item.MetricLabels) != 2 || item.MetricLabels["name"] != "q" || item.MetricLabels["namespace"] != "default" {
				t.Errorf("item %+v", item)
			}
			// External values carry the sample's timestamp, not the adapter's now.
			if !item.Timestamp.Time.Equal(model.TimeFromUnix(1700000000).Time()) {
				t.Errorf("timestamp %v, want the sample's", item.Timestamp)
			}
		})
	}
}

func TestExternalFailures(t *testing.T) {
	const query = `sum(queue_depth{namespace="default"}) by (name)`
	tests := []struct {
		name        string
		answer      answer
		wantCode    int32
		wantMessage string
		wantItems   int
	}{
		{name: "empty vector", answer: answer{value: vector()}, wantCode: 404},
		{name: "only NaN", answer: answer{value: vector(sample(math.NaN(), "name", "q"))}, wantCode: 404},
		{name: "NaN dropped, others kept", answer: answer{value: vector(sample(math.NaN(), "name", "q"), sample(0, "name", "r"))}, wantItems: 1},
		{name: "only infinities", answer: answer{value: vector(sample(math.Inf(1), "name", "q"), sample(math.Inf(-1), "name", "r"))}, wantCode: 404},
		{name: "+Inf dropped, others kept", answer: answer{value: vector(sample(math.Inf(1), "name", "q"), sample(2, "name", "r"))}, wantItems: 1},
		{name: "scalar", answer: answer{value: &model.Scalar{Value: 2, Timestamp: 1}}, wantItems: 1},
		{name: "prometheus API error", answer: answer{err: errPromAPI}, wantCode: 500, wantMessage: "too many samples"},
		{name: "transport error", answer: answer{err: errPromTransport}, wantCode: 503, wantMessage: "connection refused"},
		{name: "matrix result", answer: answer{value: model.Matrix{}}, wantCode: 500, wantMessage: "not a vector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{query: tc.answer}}
			e := newExternal(discoveredRegistry(t), q)
			list, err := e.GetExternalMetric(context.Background(), "default", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "queue_depth"})
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(list.Items) != tc.wantItems {
					t.Fatalf("%d items, want %d", len(list.Items), tc.wantItems)
				}
				return
			}
			if list != nil {
				t.Errorf("got %+v, want no value", list)
			}
			if code := statusCode(err); code != tc.wantCode {
				t.Fatalf("error %v (HTTP %d), want HTTP %d", err, code, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("error %q does not contain %q", err, tc.wantMessage)
			}
		})
	}
}

func TestExternalUnknownAndBeforeDiscovery(t *testing.T) {
	registry := discoveredRegistry(t)
	q := &fakeQuerier{t: t}
	e := newExternal(registry, q)
	_, err := e.GetExternalMetric(context.Background(), "default", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "nope"})
	if statusCode(err) != 404 {
		t.Errorf("unknown metric: error %v, want NotFound", err)
	}
	if registry.triggerCount() != 1 {
		t.Errorf("%d on-demand listings requested for an unknown metric, want 1", registry.triggerCount())
	}
	if len(q.seen()) != 0 {
		t.Errorf("queried Prometheus for an unknown metric")
	}
	names := map[string]bool{}
	for _, info := range e.ListAllExternalMetrics() {
		names[info.Metric] = true
	}
	if len(names) != 2 || !names["queue_depth"] || !names["queue_depth_all"] {
		t.Errorf("ListAllExternalMetrics = %v, want queue_depth and queue_depth_all", names)
	}

	before := newExternal(&fakeRegistry{}, q)
	_, err = before.GetExternalMetric(context.Background(), "default", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "queue_depth"})
	if statusCode(err) != 503 {
		t.Errorf("before discovery: error %v, want ServiceUnavailable", err)
	}
	if got := before.ListAllExternalMetrics(); len(got) != 0 {
		t.Errorf("ListAllExternalMetrics before discovery = %v", got)
	}
}
