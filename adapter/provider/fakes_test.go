package provider

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

// The series queries of the test config: the legacy default's two (label prefix "kube_") and the
// external queue rules' one.
const (
	containerQuery  = `{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`
	namespacedQuery = `{kube_namespace!="",__name__!~"^container_.*"}`
	queueQuery      = `{__name__="queue_depth"}`
)

// testConfig is prometheus-adapter's legacy default DC(1m, "kube_") (the config of conformance
// cases 15-18), plus Kapacity's default workloadPodNamePatterns and two external rules over
// queue_depth (cases 23-25): one namespaced, one with `namespaced: false`.
func testConfig(t testing.TB) *metricsconfig.MetricsDiscoveryConfig {
	t.Helper()
	cfg := metricsconfig.DefaultConfig(time.Minute, "kube_")
	kapacity, err := metricsconfig.Parse(deployconfig.KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	cfg.WorkloadPodNamePatterns = kapacity.WorkloadPodNamePatterns
	namespaceOverride := func() map[string]metricsconfig.GroupResource {
		return map[string]metricsconfig.GroupResource{"namespace": {Resource: "namespace"}}
	}
	notNamespaced := false
	cfg.ExternalRules = []metricsconfig.DiscoveryRule{
		{
			SeriesQuery:  queueQuery,
			Resources:    metricsconfig.ResourceMapping{Overrides: namespaceOverride()},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (name)`,
		},
		{
			SeriesQuery:  queueQuery,
			Resources:    metricsconfig.ResourceMapping{Overrides: namespaceOverride(), Namespaced: &notNamespaced},
			Name:         metricsconfig.NameMapping{As: "queue_depth_all"},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (name)`,
		},
	}
	return cfg
}

// testSeries is what the fake Prometheus lists for each series query.
var testSeries = map[string][]map[string]string{
	containerQuery: {
		{"__name__": "container_some_usage", "pod": "somepod1", "namespace": "somens", "container": "c"},
		{"__name__": "container_some_count_total", "pod": "somepod1", "namespace": "somens", "container": "c"},
		{"__name__": "container_some_time_seconds_total", "pod": "somepod1", "namespace": "somens", "container": "c"},
	},
	namespacedQuery: {
		{"__name__": "ingress_hits_total", "kube_ingress": "i", "kube_service": "somesvc", "kube_namespace": "somens"},
		{"__name__": "ingress_hits_total", "kube_ingress": "i", "kube_pod": "backend1", "kube_namespace": "somens"},
		{"__name__": "service_proxy_packets", "kube_service": "somesvc", "kube_namespace": "somens"},
		{"__name__": "work_queue_wait_seconds_total", "kube_deployment": "d", "kube_service": "somesvc", "kube_namespace": "somens"},
		{"__name__": "node_gigawatts", "kube_node": "somenode"},
		{"__name__": "volume_claims_total", "kube_persistentvolume": "somepv"},
		{"__name__": "node_fan_seconds_total", "kube_node": "somenode"},
	},
	queueQuery: {
		{"__name__": "queue_depth", "namespace": "default", "name": "q", "queue": "q1", "topic": "a"},
	},
}

// fakeLister serves testSeries to discovery.
type fakeLister struct{}

func (fakeLister) Series(_ context.Context, match string, _, _ time.Time, visit promclient.SeriesVisitor) error {
	series, ok := testSeries[match]
	if !ok {
		return fmt.Errorf("unexpected series query %s", match)
	}
	for _, s := range series {
		labels := map[string]string{}
		for k, v := range s {
			labels[k] = v
		}
		name := labels["__name__"]
		delete(labels, "__name__")
		visit(name, labels)
	}
	return nil
}

// fakeRegistry hands out a registry built by real discovery over fakeLister (or none) and counts
// on-demand listing requests.
type fakeRegistry struct {
	reg *discovery.Registry

	mu       sync.Mutex
	triggers int
}

func (f *fakeRegistry) Registry() *discovery.Registry { return f.reg }

func (f *fakeRegistry) TriggerOnDemand() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers++
}

func (f *fakeRegistry) triggerCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.triggers
}

func discoveredRegistry(t testing.TB) *fakeRegistry {
	t.Helper()
	rs, err := ruleset.Compile(testConfig(t), namingtest.NewRESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	r, err := discovery.New(fakeLister{}, func() *ruleset.RuleSet { return rs }, discovery.Options{Interval: time.Minute}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Relist(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &fakeRegistry{reg: r.Registry()}
}

// answer is the fake Prometheus' reply to one query.
type answer struct {
	value model.Value
	err   error
}

// fakeQuerier answers instant queries keyed by the exact query string; fallback, when set,
// answers the others. Any other query is a test failure: the point of most tests is the exact
// PromQL.
type fakeQuerier struct {
	t        testing.TB
	answers  map[string]answer
	fallback func(query string) (model.Value, error)

	mu      sync.Mutex
	queries []string
}

func (f *fakeQuerier) Query(_ context.Context, query string, _ time.Time) (model.Value, error) {
	f.mu.Lock()
	f.queries = append(f.queries, query)
	f.mu.Unlock()
	if a, ok := f.answers[query]; ok {
		return a.value, a.err
	}
	if f.fallback != nil {
		return f.fallback(query)
	}
	f.t.Errorf("unexpected query %s", query)
	return nil, fmt.Errorf("fake querier: unexpected query %s", query)
}

func (f *fakeQuerier) Series(context.Context, string, time.Time, time.Time, promclient.SeriesVisitor) error {
	return fmt.Errorf("fake querier: series calls are not used by the providers")
}

func (f *fakeQuerier) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// fakeObjects lists fixed names and records what it was asked.
type fakeObjects struct {
	names []string
	err   error

	gotGVR       schema.GroupVersionResource
	gotNamespace string
	gotSelector  labels.Selector
}

func (f *fakeObjects) ListNames(_ context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error) {
	f.gotGVR, f.gotNamespace, f.gotSelector = gvr, namespace, selector
	return f.names, f.err
}

// testNow is the providers' clock: MetricValue timestamps are the adapter's now.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newCustom(registry Registry, q promclient.Querier, objects ObjectLister) *Custom {
	return NewCustom(registry, q, namingtest.NewRESTMapper(), objects, NewMetrics(prometheus.NewRegistry()),
		Options{Now: func() time.Time { return testNow }})
}

func newExternal(registry Registry, q promclient.Querier) *External {
	return NewExternal(registry, q, namingtest.NewRESTMapper(), nil, NewMetrics(prometheus.NewRegistry()),
		Options{Now: func() time.Time { return testNow }})
}

func vector(samples ...*model.Sample) model.Vector { return model.Vector(samples) }

func sample(value float64, labelPairs ...string) *model.Sample {
	m := model.Metric{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		m[model.LabelName(labelPairs[i])] = model.LabelValue(labelPairs[i+1])
	}
	return &model.Sample{Metric: m, Value: model.SampleValue(value), Timestamp: model.TimeFromUnix(1700000000)}
}

func mustSelector(t testing.TB, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatalf("parsing selector %q: %v", s, err)
	}
	return sel
}
