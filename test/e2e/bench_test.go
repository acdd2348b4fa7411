package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// benchPods is the size of the benchmarked workload: the custom GET's PromQL carries one pod
// name per pod in its regex, and the adapter lists them all.
const benchPods = 10

// BenchmarkMetricGET measures the latency (p50, p99) and sequential throughput of the metric GETs
// an HPA makes, each at three depths in the same run against the same bed: the PromQL the adapter
// renders, sent to Prometheus directly (the floor); the GET sent to the adapter's port; and the GET
// through kube-apiserver, as the HPA sends it. Absolute latencies on a small shared machine say
// little; the difference to the raw query says what the adapter costs (goal: < 2 ms at p99).
//
// raw-via-proxy is the raw query through the test bed's Prometheus proxy (stack.SwitchableProxy),
// which the adapter reaches Prometheus through here but not in a real cluster: it tells how much
// of the adapter's added latency is that hop.
//
// A custom GET by selector (pods/*) also lists the pods through kube-apiserver, with the adapter's
// client-go client and its client-side rate limit (--client-qps, --client-burst): the adapter is
// measured as the stack starts it, so with the defaults (5 QPS, burst 10) sequential custom GETs
// settle at 5/s, 200 ms each.
//
// The summary sub-benchmark logs the comparison table. p99 needs a few hundred GETs per
// sub-benchmark, so give a count rather than a duration:
//
//	go test -run '^$' -bench MetricGET -benchtime=500x ./test/e2e/
func BenchmarkMetricGET(b *testing.B) {
	ctx := context.Background()
	env := useAdapter(b)
	ns := benchNamespace(ctx, b)
	if err := stack.CreateWorkload(ctx, bed.Client, env.Sim, ns, "bench", benchPods, 100); err != nil {
		b.Fatal(err)
	}
	apiClient, adapterClient := benchClients(b)
	adapterURL := fmt.Sprintf("https://127.0.0.1:%d", env.Port)
	customPath := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second"
	externalPath := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/requests_per_second"

	// Until Prometheus has scraped every pod twice, rate() is missing some of them: the adapter
	// would answer fewer items, or not found, and those are not the answers to measure.
	waitItems(ctx, b, apiClient, bed.Config.Host+customPath, benchPods)
	waitItems(ctx, b, apiClient, bed.Config.Host+externalPath, 1)

	results := map[string]latencies{}
	var queries []string
	for _, m := range []struct{ name, path string }{{"custom", customPath}, {"external", externalPath}} {
		query := adapterQuery(b, env, adapterClient, adapterURL+m.path, ns)
		queries = append(queries, m.name+": "+query)
		params := "/api/v1/query?" + url.Values{"query": {query}}.Encode()
		rawClient := &http.Client{Timeout: 30 * time.Second}
		benchGET(b, "raw-prometheus/"+m.name, rawClient, bed.PrometheusURL+params, results)
		benchGET(b, "raw-via-proxy/"+m.name, rawClient, env.Prometheus.URL()+params, results)
		benchGET(b, "adapter-direct/"+m.name, adapterClient, adapterURL+m.path, results)
		benchGET(b, "via-apiserver/"+m.name, apiClient, bed.Config.Host+m.path, results)
	}

	logged := false
	b.Run("summary", func(b *testing.B) {
		// Nothing to time here; the framework calls this again with growing b.N, which must not
		// repeat the table.
		b.ReportMetric(0, "ns/op")
		for _, m := range []string{"custom", "external"} {
			raw, direct := results["raw-prometheus/"+m], results["adapter-direct/"+m]
			if raw.n > 0 && direct.n > 0 {
				b.ReportMetric(ms(direct.p99-raw.p99), m+"-added-p99-ms")
			}
		}
		if !logged {
			logged = true
			b.Logf("PromQL the adapter sent:\n\t%s\n%s", strings.Join(queries, "\n\t"), summaryTable(results))
		}
	})
}

// latencies summarises one sub-benchmark.
type latencies struct {
	n        int
	p50, p99 time.Duration
	perSec   float64
}

// benchGET runs a sub-benchmark of sequential GETs of target, timing each one, and keeps the
// summary in results for the table.
func benchGET(b *testing.B, name string, client *http.Client, target string, results map[string]latencies) {
	b.Run(name, func(b *testing.B) {
		// A long-running client such as the HPA controller reuses its connections: TLS handshakes
		// and the first requests' allocations are not part of a GET's latency.
		for range 5 {
			if err := get(client, target); err != nil {
				b.Fatal(err)
			}
		}
		took := make([]time.Duration, 0, 1024)
		for b.Loop() {
			began := time.Now()
			err := get(client, target)
			took = append(took, time.Since(began))
			if err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(took)
		l := latencies{n: len(took), p50: percentile(took, 0.50), p99: percentile(took, 0.99)}
		l.perSec = float64(l.n) / b.Elapsed().Seconds()
		b.ReportMetric(ms(l.p50), "p50-ms")
		b.ReportMetric(ms(l.p99), "p99-ms")
		b.ReportMetric(l.perSec, "req/s")
		results[name] = l
	})
}

// get GETs target and reads the whole answer, which must be 200.
func get(client *http.Client, target string) error {
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read to the end: a client decodes the whole answer, and an unread body would keep the
	// connection from being reused.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", target, resp.Status, body)
	}
	return nil
}

// percentile is the nearest-rank percentile p of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(int(math.Ceil(p*float64(len(sorted))))-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchClients returns HTTP clients with the admin client certificate for kube-apiserver and for
// the adapter's own port. They are plain HTTP clients, not client-go REST clients, so that both
// paths pay the same client-side cost and client-go's rate limiter never enters the measurement.
func benchClients(b *testing.B) (apiServer, adapter *http.Client) {
	b.Helper()
	var err error
	if apiServer, err = rest.HTTPClientFor(bed.Config); err != nil {
		b.Fatal(err)
	}
	config := rest.CopyConfig(bed.Config)
	// The adapter's serving certificate is self-signed; the client certificate still
	// authenticates (the adapter trusts the cluster CA through delegated authentication).
	config.TLSClientConfig.CAData, config.TLSClientConfig.Insecure = nil, true
	if adapter, err = rest.HTTPClientFor(config); err != nil {
		b.Fatal(err)
	}
	apiServer.Timeout, adapter.Timeout = 30*time.Second, 30*time.Second
	return apiServer, adapter
}

// benchNamespace creates a namespace for the benchmark and deletes it when the benchmark ends.
func benchNamespace(ctx context.Context, b *testing.B) string {
	b.Helper()
	ns, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatalf("creating namespace: %v", err)
	}
	b.Cleanup(func() {
		_ = bed.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// waitItems polls a metrics API URL until it answers 200 with at least want items.
func waitItems(ctx context.Context, b *testing.B, client *http.Client, target string, want int) {
	b.Helper()
	poll.Until(ctx, b, 2*time.Minute, fmt.Sprintf("GET %s answers %d items", target, want), func(ctx context.Context) (string, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return "", false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err.Error(), false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
			return fmt.Sprintf("%s: %s", resp.Status, body), false, nil
		}
		return fmt.Sprintf("%d items", len(list.Items)), len(list.Items) >= want, nil
	})
}

// adapterQuery GETs target from the adapter once and returns the instant query it sent Prometheus
// for it, so that the raw baseline runs exactly the adapter's PromQL rather than a hand-written
// copy that could drift from the config.
func adapterQuery(b *testing.B, env *stack.Adapter, client *http.Client, target, ns string) string {
	b.Helper()
	queries := make(chan string, 16)
	stop := env.Prometheus.Observe(func(r *http.Request) {
		// The relister's series listings pass through the proxy too.
		if r.URL.Path != "/api/v1/query" {
			return
		}
		if q := r.URL.Query().Get("query"); strings.Contains(q, `"`+ns+`"`) {
			select {
			case queries <- q:
			default:
			}
		}
	})
	err := get(client, target)
	stop()
	if err != nil {
		b.Fatal(err)
	}
	// The proxy observes a query before forwarding it, so every query of this GET is in by now.
	var seen []string
	for len(queries) > 0 {
		seen = append(seen, <-queries)
	}
	if len(seen) != 1 {
		b.Fatalf("GET %s: want the one instant query the baseline repeats, the adapter sent %q", target, seen)
	}
	return seen[0]
}

// summaryTable sets each metric's adapter and kube-apiserver latencies against its raw query's.
func summaryTable(results map[string]latencies) string {
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "metric\traw p50\traw p99\tproxy-hop p99\tadapter p50\tadapter p99\tadded p99\tapiserver p50\tapiserver p99\tadapter/raw p50\tadapter/raw p99\t")
	for _, m := range []string{"custom", "external"} {
		raw, proxied := results["raw-prometheus/"+m], results["raw-via-proxy/"+m]
		direct, via := results["adapter-direct/"+m], results["via-apiserver/"+m]
		cell := func(ok bool, d time.Duration) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.2fms", ms(d))
		}
		ratio := func(a, b time.Duration) string {
			if raw.n == 0 || direct.n == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1fx", float64(a)/float64(b))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m,
			cell(raw.n > 0, raw.p50), cell(raw.n > 0, raw.p99),
			cell(raw.n > 0 && proxied.n > 0, proxied.p99-raw.p99),
			cell(direct.n > 0, direct.p50), cell(direct.n > 0, direct.p99),
			cell(raw.n > 0 && direct.n > 0, direct.p99-raw.p99),
			cell(via.n > 0, via.p50), cell(via.n > 0, via.p99),
			ratio(direct.p50, raw.p50), ratio(direct.p99, raw.p99))
	}
	_ = w.Flush()
	return out.String()
}
