package v1alpha1

import (
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestRequestRoundTrip: what a client encodes (Path, Params) the server decodes (ParseRequest) to
// the same query and range.
func TestRequestRoundTrip(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Range{Start: start, End: start.Add(7 * 24 * time.Hour), Step: time.Minute}
	deploy := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	tests := []struct {
		q        Query
		wantPath string
	}{
		{Query{Kind: PodResource, Namespace: "prod", Name: "web-1", Resource: "cpu"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/podresources/web-1"},
		{Query{Kind: PodResource, Namespace: "prod", Selector: "app=web", Resource: "cpu"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/podresources"},
		{Query{Kind: ContainerResource, Namespace: "prod", Name: "web-1", Resource: "memory", Container: "app"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/containerresources/web-1"},
		{Query{Kind: WorkloadResource, Workload: deploy, Namespace: "prod", Name: "web", Resource: "cpu", ReadyPodsOnly: true}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/workloadresources/web"},
		{Query{Kind: WorkloadContainerResource, Workload: deploy, Namespace: "prod", Name: "web", Resource: "cpu", Container: "app"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/workloadcontainerresources/web"},
		{Query{Kind: Object, Workload: schema.GroupKind{Kind: "Node"}, Name: "n1", Metric: "load", MetricSelector: "a=b"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/objects/n1"},
		{Query{Kind: External, Namespace: "prod", Metric: "queue_depth", MetricSelector: "queue in (a,b)"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/externalmetrics/queue_depth"},
		{Query{Kind: WorkloadExternal, Workload: deploy, Namespace: "prod", Name: "web", Metric: "ready_pods_count"}, "/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/prod/workloadexternalmetrics/web"},
	}
	for _, tc := range tests {
		for _, rng := range []*Range{nil, r} {
			path, err := tc.q.Path()
			if err != nil {
				t.Fatal(err)
			}
			if path != tc.wantPath {
				t.Errorf("path = %s, want %s", path, tc.wantPath)
			}
			parts := strings.Split(strings.TrimPrefix(path, "/apis/"+GroupName+"/"+Version+"/"), "/")
			ns := ""
			if parts[0] == "namespaces" {
				ns, parts = parts[1], parts[2:]
			}
			name := ""
			if len(parts) > 1 {
				name = parts[1]
			}
			q, gotRange, err := ParseRequest(ns, parts[0], name, tc.q.Params(rng), time.Now())
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !reflect.DeepEqual(q, tc.q) || !reflect.DeepEqual(gotRange, rng) {
				t.Errorf("round trip of %+v %v = %+v %v", tc.q, rng, q, gotRange)
			}
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		resource string
		params   string
		want     string
	}{
		{"bogus", "", `unknown resource "bogus"`},
		{"workloadresources", "start=x&step=1m", `start: "x" is neither RFC 3339 nor Unix seconds`},
		{"workloadresources", "start=0", "step is required"},
		{"workloadresources", "start=0&step=fast", `step: "fast" is neither a duration`},
		{"workloadresources", "step=1m", "step is given without start"},
		{"workloadresources", "readyPodsOnly=maybe", "readyPodsOnly"},
	}
	for _, tc := range tests {
		params, _ := url.ParseQuery(tc.params)
		if _, _, err := ParseRequest("ns", tc.resource, "web", params, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s?%s: error %v, want %q", tc.resource, tc.params, err, tc.want)
		}
	}
}

func TestParseTimeAndDuration(t *testing.T) {
	if got, _ := ParseTime("1700000000.5"); !got.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("unix seconds: %v", got)
	}
	if got, _ := ParseTime("2023-11-14T22:13:20Z"); !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("RFC 3339: %v", got)
	}
	for in, want := range map[string]time.Duration{"60": time.Minute, "0.5": 500 * time.Millisecond, "1m30s": 90 * time.Second} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestParseRejectsUnrepresentable: values that would overflow a time or a duration, or are not
// numbers at all, are errors naming the problem, never a wrapped-around value.
func TestParseRejectsUnrepresentable(t *testing.T) {
	for _, in := range []string{"NaN", "Inf", "-Inf", "+Inf", "1e300", "-1e300", "253402300800", "9223372036854775807"} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
	for _, in := range []string{"NaN", "Inf", "-Inf", "1e300", "9223372037", "-9223372037"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	// The bounds themselves are fine.
	if _, err := ParseTime("253402300799"); err != nil {
		t.Errorf("the last second of year 9999: %v", err)
	}
	if _, err := ParseDuration("9223372036"); err != nil {
		t.Errorf("the longest duration in seconds: %v", err)
	}
}

func TestValueJSON(t *testing.T) {
	in := []Point{{1, 1.5}, {2, Value(math.NaN())}, {3, Value(math.Inf(1))}, {4, Value(math.Inf(-1))}, {5, 3e9}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"timestamp":1,"value":1.5},{"timestamp":2,"value":"NaN"},{"timestamp":3,"value":"+Inf"},{"timestamp":4,"value":"-Inf"},{"timestamp":5,"value":3e+09}]`; string(data) != want {
		t.Errorf("JSON = %s, want %s", data, want)
	}
	var out []Point
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(out[1].Value)) || !math.IsInf(float64(out[2].Value), 1) || !math.IsInf(float64(out[3].Value), -1) || out[4].Value != 3e9 || out[0].Value != 1.5 {
		t.Errorf("round trip = %v", out)
	}
}
