package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kapacitystack/kapacity/adapter/promclient"
)

// statusCode is the HTTP status an error is served with; 0 for an error the API server would
// turn into a generic 500 (which the providers must never return).
func statusCode(err error) int32 {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return s.Status().Code
	}
	return 0
}

var (
	pods        = schema.GroupResource{Resource: "pods"}
	services    = schema.GroupResource{Resource: "services"}
	deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}
)

// Errors the fake Prometheus returns: an answer from Prometheus (bad query, overload) and a
// failure to reach it, as the real client reports them.
var (
	errPromAPI       = &promclient.APIError{Endpoint: "query", Status: 422, ErrorType: "execution", Message: "query processing would load too many samples"}
	errPromTransport = fmt.Errorf("prometheus query: %w", &url.Error{Op: "Get", URL: "http://prometheus:9090/api/v1/query", Err: syscall.ECONNREFUSED})
)

func quantity(t *testing.T, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Conformance cases 15-18 (spec §3.2), end to end: discovery over the legacy default config,
// request, PromQL, answer, MetricValue.
func TestCustomConformance(t *testing.T) {
	tests := []struct {
		name      string
		case_     int
		gr        schema.GroupResource // as the request names it (may be singular)
		namespace string
		names     []string // one: by name; several: by selector, listed by the ObjectLister
		selector  string   // metric selector
		query     string
		answer    model.Vector
		wantKind  string
		want      map[string]string // object -> value
	}{
		{
			name: "container gauge by selector", case_: 15, gr: pods, namespace: "somens",
			names:    []string{"somepod1", "somepod2"},
			query:    `sum(container_some_usage{namespace="somens",pod=~"somepod1|somepod2",container!="POD"}) by (pod)`,
			answer:   vector(sample(0.5, "pod", "somepod1"), sample(1100, "pod", "somepod2")),
			wantKind: "Pod", want: map[string]string{"somepod1": "500m", "somepod2": "1100"},
		},
		{
			name: "container counter by selector", case_: 16, gr: schema.GroupResource{Resource: "pod"}, namespace: "somens",
			names:    []string{"somepod1", "somepod2"},
			query:    `sum(rate(container_some_count_total{namespace="somens",pod=~"somepod1|somepod2",container!="POD"}[1m])) by (pod)`,
			answer:   vector(sample(1.2345, "pod", "somepod1"), sample(0.0004, "pod", "somepod2")),
			wantKind: "Pod", want: map[string]string{"somepod1": "1234m", "somepod2": "0"},
		},
		{
			name: "namespaced counter with metric selector", case_: 17, gr: services, namespace: "somens",
			names: []string{"somesvc"}, selector: "param1=value1",
			query:    `sum(rate(ingress_hits_total{param1="value1",kube_namespace="somens",kube_service="somesvc"}[1m])) by (kube_service)`,
			answer:   vector(sample(2.5, "kube_service", "somesvc")),
			wantKind: "Service", want: map[string]string{"somesvc": "2500m"},
		},
		{
			name: "namespaced gauge", case_: 18, gr: schema.GroupResource{Resource: "service"}, namespace: "somens",
			names:    []string{"somesvc"},
			query:    `sum(service_proxy_packets{kube_namespace="somens",kube_service="somesvc"}) by (kube_service)`,
			answer:   vector(sample(3e9, "kube_service", "somesvc")),
			wantKind: "Service", want: map[string]string{"somesvc": "3G"},
		},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("case %d %s", tc.case_, tc.name), func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{tc.query: {value: tc.answer}}}
			objects := &fakeObjects{names: tc.names}
			c := newCustom(discoveredRegistry(t), q, objects)
			metric := map[int]string{15: "some_usage", 16: "some_count", 17: "ingress_hits", 18: "service_proxy_packets"}[tc.case_]
			info := cmprovider.CustomMetricInfo{GroupResource: tc.gr, Namespaced: true, Metric: metric}
			metricSelector := labels.Everything()
			if tc.selector != "" {
				metricSelector = mustSelector(t, tc.selector)
			}

			var items []custom_metrics.MetricValue
			if len(tc.names) == 1 {
				mv, err := c.GetMetricByName(context.Background(), types.NamespacedName{Namespace: tc.namespace, Name: tc.names[0]}, info, metricSelector)
				if err != nil {
					t.Fatal(err)
				}
				items = []custom_metrics.MetricValue{*mv}
			} else {
				objSelector := mustSelector(t, "app=x")
				list, err := c.GetMetricBySelector(context.Background(), tc.namespace, objSelector, info, metricSelector)
				if err != nil {
					t.Fatal(err)
				}
				items = list.Items
				if objects.gotNamespace != tc.namespace || objects.gotSelector.String() != "app=x" || objects.gotGVR.Resource != "pods" {
					t.Errorf("listed %v in %q with %v", objects.gotGVR, objects.gotNamespace, objects.gotSelector)
				}
			}
			if got := q.seen(); len(got) != 1 || got[0] != tc.query {
				t.Fatalf("queries %q, want [%q]", got, tc.query)
			}
			if len(items) != len(tc.names) {
				t.Fatalf("%d values, want %d", len(items), len(tc.names))
			}
			for i, mv := range items {
				name := tc.names[i] // list order
				want := custom_metrics.ObjectReference{Kind: tc.wantKind, APIVersion: "v1", Name: name, Namespace: tc.namespace}
				if mv.DescribedObject != want {
					t.Errorf("described object %+v, want %+v", mv.DescribedObject, want)
				}
				if mv.Metric.Name != metric {
					t.Errorf("metric name %q, want %q", mv.Metric.Name, metric)
				}
				if wantV := quantity(t, tc.want[name]); mv.Value.Cmp(wantV) != 0 || mv.Value.String() != tc.want[name] {
					t.Errorf("%s: value %s, want %s", name, mv.Value.String(), tc.want[name])
				}
				if !mv.Timestamp.Time.Equal(testNow) {
					t.Errorf("timestamp %v, want the adapter's now %v", mv.Timestamp, testNow)
				}
				if tc.selector == "" && mv.Metric.Selector != nil {
					t.Errorf("metric selector %v set without one in the request", mv.Metric.Selector)
				}
				if tc.selector != "" {
					if mv.Metric.Selector == nil || metav1.FormatLabelSelector(mv.Metric.Selector) != tc.selector {
						t.Errorf("metric selector %v, want %s", mv.Metric.Selector, tc.selector)
					}
				}
			}
		})
	}
}

// Failure semantics (package doc): a failed query is an error (500 for an answer from
// Prometheus, 503 when it cannot be reached), a missing or NaN sample is "not found", and never
// a zero; a selector PromQL cannot express is a 400.
func TestCustomFailures(t *testing.T) {
	const query = `sum(container_some_usage{namespace="somens",pod="somepod1",container!="POD"}) by (pod)`
	tests := []struct {
		name        string
		selector    string
		answer      answer
		wantCode    int32
		wantMessage string
		wantQueries int
	}{
		{name: "NaN sample", answer: answer{value: vector(sample(math.NaN(), "pod", "somepod1"))}, wantCode: 404, wantQueries: 1},
		// x/0 in a ratio is +Inf: served as a huge number it sent the HPA to maxReplicas.
		{name: "+Inf sample", answer: answer{value: vector(sample(math.Inf(1), "pod", "somepod1"))}, wantCode: 404, wantQueries: 1},
		{name: "-Inf sample", answer: answer{value: vector(sample(math.Inf(-1), "pod", "somepod1"))}, wantCode: 404, wantQueries: 1},
		{name: "empty vector", answer: answer{value: vector()}, wantCode: 404, wantQueries: 1},
		{name: "only another object's sample", answer: answer{value: vector(sample(1, "pod", "somepod2"))}, wantCode: 404, wantQueries: 1},
		{name: "prometheus API error", answer: answer{err: errPromAPI}, wantCode: 500, wantMessage: "too many samples", wantQueries: 1},
		{name: "transport error", answer: answer{err: errPromTransport}, wantCode: 503, wantMessage: "connection refused", wantQueries: 1},
		// A template rendering a range vector is a configuration error, not an outage.
		{name: "matrix result", answer: answer{value: model.Matrix{}}, wantCode: 500, wantMessage: "not a vector", wantQueries: 1},
		{name: "greater-than selector", selector: "foo>3", wantCode: 400, wantMessage: "operator not supported by prometheus"},
		{name: "less-than selector", selector: "foo<3", wantCode: 400, wantMessage: "operator not supported by prometheus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{query: tc.answer}}
			c := newCustom(discoveredRegistry(t), q, &fakeObjects{})
			sel := labels.Everything()
			if tc.selector != "" {
				sel = mustSelector(t, tc.selector)
			}
			info := cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: "some_usage"}
			mv, err := c.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "somens", Name: "somepod1"}, info, sel)
			if mv != nil {
				t.Errorf("got value %s, want none", mv.Value.String())
			}
			if code := statusCode(err); code != tc.wantCode {
				t.Fatalf("error %v (HTTP %d), want HTTP %d", err, code, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("error %q does not contain %q", err, tc.wantMessage)
			}
			if n := len(q.seen()); n != tc.wantQueries {
				t.Errorf("%d queries, want %d", n, tc.wantQueries)
			}
		})
	}
}

// A failure of any query fails the whole request by selector: a partial list would make the
// HPA average over the pods that happened to answer.
func TestCustomBySelectorFailures(t *testing.T) {
	const query = `sum(container_some_usage{namespace="somens",pod=~"a|b",container!="POD"}) by (pod)`
	tests := []struct {
		name     string
		objects  *fakeObjects
		answer   answer
		wantCode int32
		wantLen  int // when no error
	}{
		{name: "no objects", objects: &fakeObjects{}, wantCode: 404},
		{name: "list fails", objects: &fakeObjects{err: errors.New("forbidden")}, wantCode: 500},
		{name: "API error", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{err: errPromAPI}, wantCode: 500},
		{name: "transport error", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{err: errPromTransport}, wantCode: 503},
		// Objects without a (measured) sample are left out; the others are served.
		{name: "NaN and missing omitted", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{value: vector(sample(math.NaN(), "pod", "a"))}, wantLen: 0},
		{name: "one served", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{value: vector(sample(math.NaN(), "pod", "a"), sample(2, "pod", "b"))}, wantLen: 1},
		{name: "infinities omitted", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{value: vector(sample(math.Inf(1), "pod", "a"), sample(math.Inf(-1), "pod", "b"))}, wantLen: 0},
		{name: "+Inf omitted, one served", objects: &fakeObjects{names: []string{"a", "b"}}, answer: answer{value: vector(sample(math.Inf(1), "pod", "a"), sample(3, "pod", "b"))}, wantLen: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{query: tc.answer}}
			c := newCustom(discoveredRegistry(t), q, tc.objects)
			info := cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: "some_usage"}
			list, err := c.GetMetricBySelector(context.Background(), "somens", labels.Everything(), info, labels.Everything())
			if tc.wantCode != 0 {
				if list != nil {
					t.Errorf("got list %+v, want none", list)
				}
				if code := statusCode(err); code != tc.wantCode {
					t.Fatalf("error %v (HTTP %d), want HTTP %d", err, code, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != tc.wantLen {
				t.Fatalf("%d items, want %d", len(list.Items), tc.wantLen)
			}
		})
	}
}

func TestCustomUnknownMetric(t *testing.T) {
	tests := []struct {
		name         string
		info         cmprovider.CustomMetricInfo
		wantTriggers int
	}{
		{name: "unknown metric on pods", info: cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: "nope"}, wantTriggers: 1},
		{name: "unknown workload metric", info: cmprovider.CustomMetricInfo{GroupResource: deployments, Namespaced: true, Metric: "nope"}, wantTriggers: 1},
		// Known metric, wrong scope: pods metrics are namespaced only.
		{name: "root-scoped pods metric", info: cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: false, Metric: "some_usage"}, wantTriggers: 1},
		// A resource the cluster does not serve cannot appear by relisting.
		{name: "unknown resource", info: cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "widgets"}, Namespaced: true, Metric: "some_usage"}, wantTriggers: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			registry := discoveredRegistry(t)
			q := &fakeQuerier{t: t}
			c := newCustom(registry, q, &fakeObjects{names: []string{"x"}})
			ns := ""
			if tc.info.Namespaced {
				ns = "somens"
			}
			_, err := c.GetMetricByName(context.Background(), types.NamespacedName{Namespace: ns, Name: "x"}, tc.info, labels.Everything())
			if !apierrors.IsNotFound(err) {
				t.Errorf("GetMetricByName error %v, want NotFound", err)
			}
			_, err = c.GetMetricBySelector(context.Background(), ns, labels.Everything(), tc.info, labels.Everything())
			if !apierrors.IsNotFound(err) {
				t.Errorf("GetMetricBySelector error %v, want NotFound", err)
			}
			if got := registry.triggerCount(); got != 2*tc.wantTriggers {
				t.Errorf("%d on-demand listings requested, want %d", got, 2*tc.wantTriggers)
			}
			if n := len(q.seen()); n != 0 {
				t.Errorf("%d queries for an unknown metric", n)
			}
		})
	}
}

// Before the first discovery nothing is known: 503, not "not found".
func TestCustomBeforeDiscovery(t *testing.T) {
	c := newCustom(&fakeRegistry{}, &fakeQuerier{t: t}, &fakeObjects{names: []string{"x"}})
	info := cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: "some_usage"}
	if got := c.ListAllMetrics(); len(got) != 0 {
		t.Errorf("ListAllMetrics = %v before discovery, want nothing", got)
	}
	_, err := c.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns", Name: "x"}, info, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("GetMetricByName error %v, want ServiceUnavailable", err)
	}
	_, err = c.GetMetricBySelector(context.Background(), "ns", labels.Everything(), info, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("GetMetricBySelector error %v, want ServiceUnavailable", err)
	}
}

// With 2000 pods the name regex is split into several queries (prometheus-adapter#668); every
// pod must land in exactly one query, and the merged answer must follow the object list's order.
func TestCustomBySelectorBatches(t *testing.T) {
	const numPods = 2000
	names := make([]string, 0, numPods)
	for i := range numPods {
		// Four ReplicaSets of two Deployments, listed interleaved (not sorted) so that list order
		// differs from the sorted order batching uses.
		rs := []string{"web-7d9f8c6b5", "web-5c4b3a291", "api-6f5e4d3c2", "api-8a7b6c5d4"}[i%4]
		names = append(names, fmt.Sprintf("%s-%05x", rs, 0xfffff-i*37))
	}
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	const prefix = `sum(container_some_usage{namespace="somens",pod=~"`
	const suffix = `",container!="POD"}) by (pod)`
	matched := make([]int, numPods)
	var matchedMu = make(chan struct{}, 1)
	q := &fakeQuerier{t: t}
	q.fallback = func(query string) (model.Value, error) {
		if !strings.HasPrefix(query, prefix) || !strings.HasSuffix(query, suffix) {
			t.Errorf("unexpected query %.200s", query)
			return nil, errors.New("unexpected query")
		}
		re, err := strconv.Unquote(`"` + strings.TrimSuffix(strings.TrimPrefix(query, prefix), suffix) + `"`)
		if err != nil {
			t.Errorf("pod matcher of %.200s: %v", query, err)
			return nil, err
		}
		// Prometheus anchors regex matchers.
		podRE, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			t.Errorf("pod regex of %.200s: %v", query, err)
			return nil, err
		}
		var v model.Vector
		matchedMu <- struct{}{}
		defer func() { <-matchedMu }()
		for i, n := range names {
			if !podRE.MatchString(n) {
				continue
			}
			matched[i]++
			if i%7 == 3 {
				continue // no sample for this pod: it must be omitted, not zero
			}
			v = append(v, sample(float64(i), "pod", n))
		}
		return v, nil
	}
	c := newCustom(discoveredRegistry(t), q, &fakeObjects{names: names})
	info := cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: "some_usage"}
	list, err := c.GetMetricBySelector(context.Background(), "somens", labels.Everything(), info, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	queries := q.seen()
	if len(queries) < 2 {
		t.Fatalf("%d queries for %d pods, want the names split into several", len(queries), numPods)
	}
	for _, query := range queries {
		// DefaultMaxRegexBytes (8 KiB) of names plus the template.
		if len(query) > 8<<10+len(prefix)+len(suffix) {
			t.Errorf("query of %d bytes exceeds the name-regex bound", len(query))
		}
	}
	for i, n := range matched {
		if n != 1 {
			t.Errorf("pod %s matched by %d queries, want exactly 1", names[i], n)
		}
	}
	var want []string
	for i, n := range names {
		if i%7 != 3 {
			want = append(want, n)
		}
	}
	if len(list.Items) != len(want) {
		t.Fatalf("%d values, want %d", len(list.Items), len(want))
	}
	for j, mv := range list.Items {
		if mv.DescribedObject.Name != want[j] {
			t.Fatalf("item %d is %s, want %s (list order)", j, mv.DescribedObject.Name, want[j])
		}
		if wantV := *resource.NewQuantity(int64(index[want[j]]), resource.DecimalSI); mv.Value.Cmp(wantV) != 0 {
			t.Fatalf("%s = %s, want %s", want[j], mv.Value.String(), wantV.String())
		}
	}
}

func TestListAllMetrics(t *testing.T) {
	c := newCustom(discoveredRegistry(t), &fakeQuerier{t: t}, &fakeObjects{})
	got := map[string]bool{}
	for _, info := range c.ListAllMetrics() {
		key := fmt.Sprintf("%s/%s namespaced=%v", info.GroupResource, info.Metric, info.Namespaced)
		if got[key] {
			t.Errorf("%s listed twice", key)
		}
		got[key] = true
	}
	want := map[string]bool{}
	add := func(gr, metric string, namespaced bool) {
		want[fmt.Sprintf("%s/%s namespaced=%v", gr, metric, namespaced)] = true
	}
	// Discovered (as in the discovery registry test).
	for _, m := range []string{"some_usage", "some_count", "some_time"} {
		add("pods", m, true)
		add("namespaces", m, false)
	}
	add("services", "ingress_hits", true)
	add("pods", "ingress_hits", true)
	add("namespaces", "ingress_hits", false)
	add("services", "service_proxy_packets", true)
	add("namespaces", "service_proxy_packets", false)
	add("deployments.apps", "work_queue_wait", true)
	add("services", "work_queue_wait", true)
	add("namespaces", "work_queue_wait", false)
	add("nodes", "node_gigawatts", false)
	add("persistentvolumes", "volume_claims", false)
	add("nodes", "node_fan", false)
	// Workload aggregates of every pod metric, for every workload kind with a pod-name pattern.
	for _, w := range []string{"deployments.apps", "replicasets.apps", "statefulsets.apps"} {
		for _, m := range []string{"some_usage", "some_count", "some_time", "ingress_hits"} {
			add(w, m, true)
		}
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("ListAllMetrics: missing %q, unexpected %q", missing, extra)
	}
}

// Root-scoped objects: a Namespace (the API rewrites /namespaces/{ns}/metrics/{m} to the
// namespaces resource with no namespace), a Node and a PersistentVolume.
func TestCustomRootScoped(t *testing.T) {
	tests := []struct {
		name     string
		gr       schema.GroupResource
		object   string
		metric   string
		query    string
		label    string
		wantKind string
	}{
		{name: "namespace", gr: schema.GroupResource{Resource: "namespaces"}, object: "somens", metric: "some_usage",
			query: `sum(container_some_usage{namespace="somens",container!="POD"}) by (namespace)`, label: "namespace", wantKind: "Namespace"},
		{name: "namespace of a template rule", gr: schema.GroupResource{Resource: "namespaces"}, object: "somens", metric: "service_proxy_packets",
			query: `sum(service_proxy_packets{kube_namespace="somens"}) by (kube_namespace)`, label: "kube_namespace", wantKind: "Namespace"},
		{name: "node", gr: schema.GroupResource{Resource: "node"}, object: "somenode", metric: "node_gigawatts",
			query: `sum(node_gigawatts{kube_node="somenode"}) by (kube_node)`, label: "kube_node", wantKind: "Node"},
		{name: "persistent volume", gr: schema.GroupResource{Resource: "persistentvolumes"}, object: "somepv", metric: "volume_claims",
			query: `sum(rate(volume_claims_total{kube_persistentvolume="somepv"}[1m])) by (kube_persistentvolume)`, label: "kube_persistentvolume", wantKind: "PersistentVolume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{t: t, answers: map[string]answer{tc.query: {value: vector(sample(7, tc.label, tc.object))}}}
			c := newCustom(discoveredRegistry(t), q, &fakeObjects{})
			info := cmprovider.CustomMetricInfo{GroupResource: tc.gr, Namespaced: false, Metric: tc.metric}
			mv, err := c.GetMetricByName(context.Background(), types.NamespacedName{Name: tc.object}, info, labels.Everything())
			if err != nil {
				t.Fatal(err)
			}
			want := custom_metrics.ObjectReference{APIVersion: "v1", Kind: tc.wantKind, Name: tc.object}
			if mv.DescribedObject != want || mv.Value.String() != "7" {
				t.Errorf("got %+v = %s, want %+v = 7", mv.DescribedObject, mv.Value.String(), want)
			}
		})
	}
}
