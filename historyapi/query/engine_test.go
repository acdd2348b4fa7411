package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// testConfig is Kapacity's default config plus an object rule for services and a workload kind
// the cluster does not serve (configured patterns work without a REST mapping).
func testConfig(t *testing.T) *metricsconfig.MetricsDiscoveryConfig {
	t.Helper()
	cfg, err := metricsconfig.Load(deployconfig.KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	extra, err := metricsconfig.Parse([]byte(`
rules:
- seriesQuery: 'http_requests_total{namespace!="",service!=""}'
  resources: {overrides: {namespace: {resource: namespace}, service: {resource: service}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: 'node_load1{node!=""}'
  resources: {overrides: {node: {resource: node}}}
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}, namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
workloadPodNamePatterns:
- {group: example.com, kind: Rollout, pattern: '^%s-[a-z0-9]+$'}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Rules = extra.Rules
	cfg.ExternalRules = append(cfg.ExternalRules, extra.ExternalRules...)
	cfg.WorkloadPodNamePatterns = append(cfg.WorkloadPodNamePatterns, extra.WorkloadPodNamePatterns...)
	return cfg
}

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}, {Group: "apps", Version: "v1"}})
	for _, r := range []struct {
		gvk   schema.GroupVersionKind
		scope meta.RESTScope
	}{
		{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot},
		{schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, meta.RESTScopeNamespace},
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, meta.RESTScopeNamespace},
	} {
		m.Add(r.gvk, r.scope)
	}
	return m
}

type fakeRegistry struct {
	reg       *discovery.Registry
	triggered atomic.Int32
}

func (f *fakeRegistry) Registry() *discovery.Registry { return f.reg }
func (f *fakeRegistry) TriggerOnDemand()              { f.triggered.Add(1) }

// fakeLister answers every list with names, recording the selector.
type fakeLister struct {
	names []string
	mu    sync.Mutex
	asked []string
}

func (f *fakeLister) ListNames(_ context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("%s %s %s", gvr.Resource, namespace, selector))
	return f.names, nil
}

// fakeQuerier answers range queries with one series whose points lie on the asked grid, value =
// Unix seconds of the point (seriesPerAnswer series, when set); fail makes chosen calls fail.
type fakeQuerier struct {
	mu              sync.Mutex
	queries         []string
	ranges          []promclient.Range
	inFlight        atomic.Int32
	maxFlight       atomic.Int32
	fail            func(r promclient.Range) error
	seriesPerAnswer int
	streamed        atomic.Int64  // series handed to sinks
	block           chan struct{} // when set, range queries wait for it to close
}

func (f *fakeQuerier) QueryInstant(_ context.Context, query string, at time.Time, sink promclient.Sink) error {
	f.mu.Lock()
	f.queries = append(f.queries, query)
	f.mu.Unlock()
	f.streamed.Add(1)
	return sink.Series(model.Metric{"namespace": "prod"}, []model.SamplePair{{Value: 1.5, Timestamp: model.TimeFromUnixNano(at.UnixNano())}})
}

func (f *fakeQuerier) QueryRange(_ context.Context, query string, r promclient.Range, sink promclient.Sink) error {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxFlight.Load()
		if n <= m || f.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond) // let concurrent calls overlap
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	f.queries = append(f.queries, query)
	f.ranges = append(f.ranges, r)
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(r); err != nil {
			return err
		}
	}
	for s := range max(f.seriesPerAnswer, 1) {
		var values []model.SamplePair
		for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
			values = append(values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(t.Unix())})
		}
		metric := model.Metric{"namespace": "prod"}
		if f.seriesPerAnswer > 0 {
			metric["pod"] = model.LabelValue(fmt.Sprintf("web-%d", s))
		}
		f.streamed.Add(1)
		if err := sink.Series(metric, values); err != nil {
			return err
		}
	}
	return nil
}

type fixture struct {
	engine   *Engine
	querier  *fakeQuerier
	lister   *fakeLister
	registry *fakeRegistry
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	rs, err := ruleset.Compile(testConfig(t), testMapper())
	if err != nil {
		t.Fatal(err)
	}
	// What discovery would find for the rules above.
	series := map[string][]naming.Series{
		`http_requests_total{namespace!="",service!=""}`: {{Name: "http_requests_total", LabelNames: []string{"namespace", "service", "code"}}},
		`node_load1{node!=""}`:                           {{Name: "node_load1", LabelNames: []string{"node"}}},
		`{__name__="kube_pod_status_ready"}`:             {{Name: "kube_pod_status_ready", LabelNames: []string{"namespace", "pod", "condition"}}},
		`queue_depth{namespace!=""}`:                     {{Name: "queue_depth", LabelNames: []string{"namespace", "pod", "queue"}}},
	}
	f := &fixture{
		querier: &fakeQuerier{},
		lister:  &fakeLister{names: []string{"web-1", "web-2"}},
		registry: &fakeRegistry{reg: &discovery.Registry{
			Rules:    rs,
			Custom:   naming.CustomMetrics(rs.Custom, series),
			External: naming.ExternalMetrics(rs.External, series),
		}},
	}
	opts.Now = func() time.Time { return time.Unix(1_700_000_000, 0) }
	if opts.Authorizer == nil {
		opts.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	}
	f.engine = New(func() *ruleset.RuleSet { return rs }, f.registry, f.querier, testMapper(), f.lister, nil, opts)
	return f
}

// adminCtx is a request context of a caller the fixture's default authorizer allows everything.
func adminCtx() context.Context {
	return request.WithUser(context.Background(), &user.DefaultInfo{Name: "admin"})
}

var (
	deployment = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	cpuWindow  = 3 * time.Minute
)

// TestPlanRendersReferenceQueries checks the PromQL of every query kind against the reference
// cases of Kapacity's provider (prometheus-adapter-behaviour.md §2.3, case 31).
func TestPlanRendersReferenceQueries(t *testing.T) {
	tests := []struct {
		name       string
		q          v1alpha1.Query
		want       []string
		wantWindow bool
		wantList   string // the list call a selector query makes
	}{
		{
			name:       "pod resource by name",
			q:          v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Name: "web-1", Resource: "cpu"},
			want:       []string{`sum by (pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",namespace="prod",pod="web-1"}[3m]))`},
			wantWindow: true,
		},
		{
			name:       "pod resource by selector",
			q:          v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Selector: "app=web", Resource: "memory"},
			want:       []string{`sum by (pod) (container_memory_working_set_bytes{container!="",container!="POD",namespace="prod",pod=~"web-1|web-2"})`},
			wantWindow: true,
			wantList:   "pods prod app=web",
		},
		{
			name:       "container resource",
			q:          v1alpha1.Query{Kind: v1alpha1.ContainerResource, Namespace: "prod", Name: "web-1", Resource: "cpu", Container: "app"},
			want:       []string{`sum by (pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",container="app",namespace="prod",pod="web-1"}[3m]))`},
			wantWindow: true,
		},
		{
			name:       "workload resource",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"},
			want:       []string{`sum by (namespace) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}[3m]))`},
			wantWindow: true,
		},
		{
			name:       "workload resource ready pods only",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "memory", ReadyPodsOnly: true},
			want:       []string{`sum by (namespace) ((kube_pod_status_ready{condition="true"} == 1) * on (namespace, pod) group_left () sum by (namespace, pod) (container_memory_working_set_bytes{container!="",container!="POD",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}))`},
			wantWindow: true,
		},
		{
			// Conformance case 31.
			name:       "workload container resource",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu", Container: "app"},
			want:       []string{`sum by (namespace) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",container="app",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"}[3m]))`},
			wantWindow: true,
		},
		{
			name:       "workload container resource ready pods only, statefulset",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, Namespace: "prod", Name: "db", Resource: "cpu", Container: "app", ReadyPodsOnly: true},
			want:       []string{`sum by (namespace) ((kube_pod_status_ready{condition="true"} == 1) * on (namespace, pod) group_left () sum by (namespace, pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",container="app",pod=~"^db-(0|[1-9][0-9]*)$",namespace="prod"}[3m])))`},
			wantWindow: true,
		},
		{
			name:       "workload resource, replicaset",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, Namespace: "prod", Name: "web-5d8f7c9b6", Resource: "memory"},
			want:       []string{`sum by (namespace) (container_memory_working_set_bytes{container!="",container!="POD",pod=~"^web-5d8f7c9b6-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"})`},
			wantWindow: true,
		},
		{
			name:       "workload resource, configured custom kind",
			q:          v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: schema.GroupKind{Group: "example.com", Kind: "Rollout"}, Namespace: "prod", Name: "web", Resource: "memory"},
			want:       []string{`sum by (namespace) (container_memory_working_set_bytes{container!="",container!="POD",pod=~"^web-[a-z0-9]+$",namespace="prod"})`},
			wantWindow: true,
		},
		{
			name: "object by name with metric selector",
			q:    v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Service"}, Namespace: "prod", Name: "frontend", Metric: "http_requests_per_second", MetricSelector: "code=200"},
			want: []string{`sum(rate(http_requests_total{code="200",namespace="prod",service="frontend"}[2m])) by (service)`},
		},
		{
			name:     "object by selector",
			q:        v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Service"}, Namespace: "prod", Selector: "tier=web", Metric: "http_requests_per_second"},
			want:     []string{`sum(rate(http_requests_total{namespace="prod",service=~"web-1|web-2"}[2m])) by (service)`},
			wantList: "services prod tier=web",
		},
		{
			name: "cluster-scoped object ignores the namespace",
			q:    v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Node"}, Namespace: "prod", Name: "node-1", Metric: "node_load1"},
			want: []string{`max(node_load1{node="node-1"}) by (node)`},
		},
		{
			name: "external",
			q:    v1alpha1.Query{Kind: v1alpha1.External, Namespace: "prod", Metric: "ready_pods_count"},
			want: []string{`sum(kube_pod_status_ready{condition="true",namespace="prod"})`},
		},
		{
			name: "external with metric selector, all namespaces",
			q:    v1alpha1.Query{Kind: v1alpha1.External, Metric: "ready_pods_count", MetricSelector: "pod in (a,b)"},
			want: []string{`sum(kube_pod_status_ready{condition="true",pod=~"a|b"})`},
		},
		{
			// The reference's WorkloadExternal example.
			name: "workload external",
			q:    v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: deployment, Namespace: "prod", Name: "web", Metric: "ready_pods_count"},
			want: []string{`sum(kube_pod_status_ready{condition="true",pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",namespace="prod"})`},
		},
		{
			// Untrusted names are quoted, never spliced into PromQL.
			name:       "hostile pod name is escaped",
			q:          v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Name: `x"} or vector(1) #`, Resource: "cpu"},
			want:       []string{`sum by (pod) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",namespace="prod",pod="x\"} or vector(1) #"}[3m]))`},
			wantWindow: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			plan, err := f.engine.Plan(adminCtx(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(plan.Queries, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("queries:\n got %q\nwant %q", plan.Queries, tc.want)
			}
			if tc.wantWindow != (plan.Window != nil) || (plan.Window != nil && *plan.Window != cpuWindow) {
				t.Errorf("window = %v, want set=%v (3m)", plan.Window, tc.wantWindow)
			}
			if got := strings.Join(f.lister.asked, ";"); got != tc.wantList {
				t.Errorf("list calls = %q, want %q", got, tc.wantList)
			}
		})
	}
}

// TestBadRequests checks that requests that cannot be answered as asked are 400s (or 404 for an
// unknown metric) saying what is wrong, without querying Prometheus.
func TestBadRequests(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	workload := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}
	tests := []struct {
		name     string
		q        v1alpha1.Query
		r        *v1alpha1.Range
		opts     Options
		notFound bool
		want     string
	}{
		{name: "unknown workload kind", q: v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: schema.GroupKind{Kind: "Deployment"}, Namespace: "prod", Name: "web", Resource: "cpu"},
			want: `unknown workload type "Deployment"`},
		{name: "unknown resource", q: v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "gpu"},
			want: `unsupported resource "gpu"`},
		{name: "unknown resource, pods", q: v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Name: "p", Resource: "disk"},
			want: `unsupported resource "disk"`},
		{name: "step 0", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(time.Hour)},
			want: "step must be positive, got 0s"},
		{name: "end before start", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(-time.Hour), Step: time.Minute},
			want: "is before start"},
		{name: "range longer than the limit", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(31 * 24 * time.Hour), Step: time.Hour}, opts: Options{MaxRange: 30 * 24 * time.Hour},
			want: "range of 744h0m0s is longer than the limit of 720h0m0s"},
		{name: "too many points", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(24 * time.Hour), Step: time.Second}, opts: Options{MaxPoints: 10_000},
			want: "has 86401 points per series, more than the limit of 10000"},
		{name: "tiny step does not overflow", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(250 * 365 * 24 * time.Hour), Step: time.Millisecond},
			want: "more than the limit of 200000"},
		{name: "step shorter than Prometheus' millisecond", q: workload, r: &v1alpha1.Range{Start: start, End: start.Add(time.Second), Step: time.Microsecond},
			want: "step of 1µs is shorter than 1ms"},
		{name: "absurd step", q: workload, r: &v1alpha1.Range{Start: start, End: start, Step: 1000 * 24 * time.Hour},
			want: "step of 24000h0m0s is longer than the limit of 744h0m0s"},
		{name: "range longer than a duration holds", q: workload, r: &v1alpha1.Range{Start: time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), End: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Step: 31 * 24 * time.Hour},
			want: "longer than 292 years"},
		{name: "time beyond year 9999", q: workload, r: &v1alpha1.Range{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Step: time.Minute},
			want: "outside the years 0001 to 9999"},
		{name: "container missing", q: v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"},
			want: "need a container name"},
		{name: "pod query without namespace", q: v1alpha1.Query{Kind: v1alpha1.PodResource, Name: "p", Resource: "cpu"},
			want: "need a namespace"},
		{name: "bad label selector", q: v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Selector: "a in (", Resource: "cpu"},
			want: `label selector "a in ("`},
		{name: "unknown object kind", q: v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Widget"}, Namespace: "prod", Name: "w", Metric: "m"},
			want: `unknown object kind "Widget"`},
		{name: "namespaced object without namespace", q: v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Service"}, Name: "s", Metric: "http_requests_per_second"},
			want: "services is namespaced"},
		{name: "metric selector PromQL cannot express", q: v1alpha1.Query{Kind: v1alpha1.External, Metric: "ready_pods_count", MetricSelector: "x>3"},
			want: "operator not supported"},
		{name: "unknown external metric", q: v1alpha1.Query{Kind: v1alpha1.External, Metric: "nope"}, notFound: true,
			want: `"nope" not found`},
		{name: "unknown object metric", q: v1alpha1.Query{Kind: v1alpha1.Object, Workload: schema.GroupKind{Kind: "Service"}, Namespace: "prod", Name: "s", Metric: "nope"}, notFound: true,
			want: "no such metric discovered for services"},
		{name: "unknown kind", q: v1alpha1.Query{Kind: "Bogus"}, want: `unknown query kind "Bogus"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			var err error
			if tc.r != nil {
				_, err = f.engine.Range(adminCtx(), tc.q, *tc.r)
			} else {
				_, err = f.engine.Latest(adminCtx(), tc.q)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.notFound != apierrors.IsNotFound(err) || (!tc.notFound && !apierrors.IsBadRequest(err)) {
				t.Errorf("error %v has reason %q, want %s", err, apierrors.ReasonForError(err), map[bool]string{true: "NotFound", false: "BadRequest"}[tc.notFound])
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if len(f.querier.queries) != 0 {
				t.Errorf("Prometheus was queried: %q", f.querier.queries)
			}
		})
	}
}

func TestNoRegistryYetIsUnavailable(t *testing.T) {
	f := newFixture(t, Options{})
	f.registry.reg = nil
	_, err := f.engine.Latest(adminCtx(), v1alpha1.Query{Kind: v1alpha1.External, Metric: "ready_pods_count"})
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("error = %v, want 503", err)
	}
	// Resource queries need no discovery.
	if _, err := f.engine.Latest(adminCtx(), v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}); err != nil {
		t.Errorf("workload query before discovery: %v", err)
	}
}

func TestLatest(t *testing.T) {
	f := newFixture(t, Options{})
	got, err := f.engine.Latest(adminCtx(), v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0] != (v1alpha1.Point{Timestamp: 1_700_000_000_000, Value: 1.5}) ||
		got[0].Window == nil || got[0].Window.Duration != cpuWindow || got[0].Labels["namespace"] != "prod" {
		t.Errorf("latest = %+v", got)
	}
}

func TestShards(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		r         v1alpha1.Range
		maxPoints int
		want      []string // start-end offsets in steps
	}{
		{"one point", v1alpha1.Range{Start: t0, End: t0, Step: time.Minute}, 11000, []string{"0-0"}},
		{"fits", v1alpha1.Range{Start: t0, End: t0.Add(10999 * time.Minute), Step: time.Minute}, 11000, []string{"0-10999"}},
		{"one more point", v1alpha1.Range{Start: t0, End: t0.Add(11000 * time.Minute), Step: time.Minute}, 11000, []string{"0-10999", "11000-11000"}},
		{"7 days at 1m in days", v1alpha1.Range{Start: t0, End: t0.Add(7 * 24 * time.Hour), Step: time.Minute}, 1440,
			[]string{"0-1439", "1440-2879", "2880-4319", "4320-5759", "5760-7199", "7200-8639", "8640-10079", "10080-10080"}},
		{"end off the grid", v1alpha1.Range{Start: t0, End: t0.Add(250 * time.Second), Step: time.Minute}, 3, []string{"0-2", "3-4"}},
		{"step past the span overflow", v1alpha1.Range{Start: t0, End: t0.Add(100 * 24 * time.Hour), Step: 10 * 24 * time.Hour}, 11000, []string{"0-10"}},
		{"invalid: no step", v1alpha1.Range{Start: t0, End: t0.Add(time.Hour)}, 11000, nil},
		{"invalid: end before start", v1alpha1.Range{Start: t0, End: t0.Add(-time.Hour), Step: time.Minute}, 11000, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			total := int64(0)
			for _, s := range Shards(tc.r, tc.maxPoints) {
				got = append(got, fmt.Sprintf("%d-%d", s.Start.Sub(t0)/tc.r.Step, s.End.Sub(t0)/tc.r.Step))
				if s.Points() > int64(tc.maxPoints) {
					t.Errorf("shard %v has %d points", s, s.Points())
				}
				total += s.Points()
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("shards = %v, want %v", got, tc.want)
			}
			if total != tc.r.Points() {
				t.Errorf("shards hold %d points, the range %d", total, tc.r.Points())
			}
		})
	}
}

func TestRangeShardsConcurrentlyAndMerges(t *testing.T) {
	f := newFixture(t, Options{ShardPoints: 100, Concurrency: 3})
	start := time.Unix(1_700_000_000, 0)
	r := v1alpha1.Range{Start: start, End: start.Add(999 * time.Minute), Step: time.Minute} // 1000 points, 10 shards
	got, err := f.engine.Range(adminCtx(), v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.querier.ranges) != 10 {
		t.Errorf("%d Prometheus calls, want 10 shards", len(f.querier.ranges))
	}
	if m := f.querier.maxFlight.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d calls ran at once, want 2..3 (the bound)", m)
	}
	if len(got) != 1 {
		t.Fatalf("%d series, want 1 merged", len(got))
	}
	if len(got[0].Points) != 1000 {
		t.Fatalf("%d points, want 1000", len(got[0].Points))
	}
	for i, p := range got[0].Points {
		if want := start.Add(time.Duration(i) * time.Minute); p.Timestamp != want.UnixMilli() || float64(p.Value) != float64(want.Unix()) {
			t.Fatalf("point %d = %+v, want at %s", i, p, want)
		}
	}
}

func TestRangeFailsWhenAShardFails(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	r := v1alpha1.Range{Start: start, End: start.Add(299 * time.Minute), Step: time.Minute}
	q := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"prometheus unreachable", errors.New("dial tcp: connection refused"), true},
		{"prometheus rejects", &promclient.APIError{Endpoint: "query_range", Status: 422, ErrorType: "execution", Message: "too many samples"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{ShardPoints: 100, Concurrency: 1})
			f.querier.fail = func(r promclient.Range) error {
				if r.Start.Equal(start.Add(100 * time.Minute)) {
					return tc.err
				}
				return nil
			}
			got, err := f.engine.Range(adminCtx(), q, r)
			if err == nil {
				t.Fatalf("no error; got %d series", len(got))
			}
			if got != nil {
				t.Errorf("partial result returned: %d series", len(got))
			}
			if apierrors.IsServiceUnavailable(err) != tc.unavailable || (!tc.unavailable && !apierrors.IsInternalError(err)) {
				t.Errorf("error %v: reason %s", err, apierrors.ReasonForError(err))
			}
			if !strings.Contains(err.Error(), "shard 2 of 3") || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("error %q does not name the shard and cause", err)
			}
		})
	}
}
