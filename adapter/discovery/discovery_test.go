package discovery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// The two series queries of prometheus-adapter's legacy default config with the label prefix
// "kube_" (spec §1.9): rules 0-2 share the container query, rules 3-5 the namespaced one.
const (
	containerQuery  = `{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`
	namespacedQuery = `{kube_namespace!="",__name__!~"^container_.*"}`
)

type fakeSeries struct {
	name   string
	labels map[string]string
}

type seriesCall struct {
	match      string
	start, end time.Time
}

// fakeLister serves a fixed series set per exact match[] string and records every call. A query
// it does not know is an error, so a test notices when discovery asks for something unexpected.
type fakeLister struct {
	mu     sync.Mutex
	series map[string][]fakeSeries
	fail   map[string]error
	calls  []seriesCall
}

func (f *fakeLister) Series(_ context.Context, match string, start, end time.Time, visit promclient.SeriesVisitor) error {
	f.mu.Lock()
	f.calls = append(f.calls, seriesCall{match, start, end})
	err := f.fail[match]
	series, ok := f.series[match]
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("fake lister: unexpected match[] %s", match)
	}
	// The visitor's map is reused between calls, as the real client does, so that a relister
	// keeping a reference to it would be caught.
	labels := map[string]string{}
	for _, s := range series {
		clear(labels)
		for k, v := range s.labels {
			labels[k] = v
		}
		visit(s.name, labels)
	}
	return nil
}

func (f *fakeLister) setFail(match string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[match] = err
}

func (f *fakeLister) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// registrySeries is the fixed series set of the registry test, in the spirit of
// prometheus-adapter's series_registry_test: cAdvisor gauges and counters, namespaced gauges and
// counters labelled kube_<resource>, and cluster-scoped ones. Several series repeat a shape
// with other label values, which must fold into one.
func registrySeries() map[string][]fakeSeries {
	pod := func(p string) map[string]string {
		return map[string]string{"pod": p, "namespace": "somens", "container": "somecont"}
	}
	return map[string][]fakeSeries{
		containerQuery: {
			{"container_some_usage", pod("somepod1")},
			{"container_some_usage", pod("somepod2")}, // same shape: folded
			{"container_some_count_total", pod("somepod1")},
			{"container_some_time_seconds_total", pod("somepod1")},
		},
		namespacedQuery: {
			{"ingress_hits_total", map[string]string{"kube_ingress": "someingress", "kube_service": "somesvc", "kube_namespace": "somens"}},
			{"ingress_hits_total", map[string]string{"kube_ingress": "otheringress", "kube_service": "othersvc", "kube_namespace": "otherns"}},
			// Another shape of the same metric: adds the pods resource.
			{"ingress_hits_total", map[string]string{"kube_ingress": "someingress", "kube_pod": "backend1", "kube_namespace": "somens"}},
			{"service_proxy_packets", map[string]string{"kube_service": "somesvc", "kube_namespace": "somens"}},
			{"work_queue_wait_seconds_total", map[string]string{"kube_deployment": "somedep", "kube_service": "somesvc", "kube_namespace": "somens"}},
			{"node_gigawatts", map[string]string{"kube_node": "somenode"}},
			{"volume_claims_total", map[string]string{"kube_persistentvolume": "somepv"}},
			{"node_fan_seconds_total", map[string]string{"kube_node": "somenode"}},
		},
	}
}

// wantRegistryKeys is derived by hand from spec §1.6.1-§1.6.3 and §1.9 for registrySeries (not
// from running the code). Per series: the rule it passes (filters and name.matches), the API name,
// and one key per label naming a resource the mapper knows; namespaces, nodes and
// persistentvolumes are root-scoped, everything else namespaced. The label "container" has no
// override in rules 0-2 and kube_ingress names no known resource, so neither adds a key.
//
//	container_some_usage              rule 2 -> some_usage:           pods, namespaces
//	container_some_count_total        rule 1 -> some_count:           pods, namespaces
//	container_some_time_seconds_total rule 0 -> some_time:            pods, namespaces
//	ingress_hits_total (2 shapes)     rule 4 -> ingress_hits:         services, pods, namespaces
//	service_proxy_packets             rule 3 -> service_proxy_packets: services, namespaces
//	work_queue_wait_seconds_total     rule 5 -> work_queue_wait:      deployments.apps, services, namespaces
//	node_gigawatts                    rule 3 -> node_gigawatts:       nodes
//	volume_claims_total               rule 4 -> volume_claims:        persistentvolumes
//	node_fan_seconds_total            rule 5 -> node_fan:             nodes
//
// 17 keys, six of them on namespaces.
func wantRegistryKeys() map[naming.CustomMetricKey]string {
	ns := func(resource, metric string) naming.CustomMetricKey {
		return naming.CustomMetricKey{GroupResource: schema.GroupResource{Resource: resource}, Namespaced: true, Metric: metric}
	}
	root := func(resource, metric string) naming.CustomMetricKey {
		return naming.CustomMetricKey{GroupResource: schema.GroupResource{Resource: resource}, Namespaced: false, Metric: metric}
	}
	return map[naming.CustomMetricKey]string{
		ns("pods", "some_usage"):                    "container_some_usage",
		root("namespaces", "some_usage"):            "container_some_usage",
		ns("pods", "some_count"):                    "container_some_count_total",
		root("namespaces", "some_count"):            "container_some_count_total",
		ns("pods", "some_time"):                     "container_some_time_seconds_total",
		root("namespaces", "some_time"):             "container_some_time_seconds_total",
		ns("services", "ingress_hits"):              "ingress_hits_total",
		ns("pods", "ingress_hits"):                  "ingress_hits_total",
		root("namespaces", "ingress_hits"):          "ingress_hits_total",
		ns("services", "service_proxy_packets"):     "service_proxy_packets",
		root("namespaces", "service_proxy_packets"): "service_proxy_packets",
		{GroupResource: schema.GroupResource{Group: "apps", Resource: "deployments"}, Namespaced: true, Metric: "work_queue_wait"}: "work_queue_wait_seconds_total",
		ns("services", "work_queue_wait"):          "work_queue_wait_seconds_total",
		root("namespaces", "work_queue_wait"):      "work_queue_wait_seconds_total",
		root("nodes", "node_gigawatts"):            "node_gigawatts",
		root("persistentvolumes", "volume_claims"): "volume_claims_total",
		root("nodes", "node_fan"):                  "node_fan_seconds_total",
	}
}

func legacyRules(t testing.TB, cfg *metricsconfig.MetricsDiscoveryConfig) func() *ruleset.RuleSet {
	t.Helper()
	rs, err := ruleset.Compile(cfg, namingtest.NewRESTMapper())
	if err != nil {
		t.Fatalf("compiling config: %v", err)
	}
	return func() *ruleset.RuleSet { return rs }
}

func newTestRelister(t testing.TB, lister SeriesLister, opts Options) *Relister {
	t.Helper()
	r, err := New(lister, legacyRules(t, metricsconfig.DefaultConfig(time.Minute, "kube_")), opts, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRelistBuildsLegacyRegistry(t *testing.T) {
	lister := &fakeLister{series: registrySeries()}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := newTestRelister(t, lister, Options{Interval: time.Minute, MaxAge: 5 * time.Minute})
	r.now = func() time.Time { return now }

	if r.Registry() != nil {
		t.Fatal("registry before the first listing is not nil")
	}
	if err := r.Relist(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := r.Registry()
	if reg == nil {
		t.Fatal("no registry after a successful listing")
	}

	want := wantRegistryKeys()
	if len(want) != 17 {
		t.Fatalf("test bug: %d expected keys, the reference lists 17", len(want))
	}
	for key, series := range want {
		ref, ok := reg.Custom[key]
		if !ok {
			t.Errorf("missing metric %s (namespaced=%v) %s", key.GroupResource, key.Namespaced, key.Metric)
			continue
		}
		if ref.SeriesName != series {
			t.Errorf("%s/%s served by series %q, want %q", key.GroupResource, key.Metric, ref.SeriesName, series)
		}
	}
	for key := range reg.Custom {
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected metric %s (namespaced=%v) %s", key.GroupResource, key.Namespaced, key.Metric)
		}
	}
	if len(reg.External) != 0 {
		t.Errorf("external metrics %v, the legacy config has no externalRules", reg.External)
	}
	// Pod metrics feed the workload aggregates: every namespaced pods key.
	var podMetrics []string
	for m := range reg.PodMetrics {
		podMetrics = append(podMetrics, m)
	}
	sort.Strings(podMetrics)
	if got, wantPods := strings.Join(podMetrics, ","), "ingress_hits,some_count,some_time,some_usage"; got != wantPods {
		t.Errorf("pod metrics %s, want %s", got, wantPods)
	}
	if !reg.Listed.Equal(now) {
		t.Errorf("Listed = %v, want %v", reg.Listed, now)
	}

	// One call per distinct series query (six rules, two queries), each with start = now -
	// maxAge and end = now.
	sort.Slice(lister.calls, func(i, j int) bool { return lister.calls[i].match < lister.calls[j].match })
	wantCalls := []seriesCall{
		{containerQuery, now.Add(-5 * time.Minute), now},
		{namespacedQuery, now.Add(-5 * time.Minute), now},
	}
	if len(lister.calls) != len(wantCalls) {
		t.Fatalf("series calls %+v, want %+v", lister.calls, wantCalls)
	}
	for i, c := range lister.calls {
		w := wantCalls[i]
		if c.match != w.match || !c.start.Equal(w.start) || !c.end.Equal(w.end) {
			t.Errorf("series call %d = %+v, want %+v", i, c, w)
		}
	}
}

// Discovery only needs names and label names, so series differing only in label values (or in
// the order labels arrive) are one shape; a different label-name set is another.
func TestListShapesFolds(t *testing.T) {
	tests := []struct {
		name       string
		series     []fakeSeries
		wantShapes []naming.Series
	}{
		{
			name: "same labels, other values",
			series: []fakeSeries{
				{"m", map[string]string{"pod": "a", "namespace": "x"}},
				{"m", map[string]string{"namespace": "y", "pod": "b"}},
				{"m", map[string]string{"pod": "c", "namespace": "x"}},
			},
			wantShapes: []naming.Series{{Name: "m", LabelNames: []string{"namespace", "pod"}}},
		},
		{
			name: "other label set and other name",
			series: []fakeSeries{
				{"m", map[string]string{"pod": "a", "namespace": "x"}},
				{"m", map[string]string{"pod": "a", "namespace": "x", "container": "c"}},
				{"n", map[string]string{"pod": "a", "namespace": "x"}},
				{"m", map[string]string{"pod": "b", "namespace": "x", "container": "d"}},
			},
			wantShapes: []naming.Series{
				{Name: "m", LabelNames: []string{"container", "namespace", "pod"}},
				{Name: "m", LabelNames: []string{"namespace", "pod"}},
				{Name: "n", LabelNames: []string{"namespace", "pod"}},
			},
		},
		{
			name: "label names are not confused with their concatenation",
			series: []fakeSeries{
				{"m", map[string]string{"ab": "1"}},
				{"m", map[string]string{"a": "1", "b": "2"}},
			},
			wantShapes: []naming.Series{
				{Name: "m", LabelNames: []string{"a", "b"}},
				{Name: "m", LabelNames: []string{"ab"}},
			},
		},
		{
			name:       "empty answer",
			series:     nil,
			wantShapes: []naming.Series{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lister := &fakeLister{series: map[string][]fakeSeries{"q": tc.series}}
			r := newTestRelister(t, lister, Options{Interval: time.Minute})
			shapes, count, err := r.listShapes(context.Background(), "q", time.Unix(0, 0), time.Unix(60, 0))
			if err != nil {
				t.Fatal(err)
			}
			if count != len(tc.series) {
				t.Errorf("counted %d series, want %d", count, len(tc.series))
			}
			if fmt.Sprint(shapes) != fmt.Sprint(tc.wantShapes) {
				t.Errorf("shapes %v, want %v", shapes, tc.wantShapes)
			}
		})
	}
}

func TestRelistFailureKeepsPreviousRegistry(t *testing.T) {
	tests := []struct {
		name     string
		failing  string
		firstRun bool // the failure happens on the first listing (no previous registry)
	}{
		{name: "container query fails", failing: containerQuery},
		{name: "namespaced query fails", failing: namespacedQuery},
		{name: "first listing fails", failing: namespacedQuery, firstRun: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lister := &fakeLister{series: registrySeries()}
			r := newTestRelister(t, lister, Options{Interval: time.Minute})
			var before *Registry
			if !tc.firstRun {
				if err := r.Relist(context.Background()); err != nil {
					t.Fatal(err)
				}
				before = r.Registry()
			}
			cause := errors.New("prometheus is down")
			lister.setFail(tc.failing, cause)
			err := r.Relist(context.Background())
			if !errors.Is(err, cause) {
				t.Fatalf("Relist error = %v, want it to wrap %v", err, cause)
			}
			if !strings.Contains(err.Error(), tc.failing) {
				t.Errorf("error %q does not name the failing series query", err)
			}
			if got := r.Registry(); got != before {
				t.Errorf("registry replaced after a failed listing")
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantErr    string
		wantMaxAge time.Duration
	}{
		{name: "max age defaults to interval", opts: Options{Interval: time.Minute}, wantMaxAge: time.Minute},
		{name: "max age above interval", opts: Options{Interval: time.Minute, MaxAge: 10 * time.Minute}, wantMaxAge: 10 * time.Minute},
		{name: "max age below interval", opts: Options{Interval: 10 * time.Minute, MaxAge: time.Minute}, wantErr: "must not be less than the relist interval"},
		{name: "zero interval", opts: Options{}, wantErr: "must be positive"},
		{name: "negative interval", opts: Options{Interval: -time.Second}, wantErr: "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(&fakeLister{}, func() *ruleset.RuleSet { return nil }, tc.opts, prometheus.NewRegistry())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.opts.MaxAge != tc.wantMaxAge {
				t.Errorf("MaxAge = %s, want %s", r.opts.MaxAge, tc.wantMaxAge)
			}
		})
	}
}

func TestTriggerOnDemandRateLimit(t *testing.T) {
	const limit = time.Minute
	r := newTestRelister(t, &fakeLister{}, Options{Interval: time.Hour, MinOnDemandInterval: limit})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }

	steps := []struct {
		advance time.Duration
		want    bool // a listing is requested
	}{
		{0, true},                      // first request ever
		{time.Second, false},           // within the limit
		{limit - 2*time.Second, false}, // still within the limit (1s short)
		{time.Second, true},            // exactly the limit since the last accepted request
		{limit / 2, false},             // limited again, measured from the last accepted one
		{limit / 2, true},
	}
	for i, s := range steps {
		clock = clock.Add(s.advance)
		r.TriggerOnDemand()
		got := false
		select {
		case <-r.wake:
			got = true
		default:
		}
		if got != s.want {
			t.Fatalf("step %d (+%s): listing requested = %v, want %v", i, s.advance, got, s.want)
		}
	}
}

// Trigger never blocks, even when a wake-up is already pending.
func TestTriggerCoalesces(t *testing.T) {
	r := newTestRelister(t, &fakeLister{}, Options{Interval: time.Hour})
	for range 3 {
		r.Trigger()
	}
	if len(r.wake) != 1 {
		t.Fatalf("%d pending wake-ups, want 1", len(r.wake))
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunListsOnTriggerAndStopsWithContext(t *testing.T) {
	lister := &fakeLister{series: registrySeries()}
	// An hour-long interval: any listing after the first comes from Trigger.
	r := newTestRelister(t, lister, Options{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	waitFor(t, "the first listing", func() bool { return r.Registry() != nil })
	first := r.Registry()
	r.Trigger()
	waitFor(t, "the triggered listing", func() bool { return r.Registry() != first })
	if n := lister.callCount(); n != 4 {
		t.Errorf("%d series calls after two listings, want 4", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// A failing listing is retried after a backoff (one second at first), not after the interval.
func TestRunRetriesFailedListing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the one-second retry backoff")
	}
	lister := &fakeLister{series: registrySeries()}
	lister.setFail(containerQuery, errors.New("down"))
	r := newTestRelister(t, lister, Options{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	waitFor(t, "the first failed listing", func() bool { return lister.callCount() >= 1 })
	lister.setFail(containerQuery, nil)
	waitFor(t, "a successful retry", func() bool { return r.Registry() != nil })
	cancel()
	<-done
}
