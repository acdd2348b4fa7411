package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
)

// cadvisorMetrics are the per-container series names of a kubelet's cAdvisor endpoint.
var cadvisorMetrics = []string{
	"container_cpu_usage_seconds_total", "container_cpu_user_seconds_total", "container_cpu_system_seconds_total",
	"container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
	"container_cpu_load_average_10s", "container_memory_usage_bytes", "container_memory_working_set_bytes",
	"container_memory_rss", "container_memory_cache", "container_memory_swap", "container_memory_mapped_file",
	"container_memory_failcnt", "container_memory_failures_total", "container_memory_max_usage_bytes",
	"container_fs_reads_total", "container_fs_writes_total", "container_fs_reads_bytes_total",
	"container_fs_writes_bytes_total", "container_fs_usage_bytes", "container_fs_limit_bytes",
	"container_fs_inodes_free", "container_fs_inodes_total", "container_fs_io_time_seconds_total",
	"container_fs_io_current", "container_spec_cpu_period", "container_spec_cpu_quota", "container_spec_cpu_shares",
	"container_spec_memory_limit_bytes", "container_spec_memory_reservation_limit_bytes",
	"container_spec_memory_swap_limit_bytes", "container_last_seen", "container_start_time_seconds",
	"container_threads", "container_threads_max", "container_processes", "container_sockets",
	"container_file_descriptors", "container_oom_events_total",
}

const containersPerPod = 2

// seriesPerPod: cAdvisor series of each container, plus kube-state-metrics series of the pod
// (kube_pod_status_ready x3 conditions, kube_pod_info, and per container restarts and requests).
var seriesPerPod = containersPerPod*len(cadvisorMetrics) + 3 + 1 + 2*containersPerPod

type benchPod struct {
	namespace, pod, uid, node, instance string
	containers                          [containersPerPod]struct{ name, id, image string }
}

// syntheticCluster is a cluster of pods whose series are rendered on the fly, so the test
// server's memory does not blur the relister's.
type syntheticCluster struct {
	pods  []benchPod
	total int // series, the last pod's may be cut short
}

func newSyntheticCluster(total int) *syntheticCluster {
	c := &syntheticCluster{total: total}
	numPods := (total + seriesPerPod - 1) / seriesPerPod
	numNamespaces := max(numPods/25, 1)
	for i := range numPods {
		ns := fmt.Sprintf("team-%03d", i%numNamespaces)
		app := fmt.Sprintf("svc-%03d", (i/numNamespaces)%40)
		p := benchPod{
			namespace: ns,
			pod:       fmt.Sprintf("%s-%08x-%05x", app, uint32(i*2654435761), uint32(i*40503)&0xfffff),
			uid:       fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", i, i%65536, 4096+i%4096, 32768+i%4096, i*7919),
			node:      fmt.Sprintf("node-%03d", i%100),
			instance:  fmt.Sprintf("10.0.%d.%d:10250", (i%100)/250, (i%100)%250+1),
		}
		for j := range containersPerPod {
			p.containers[j].name = []string{"app", "sidecar"}[j]
			p.containers[j].id = fmt.Sprintf("%064x", uint64(i)*1000003+uint64(j))
			p.containers[j].image = fmt.Sprintf("registry.example.com/%s/%s:1.%d.%d", ns, p.containers[j].name, i%7, j)
		}
		c.pods = append(c.pods, p)
	}
	return c
}

// each calls fn with every series as (name, label pairs without __name__); the slice is reused.
func (c *syntheticCluster) each(fn func(name string, labels []string)) {
	n := 0
	labels := make([]string, 0, 32)
	emit := func(name string) bool {
		if n >= c.total {
			return false
		}
		n++
		fn(name, labels)
		return true
	}
	for i := range c.pods {
		p := &c.pods[i]
		for j := range p.containers {
			ct := &p.containers[j]
			for _, m := range cadvisorMetrics {
				labels = append(labels[:0],
					"container", ct.name, "endpoint", "https-metrics",
					"id", "/kubepods/burstable/pod"+p.uid+"/"+ct.id, "image", ct.image,
					"instance", p.instance, "job", "kubelet", "metrics_path", "/metrics/cadvisor",
					"name", ct.id, "namespace", p.namespace, "node", p.node, "pod", p.pod, "service", "kubelet")
				if strings.HasPrefix(m, "container_fs_") {
					labels = append(labels, "device", "/dev/nvme0n1p1")
				}
				if !emit(m) {
					return
				}
			}
		}
		ksm := func(extra ...string) {
			labels = append(labels[:0], "endpoint", "http", "instance", "10.0.9.9:8080", "job", "kube-state-metrics",
				"namespace", p.namespace, "pod", p.pod, "service", "kube-state-metrics", "uid", p.uid)
			labels = append(labels, extra...)
		}
		for _, cond := range []string{"true", "false", "unknown"} {
			if ksm("condition", cond); !emit("kube_pod_status_ready") {
				return
			}
		}
		if ksm("node", p.node, "host_ip", strings.Split(p.instance, ":")[0], "created_by_kind", "ReplicaSet"); !emit("kube_pod_info") {
			return
		}
		for j := range p.containers {
			if ksm("container", p.containers[j].name); !emit("kube_pod_container_status_restarts_total") {
				return
			}
			if ksm("container", p.containers[j].name, "resource", "cpu", "unit", "core"); !emit("kube_pod_container_resource_requests") {
				return
			}
		}
	}
}

// seriesMatcher is one label matcher of a series selector: {a="x",b!~"y.*"}.
type seriesMatcher struct {
	label string
	op    string
	value string
	re    *regexp.Regexp
}

// parseSelector parses the flat selectors the benchmark configs use (no commas inside values).
func parseSelector(s string) ([]seriesMatcher, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("unsupported selector %s", s)
	}
	var out []seriesMatcher
	for _, part := range strings.Split(s[1:len(s)-1], ",") {
		var m seriesMatcher
		for _, op := range []string{"!=", "=~", "!~", "="} {
			if i := strings.Index(part, op); i > 0 {
				m.label, m.op = strings.TrimSpace(part[:i]), op
				v, err := strconv.Unquote(strings.TrimSpace(part[i+len(op):]))
				if err != nil {
					return nil, fmt.Errorf("selector %s: %w", s, err)
				}
				m.value = v
				break
			}
		}
		if m.op == "" {
			return nil, fmt.Errorf("unsupported matcher %q", part)
		}
		if m.op == "=~" || m.op == "!~" {
			m.re = regexp.MustCompile("^(?:" + m.value + ")$")
		}
		out = append(out, m)
	}
	return out, nil
}

func (m seriesMatcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

func selects(matchers []seriesMatcher, name string, labels []string) bool {
	for _, m := range matchers {
		v := ""
		if m.label == "__name__" {
			v = name
		} else {
			for i := 0; i < len(labels); i += 2 {
				if labels[i] == m.label {
					v = labels[i+1]
					break
				}
			}
		}
		if !m.matches(v) {
			return false
		}
	}
	return true
}

// seriesServer answers /api/v1/series like Prometheus: the series matching match[], as a JSON
// array written as it is generated.
type seriesServer struct {
	cluster *syntheticCluster
}

// countingLister counts the series the relister receives. (Counting on the server would race:
// the client can be done reading before the handler returns.)
type countingLister struct {
	inner SeriesLister
	n     atomic.Int64
}

func (c *countingLister) Series(ctx context.Context, match string, start, end time.Time, visit promclient.SeriesVisitor) error {
	return c.inner.Series(ctx, match, start, end, func(name string, labels map[string]string) {
		c.n.Add(1)
		visit(name, labels)
	})
}

func (s *seriesServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/series" {
		http.NotFound(w, r)
		return
	}
	matchers, err := parseSelector(r.FormValue("match[]"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"status":"success","data":[`)
	first := true
	s.cluster.each(func(name string, labels []string) {
		if !selects(matchers, name, labels) {
			return
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString(`{"__name__":"`)
		bw.WriteString(name)
		for i := 0; i < len(labels); i += 2 {
			bw.WriteString(`","`)
			bw.WriteString(labels[i])
			bw.WriteString(`":"`)
			bw.WriteString(labels[i+1])
		}
		bw.WriteString(`"}`)
	})
	bw.WriteString(`]}`)
	bw.Flush()
}

// heapInUse reads the equivalent of MemStats.HeapInuse without stopping the world.
func heapInUse(samples []rtmetrics.Sample) uint64 {
	rtmetrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

// peakHeap samples the heap in use every 500µs while fn runs and returns the largest value.
func peakHeap(fn func()) uint64 {
	samples := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	peak := heapInUse(samples)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		local := []rtmetrics.Sample{{Name: samples[0].Name}, {Name: samples[1].Name}}
		ticker := time.NewTicker(500 * time.Microsecond)
		defer ticker.Stop()
		for {
			if h := heapInUse(local); h > peak {
				peak = h
			}
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if h := heapInUse(samples); h > peak {
		peak = h
	}
	return peak
}

// decodeAll is the baseline, what prometheus-adapter does: fetch each distinct series query
// concurrently and decode the whole answer into label maps, holding all of them until every
// call is done.
func decodeAll(b *testing.B, client *http.Client, base string, queries []string, start, end time.Time) int {
	results := make([][]map[string]string, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			params := url.Values{"match[]": {q}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}
			resp, err := client.Get(base + "/api/v1/series?" + params.Encode())
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			var answer struct {
				Status string              `json:"status"`
				Data   []map[string]string `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
				b.Error(err)
				return
			}
			results[i] = answer.Data
		}()
	}
	wg.Wait()
	n := 0
	for _, r := range results {
		n += len(r)
	}
	runtime.KeepAlive(results)
	return n
}

// BenchmarkRelist measures one relist over a synthetic cluster served by a real HTTP server
// through the real client, for Kapacity's default config and prometheus-adapter's legacy
// default. Besides ns/op it reports:
//   - series/op: series streamed by the series calls of one relist;
//   - peak_heap_MiB: the largest heap in use during a relist (after a GC before it);
//   - decode_all_peak_heap_MiB and x_vs_decode_all: the peak heap of, and the relist's time
//     relative to, merely downloading and decoding the same answers into []map[string]string.
//
// Goal (issue): 100k series in < 2 s and < 150 MiB.
func BenchmarkRelist(b *testing.B) {
	mapper := namingtest.NewRESTMapper()
	kapacity, err := ruleset.Load(deployconfig.KapacityDefault(), mapper)
	if err != nil {
		b.Fatal(err)
	}
	legacy, err := ruleset.Compile(metricsconfig.DefaultConfig(5*time.Minute, ""), mapper)
	if err != nil {
		b.Fatal(err)
	}
	configs := []struct {
		name  string
		rules *ruleset.RuleSet
	}{{"kapacity-default", kapacity}, {"legacy-default", legacy}}

	for _, size := range []int{10_000, 100_000} {
		cluster := newSyntheticCluster(size)
		for _, cfg := range configs {
			b.Run(fmt.Sprintf("series=%dk/config=%s", size/1000, cfg.name), func(b *testing.B) {
				srv := &seriesServer{cluster: cluster}
				ts := httptest.NewServer(srv)
				defer ts.Close()
				client, err := promclient.New(ts.URL, ts.Client(), "GET", nil)
				if err != nil {
					b.Fatal(err)
				}
				counted := &countingLister{inner: client}
				r, err := New(counted, func() *ruleset.RuleSet { return cfg.rules }, Options{Interval: time.Minute}, prometheus.NewRegistry())
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				queries := naming.SeriesQueries(append(slices.Clone(cfg.rules.Custom), cfg.rules.External...))

				var relistTime, decodeTime time.Duration
				var relistPeak, decodePeak uint64
				var relistSeries, decodeSeries int64
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					runtime.GC()
					before := counted.n.Load()
					b.StartTimer()
					began := time.Now()
					peak := peakHeap(func() {
						if err := r.Relist(ctx); err != nil {
							b.Fatal(err)
						}
					})
					relistTime += time.Since(began)
					b.StopTimer()
					relistPeak = max(relistPeak, peak)
					relistSeries += counted.n.Load() - before

					// The baseline, untimed by the framework, timed by hand.
					runtime.GC()
					began = time.Now()
					var n int
					peak = peakHeap(func() { n = decodeAll(b, ts.Client(), ts.URL, queries, began.Add(-time.Minute), began) })
					decodeTime += time.Since(began)
					decodePeak = max(decodePeak, peak)
					decodeSeries += int64(n)
					b.StartTimer()
				}
				b.StopTimer()
				if relistSeries != decodeSeries {
					b.Fatalf("relist streamed %d series, the baseline decoded %d", relistSeries, decodeSeries)
				}
				b.ReportMetric(float64(relistSeries)/float64(b.N), "series/op")
				b.ReportMetric(float64(relistPeak)/(1<<20), "peak_heap_MiB")
				b.ReportMetric(float64(decodePeak)/(1<<20), "decode_all_peak_heap_MiB")
				b.ReportMetric(float64(relistTime)/float64(decodeTime), "x_vs_decode_all")
			})
		}
	}
}
