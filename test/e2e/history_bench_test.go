package e2e

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/historyapi/client"
	"github.com/kapacitystack/kapacity/historyapi/query"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

type noRegistry struct{}

func (noRegistry) Registry() *discovery.Registry { return nil }
func (noRegistry) TriggerOnDemand()              {}

// BenchmarkHistoryWorkload7Days: one workload's memory over 7 days at one minute (10,081 points),
// against the raw Prometheus range query of the same PromQL measured in the same run
// (x-raw-time, x-raw-bytes: ratios to it). The engine variants run in this process against
// Prometheus directly, with one shard (the whole range fits Prometheus' 11,000-point limit) or
// seven one-day shards at concurrency 1, 4 and 8; http goes through kube-apiserver and the
// aggregation layer to the adapter, grpc to the adapter's gRPC port. The adapter runs in this
// process, so http and grpc bytes include its server-side allocations (kube-apiserver's are not
// counted).
func BenchmarkHistoryWorkload7Days(b *testing.B) {
	env := useHistory(b)
	// The engine authorizes the caller of each query; in this process, an admin.
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "admin"})
	q := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: historyDeployment, Namespace: historyNS, Name: "web", Resource: "memory"}
	r := v1alpha1.Range{Start: historyEnd.Add(-historyDays * 24 * time.Hour), End: historyEnd, Step: time.Minute}

	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(bed.Client.Discovery()))
	config, err := stack.AdapterConfig()
	if err != nil {
		b.Fatal(err)
	}
	rules, err := ruleset.Load([]byte(config), mapper)
	if err != nil {
		b.Fatal(err)
	}
	prom, err := promclient.New(bed.PrometheusURL, nil, "GET", nil)
	if err != nil {
		b.Fatal(err)
	}
	engine := func(shardPoints, concurrency int) *query.Engine {
		return query.New(func() *ruleset.RuleSet { return rules }, noRegistry{}, prom, mapper, nil, nil,
			query.Options{ShardPoints: shardPoints, Concurrency: concurrency, Authorizer: authorizerfactory.NewAlwaysAllowAuthorizer()})
	}
	plan, err := engine(0, 1).Plan(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	promQL := plan.Queries[0]
	b.Logf("PromQL: %s; %d points", promQL, r.Points())

	check := func(series []v1alpha1.Series) error {
		if len(series) != 1 || int64(len(series[0].Points)) != r.Points() {
			return fmt.Errorf("want 1 series of %d points, got %s", r.Points(), summarize(series))
		}
		return nil
	}
	raw := func() error {
		var sink promclient.MatrixSink
		err := prom.QueryRange(ctx, promQL, promclient.Range{Start: r.Start, End: r.End, Step: r.Step}, &sink)
		m := sink.Matrix
		if err == nil && (len(m) != 1 || int64(len(m[0].Values)) != r.Points()) {
			err = fmt.Errorf("raw query: want 1 series of %d points, got %v", r.Points(), len(m))
		}
		return err
	}
	viaEngine := func(e *query.Engine) func() error {
		return func() error {
			s, err := e.Range(ctx, q, r)
			if err != nil {
				return err
			}
			return check(s)
		}
	}
	viaClient := func(c client.Interface) func() error {
		return func() error {
			s, err := c.Range(ctx, q, r)
			if err != nil {
				return err
			}
			return check(s)
		}
	}
	httpClient, err := client.NewHTTPForConfig(bed.Config)
	if err != nil {
		b.Fatal(err)
	}
	grpcClient := historyGRPC(b, env)

	// The baseline, measured in this run before the variants.
	const baselineRuns = 30
	if err := raw(); err != nil { // warm Prometheus' caches like the variants' warm-up runs do
		b.Fatal(err)
	}
	rawNs, rawBytes := measure(baselineRuns, raw)
	if rawNs == 0 {
		b.Fatal("baseline failed")
	}
	b.Logf("raw Prometheus baseline: %.2f ms/op, %.0f B/op over %d runs", rawNs/1e6, rawBytes, baselineRuns)

	for _, v := range []struct {
		name string
		run  func() error
	}{
		{"prometheus-raw", raw},
		{"engine/shards=1", viaEngine(engine(query.PrometheusMaxPoints, 1))},
		{"engine/shards=7/concurrency=1", viaEngine(engine(1441, 1))},
		{"engine/shards=7/concurrency=4", viaEngine(engine(1441, 4))},
		{"engine/shards=7/concurrency=8", viaEngine(engine(1441, 8))},
		{"http-apiserver", viaClient(httpClient)},
		{"grpc", viaClient(grpcClient)},
	} {
		b.Run(v.name, func(b *testing.B) {
			if err := v.run(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for range b.N {
				if err := v.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			bytesPerOp := float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
			b.ReportMetric(nsPerOp/rawNs, "x-raw-time")
			b.ReportMetric(bytesPerOp/rawBytes, "x-raw-bytes")
		})
	}
}

// measure runs fn n times and returns the mean nanoseconds and bytes allocated per run (0, 0 on
// failure).
func measure(n int, fn func() error) (nsPerOp, bytesPerOp float64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	began := time.Now()
	for range n {
		if fn() != nil {
			return 0, 0
		}
	}
	elapsed := time.Since(began)
	runtime.ReadMemStats(&after)
	return float64(elapsed.Nanoseconds()) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}
