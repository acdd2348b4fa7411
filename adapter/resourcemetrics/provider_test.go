package resourcemetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/resourcequery"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

var (
	now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	t1  = model.TimeFromUnix(now.Unix() - 30)
	t2  = model.TimeFromUnix(now.Unix() - 20)
	t3  = model.TimeFromUnix(now.Unix() - 10)
)

// fakeProm answers exact query strings; any other query is an error so that
// a query built differently from the test's expectation fails loudly.
type fakeProm struct {
	mu      sync.Mutex
	answers map[string]answer
	// answerFunc, when set, answers queries missing from answers.
	answerFunc func(query string) (model.Vector, error)
	calls      []string
}

type answer struct {
	vec model.Vector
	// other, when set, is answered instead of vec.
	other model.Value
	err   error
}

func (f *fakeProm) Query(_ context.Context, query string, at time.Time) (model.Value, error) {
	f.mu.Lock()
	f.calls = append(f.calls, query)
	f.mu.Unlock()
	if !at.Equal(now) {
		return nil, fmt.Errorf("query evaluated at %v, want %v", at, now)
	}
	if a, ok := f.answers[query]; ok {
		if a.other != nil {
			return a.other, a.err
		}
		return a.vec, a.err
	}
	if f.answerFunc != nil {
		return f.answerFunc(query)
	}
	return nil, fmt.Errorf("unexpected query %q", query)
}

func (f *fakeProm) Series(context.Context, string, time.Time, time.Time, promclient.SeriesVisitor) error {
	return errors.New("not implemented")
}

// config is Kapacity's default config, plus node queries (the default has
// none) when withNodes is set.
func config(t *testing.T, withNodes bool) *metricsconfig.MetricsDiscoveryConfig {
	t.Helper()
	cfg, err := metricsconfig.Load(deployconfig.KapacityDefault())
	if err != nil {
		t.Fatalf("loading the default config: %v", err)
	}
	if withNodes {
		rr := cfg.ResourceRules
		rr.CPU.NodeQuery = `sum by (<<.GroupBy>>) (irate(node_cpu_seconds_total{mode!="idle",<<.LabelMatchers>>}[3m]))`
		rr.Memory.NodeQuery = `sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})`
		for _, r := range []*metricsconfig.ResourceRule{&rr.CPU, &rr.Memory} {
			r.Resources.Overrides["node"] = metricsconfig.GroupResource{Resource: "node"}
		}
	}
	return cfg
}

func newProvider(t *testing.T, cfg *metricsconfig.MetricsDiscoveryConfig, prom *fakeProm) (*Provider, *resourcequery.Builder) {
	t.Helper()
	mapper := namingtest.NewMapper()
	p, err := New(cfg, mapper, prom, Options{Now: func() time.Time { return now }, MaxConcurrency: 3})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b, err := resourcequery.NewBuilder(cfg, mapper)
	if err != nil {
		t.Fatalf("NewBuilder: %v", err)
	}
	return p, b
}

// oneQuery returns the single query for the sorted names.
func oneQuery(t *testing.T, queries []string, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) != 1 {
		t.Fatalf("got %d batches, want 1", len(queries))
	}
	return queries[0]
}

func podQuery(t *testing.T, b *resourcequery.Builder, res resourcequery.ResourceName, ns string, pods ...string) string {
	t.Helper()
	sort.Strings(pods)
	qs, err := b.PodContainersResource(res, ns, pods, 0)
	return oneQuery(t, qs, err)
}

func nodeQuery(t *testing.T, b *resourcequery.Builder, res resourcequery.ResourceName, nodes ...string) string {
	t.Helper()
	sort.Strings(nodes)
	qs, err := b.NodeResource(res, nodes, 0)
	return oneQuery(t, qs, err)
}

func containerSample(pod, container string, v float64, ts model.Time) *model.Sample {
	return &model.Sample{
		Metric:    model.Metric{"pod": model.LabelValue(pod), "container": model.LabelValue(container)},
		Value:     model.SampleValue(v),
		Timestamp: ts,
	}
}

func nodeSample(node string, v float64, ts model.Time) *model.Sample {
	return &model.Sample{Metric: model.Metric{"node": model.LabelValue(node)}, Value: model.SampleValue(v), Timestamp: ts}
}

func pod(ns, name string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}}
}

// podResult is the comparable essence of a PodMetrics.
type podResult struct {
	Timestamp  time.Time
	Containers map[string]string // name -> "cpu/memory"
}

func summarizePods(t *testing.T, ms []metrics.PodMetrics) map[string]podResult {
	t.Helper()
	out := map[string]podResult{}
	for _, m := range ms {
		if m.Window.Duration != 3*time.Minute {
			t.Errorf("%s/%s: window %v, want 3m", m.Namespace, m.Name, m.Window.Duration)
		}
		if !m.CreationTimestamp.Time.Equal(now) {
			t.Errorf("%s/%s: creationTimestamp %v, want now", m.Namespace, m.Name, m.CreationTimestamp)
		}
		if m.Labels["app"] != m.Name {
			t.Errorf("%s/%s: labels %v not copied from the pod", m.Namespace, m.Name, m.Labels)
		}
		r := podResult{Timestamp: m.Timestamp.Time.UTC(), Containers: map[string]string{}}
		for _, c := range m.Containers {
			cpu, mem := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
			r.Containers[c.Name] = cpu.String() + "/" + mem.String()
		}
		key := m.Namespace + "/" + m.Name
		if _, dup := out[key]; dup {
			t.Errorf("%s reported twice", key)
		}
		out[key] = r
	}
	return out
}

func TestGetPodMetrics(t *testing.T) {
	const cpu, mem = resourcequery.CPU, resourcequery.Memory
	fail := errors.New("prometheus unavailable")
	tests := []struct {
		name    string
		pods    []*metav1.PartialObjectMetadata
		answers func(t *testing.T, b *resourcequery.Builder) map[string]answer
		want    map[string]podResult
		wantErr string
	}{{
		name: "pods across two namespaces",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("b", "p3"), pod("a", "p2")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1", "p2"): {vec: model.Vector{
					containerSample("p1", "app", 0.25, t2), containerSample("p1", "sidecar", 0.0015, t3),
					containerSample("p2", "app", 1, t3),
				}},
				podQuery(t, b, mem, "a", "p1", "p2"): {vec: model.Vector{
					containerSample("p1", "app", 64<<20, t3), containerSample("p1", "sidecar", 1<<20, t1),
					containerSample("p2", "app", 1<<30, t3),
				}},
				podQuery(t, b, cpu, "b", "p3"): {vec: model.Vector{containerSample("p3", "app", 2, t3)}},
				podQuery(t, b, mem, "b", "p3"): {vec: model.Vector{containerSample("p3", "app", 1000, t2)}},
			}
		},
		want: map[string]podResult{
			// The earliest of all the pod's samples.
			"a/p1": {Timestamp: t1.Time().UTC(), Containers: map[string]string{"app": "250m/64Mi", "sidecar": "1m/1Mi"}},
			"a/p2": {Timestamp: t3.Time().UTC(), Containers: map[string]string{"app": "1/1Gi"}},
			// 1000 bytes is no power of 1024: Quantity prints it decimal.
			"b/p3": {Timestamp: t2.Time().UTC(), Containers: map[string]string{"app": "2/1k"}},
		},
	}, {
		name: "pod without samples omitted, others returned",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("a", "gone")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1", "gone"): {vec: model.Vector{containerSample("p1", "app", 0.5, t3)}},
				podQuery(t, b, mem, "a", "p1", "gone"): {vec: model.Vector{containerSample("p1", "app", 100, t3)}},
			}
		},
		want: map[string]podResult{"a/p1": {Timestamp: t3.Time().UTC(), Containers: map[string]string{"app": "500m/100"}}},
	}, {
		name: "container with only one resource omitted, not zero-filled",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("a", "cpuonly"), pod("a", "memonly")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1", "cpuonly", "memonly"): {vec: model.Vector{
					containerSample("p1", "app", 0.5, t3), containerSample("p1", "new", 0.1, t1),
					containerSample("cpuonly", "app", 0.5, t3),
				}},
				podQuery(t, b, mem, "a", "p1", "cpuonly", "memonly"): {vec: model.Vector{
					containerSample("p1", "app", 100, t2),
					containerSample("memonly", "app", 100, t3),
				}},
			}
		},
		// p1's "new" container is left out, and so is its timestamp.
		want: map[string]podResult{"a/p1": {Timestamp: t2.Time().UTC(), Containers: map[string]string{"app": "500m/100"}}},
	}, {
		name: "non-finite samples skipped, negative cpu clamped, negative memory skipped",
		pods: []*metav1.PartialObjectMetadata{pod("a", "nan"), pod("a", "inf"), pod("a", "neg"), pod("a", "negmem")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "nan", "inf", "neg", "negmem"): {vec: model.Vector{
					containerSample("nan", "app", math.NaN(), t3), containerSample("nan", "ok", 0.2, t3),
					containerSample("inf", "app", math.Inf(1), t3),
					containerSample("neg", "app", -0.001, t3),
					containerSample("negmem", "app", 0.1, t3),
				}},
				podQuery(t, b, mem, "a", "nan", "inf", "neg", "negmem"): {vec: model.Vector{
					containerSample("nan", "app", 100, t3), containerSample("nan", "ok", 200, t3),
					containerSample("inf", "app", 100, t3),
					containerSample("neg", "app", 100, t3),
					containerSample("negmem", "app", -5, t3),
				}},
			}
		},
		want: map[string]podResult{
			"a/nan": {Timestamp: t3.Time().UTC(), Containers: map[string]string{"ok": "200m/200"}},
			"a/neg": {Timestamp: t3.Time().UTC(), Containers: map[string]string{"app": "0/100"}},
		},
	}, {
		name: "a failing namespace is omitted, others returned",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("b", "p2")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1"): {vec: model.Vector{containerSample("p1", "app", 1, t3)}},
				podQuery(t, b, mem, "a", "p1"): {vec: model.Vector{containerSample("p1", "app", 1, t3)}},
				podQuery(t, b, cpu, "b", "p2"): {vec: model.Vector{containerSample("p2", "app", 1, t3)}},
				podQuery(t, b, mem, "b", "p2"): {err: fail},
			}
		},
		want: map[string]podResult{"a/p1": {Timestamp: t3.Time().UTC(), Containers: map[string]string{"app": "1/1"}}},
	}, {
		name: "every namespace failing is an error",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("b", "p2")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1"): {vec: model.Vector{containerSample("p1", "app", 1, t3)}},
				podQuery(t, b, mem, "a", "p1"): {err: fail},
				podQuery(t, b, cpu, "b", "p2"): {err: fail},
				podQuery(t, b, mem, "b", "p2"): {err: fail},
			}
		},
		wantErr: "failed in all 2 namespace(s): namespace a: memory query: prometheus unavailable",
	}, {
		name: "a non-vector answer fails the namespace",
		pods: []*metav1.PartialObjectMetadata{pod("a", "p1")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				podQuery(t, b, cpu, "a", "p1"): {vec: model.Vector{}},
				podQuery(t, b, mem, "a", "p1"): {other: &model.Scalar{Value: 1, Timestamp: t3}},
			}
		},
		wantErr: "memory query: got scalar, want a vector",
	}, {
		name:    "no pods, no queries",
		answers: func(*testing.T, *resourcequery.Builder) map[string]answer { return nil },
		want:    map[string]podResult{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prom := &fakeProm{}
			p, b := newProvider(t, config(t, false), prom)
			prom.answers = tc.answers(t, b)
			got, err := p.GetPodMetrics(tc.pods...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetPodMetrics: %v", err)
			}
			if s := summarizePods(t, got); !reflect.DeepEqual(s, tc.want) {
				t.Errorf("got  %+v\nwant %+v", s, tc.want)
			}
			if len(prom.calls) != len(prom.answers) {
				t.Errorf("ran %d queries, want %d", len(prom.calls), len(prom.answers))
			}
		})
	}
}

// podMatcher extracts the pod-name regex of a rendered query.
var podMatcher = regexp.MustCompile(`pod=~("(?:[^"\\]|\\.)*")`)

func TestGetPodMetricsMergesBatches(t *testing.T) {
	var pods []*metav1.PartialObjectMetadata
	for i := range 1500 {
		pods = append(pods, pod("big", fmt.Sprintf("svc%d-6f7c9d8b4-%05x", i%7, i*7919)))
	}
	// Every batch answers for the pods its regex selects, as Prometheus
	// would: only merging all batches yields every pod.
	prom := &fakeProm{answerFunc: func(query string) (model.Vector, error) {
		m := podMatcher.FindStringSubmatch(query)
		if m == nil {
			return nil, fmt.Errorf("no pod regex in %q", query)
		}
		text, err := strconv.Unquote(m[1])
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile("^(?:" + text + ")$")
		if err != nil {
			return nil, err
		}
		v := 0.5
		if strings.Contains(query, "memory") {
			v = 1 << 20
		}
		var vec model.Vector
		for _, p := range pods {
			if re.MatchString(p.Name) {
				vec = append(vec, containerSample(p.Name, "app", v, t3))
			}
		}
		return vec, nil
	}}
	p, b := newProvider(t, config(t, false), prom)
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	sort.Strings(names)
	batches, err := b.PodContainersResource(resourcequery.CPU, "big", names, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) < 2 {
		t.Fatalf("1500 pods gave %d batch(es), want several", len(batches))
	}

	got, err := p.GetPodMetrics(pods...)
	if err != nil {
		t.Fatalf("GetPodMetrics: %v", err)
	}
	if len(got) != len(pods) {
		t.Errorf("got %d pods, want %d", len(got), len(pods))
	}
	for _, s := range summarizePods(t, got) {
		if s.Containers["app"] != "500m/1Mi" {
			t.Fatalf("unexpected usage %v", s.Containers)
		}
	}
	if want := 2 * len(batches); len(prom.calls) != want {
		t.Errorf("ran %d queries, want %d (cpu and memory batches)", len(prom.calls), want)
	}
}

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": "z1"}}}
}

func TestGetNodeMetrics(t *testing.T) {
	const cpu, mem = resourcequery.CPU, resourcequery.Memory
	type nodeResult struct {
		Timestamp time.Time
		Usage     string
	}
	tests := []struct {
		name    string
		nodes   []*corev1.Node
		answers func(t *testing.T, b *resourcequery.Builder) map[string]answer
		want    map[string]nodeResult
		wantErr string
	}{{
		name:  "happy path, first sample per node, earlier timestamp",
		nodes: []*corev1.Node{node("n2"), node("n1")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				nodeQuery(t, b, cpu, "n1", "n2"): {vec: model.Vector{
					nodeSample("n1", 1.5, t3), nodeSample("n2", 0.25, t1), nodeSample("n1", 99, t3),
				}},
				nodeQuery(t, b, mem, "n1", "n2"): {vec: model.Vector{nodeSample("n1", 4<<30, t2), nodeSample("n2", 1<<30, t3)}},
			}
		},
		want: map[string]nodeResult{
			"n1": {Timestamp: t2.Time().UTC(), Usage: "1500m/4Gi"},
			"n2": {Timestamp: t1.Time().UTC(), Usage: "250m/1Gi"},
		},
	}, {
		name:  "node missing memory omitted",
		nodes: []*corev1.Node{node("n1"), node("n2")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				nodeQuery(t, b, cpu, "n1", "n2"): {vec: model.Vector{nodeSample("n1", 1, t3), nodeSample("n2", 1, t3)}},
				nodeQuery(t, b, mem, "n1", "n2"): {vec: model.Vector{nodeSample("n1", 1<<30, t3), nodeSample("n2", math.NaN(), t3)}},
			}
		},
		want: map[string]nodeResult{"n1": {Timestamp: t3.Time().UTC(), Usage: "1/1Gi"}},
	}, {
		name:  "query failure is an error",
		nodes: []*corev1.Node{node("n1")},
		answers: func(t *testing.T, b *resourcequery.Builder) map[string]answer {
			return map[string]answer{
				nodeQuery(t, b, cpu, "n1"): {vec: model.Vector{nodeSample("n1", 1, t3)}},
				nodeQuery(t, b, mem, "n1"): {err: errors.New("boom")},
			}
		},
		wantErr: "querying node memory usage: memory query: boom",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prom := &fakeProm{}
			p, b := newProvider(t, config(t, true), prom)
			prom.answers = tc.answers(t, b)
			got, err := p.GetNodeMetrics(tc.nodes...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetNodeMetrics: %v", err)
			}
			s := map[string]nodeResult{}
			for _, m := range got {
				if m.Window.Duration != 3*time.Minute || m.Labels["zone"] != "z1" {
					t.Errorf("%s: window %v, labels %v", m.Name, m.Window.Duration, m.Labels)
				}
				cpu, mem := m.Usage[corev1.ResourceCPU], m.Usage[corev1.ResourceMemory]
				s[m.Name] = nodeResult{Timestamp: m.Timestamp.Time.UTC(), Usage: cpu.String() + "/" + mem.String()}
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Errorf("got  %+v\nwant %+v", s, tc.want)
			}
		})
	}
}

func TestGetNodeMetricsWithoutNodeQuery(t *testing.T) {
	p, _ := newProvider(t, config(t, false), &fakeProm{})
	_, err := p.GetNodeMetrics(node("n1"))
	if err == nil || !strings.Contains(err.Error(), "nodeQuery is not configured") {
		t.Fatalf("error = %v, want nodeQuery not configured", err)
	}
}

func TestQueryTimeout(t *testing.T) {
	prom := &blockingProm{}
	p, err := New(config(t, false), namingtest.NewMapper(), prom, Options{QueryTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.GetPodMetrics(pod("a", "p1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a deadline exceeded", err)
	}
}

// blockingProm answers only when the context ends.
type blockingProm struct{ fakeProm }

func (b *blockingProm) Query(ctx context.Context, _ string, _ time.Time) (model.Value, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// countingProm answers empty vectors and records the most queries in flight.
type countingProm struct {
	fakeProm
	mu            sync.Mutex
	inFlight, max int
}

func (c *countingProm) Query(context.Context, string, time.Time) (model.Value, error) {
	c.mu.Lock()
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	return model.Vector{}, nil
}

func TestMaxConcurrency(t *testing.T) {
	prom := &countingProm{}
	p, err := New(config(t, false), namingtest.NewMapper(), prom, Options{MaxConcurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	var pods []*metav1.PartialObjectMetadata
	for i := range 10 {
		pods = append(pods, pod(fmt.Sprintf("ns%d", i), "p"))
	}
	got, err := p.GetPodMetrics(pods...)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no pods and no error", got, err)
	}
	if prom.max > 3 {
		t.Errorf("%d queries in flight, want at most 3", prom.max)
	}
}
