package query

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/httpapi"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// syntheticPrometheus answers every range query with pods series over the asked grid, written as
// it is generated (Prometheus' own JSON shape), so the benchmark measures the adapter's memory,
// not the server's.
func syntheticPrometheus(pods *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.ParseFloat(r.FormValue("start"), 64)
		end, _ := strconv.ParseFloat(r.FormValue("end"), 64)
		step, _ := strconv.ParseFloat(r.FormValue("step"), 64)
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
		buf := make([]byte, 0, 64)
		for p := range pods.Load() {
			if p > 0 {
				bw.WriteByte(',')
			}
			fmt.Fprintf(bw, `{"metric":{"namespace":"prod","pod":"web-5d8f7c9b6-%05d"},"values":[`, p)
			for i, t := 0, start; t <= end; i, t = i+1, t+step {
				if i > 0 {
					bw.WriteByte(',')
				}
				buf = append(buf[:0], '[')
				buf = strconv.AppendFloat(buf, t, 'f', 3, 64)
				buf = append(buf, `,"`...)
				buf = strconv.AppendFloat(buf, 0.25+float64(i%1000)/1000, 'f', -1, 64)
				buf = append(buf, `"]`...)
				bw.Write(buf)
			}
			bw.WriteString(`]}`)
		}
		bw.WriteString(`]}}`)
		bw.Flush()
	}))
}

// peakHeap runs fn and returns the highest live heap seen while it ran, above the heap before it,
// sampled every millisecond (runtime/metrics reads without stopping the world).
func peakHeap(fn func() error) (uint64, error) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		for {
			if h := read(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	}()
	err := fn()
	close(done)
	if h := read(); h > peak.Load() {
		peak.Store(h)
	}
	if peak.Load() < base {
		return 0, err
	}
	return peak.Load() - base, err
}

// BenchmarkHistoryAnswerMemory: the adapter's heap while it answers a week of one-minute history
// for many pods (10,081 points each), through a real HTTP Prometheus client. At the default cap
// (49 pods, 493,969 samples) over the HTTP API's streaming encoder and the gRPC message; past it
// (the report's 250 pods, 2.5 M samples), refused while streaming in; and, as the baseline of the
// same run, the 250 pods decoded as the adapter used to (the whole body read, then unmarshalled).
// peak-MiB is the live heap above the start; x-baseline its ratio to the baseline's.
func BenchmarkHistoryAnswerMemory(b *testing.B) {
	pods := &atomic.Int64{}
	prom := syntheticPrometheus(pods)
	defer prom.Close()
	client, err := promclient.New(prom.URL, nil, "GET", nil)
	if err != nil {
		b.Fatal(err)
	}
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := v1alpha1.Range{Start: end.Add(-7 * 24 * time.Hour), End: end, Step: time.Minute}
	q := v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Selector: "app=web", Resource: "cpu"}
	engine := func() *Engine {
		f := newFixture(&testing.T{}, Options{QueryTimeout: time.Minute})
		f.engine.querier = client
		return f.engine
	}

	baseline := func() error {
		// The former promclient: the whole answer in memory as JSON, then as a matrix.
		u := prom.URL + "/api/v1/query_range?" + fmt.Sprintf("start=%d&end=%d&step=60", r.Start.Unix(), r.End.Unix())
		resp, err := http.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var envelope struct {
			Data struct {
				Result json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &envelope); err != nil {
			return err
		}
		var m model.Matrix
		if err := json.Unmarshal(envelope.Data.Result, &m); err != nil {
			return err
		}
		if len(m) != 250 {
			return fmt.Errorf("%d series", len(m))
		}
		runtime.KeepAlive(body)
		return nil
	}
	pods.Store(250)
	baseBytes, err := peakHeap(baseline)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("baseline (the whole 250-pod answer read, then unmarshalled): peak %.0f MiB", float64(baseBytes)/(1<<20))

	overCap := func(e *Engine) func() error {
		return func() error {
			_, err := e.Range(adminCtx(), q, r)
			if err == nil {
				return fmt.Errorf("a 2.5 M-sample answer was served")
			}
			return nil
		}
	}
	atCapHTTP := func(e *Engine) func() error {
		return func() error {
			series, err := e.Range(adminCtx(), q, r)
			if err != nil {
				return err
			}
			return httpapi.WriteSeriesList(io.Discard, series)
		}
	}
	atCapGRPC := func(e *Engine) func() error {
		return func() error {
			series, err := e.Range(adminCtx(), q, r)
			if err != nil {
				return err
			}
			// As the service does: each series released once converted, then marshalled.
			response := &metricpb.QueryResponse{Series: make([]*metricpb.Series, 0, len(series))}
			for i := range series {
				response.Series = append(response.Series, grpcapi.SeriesToProto(series[i:i+1])...)
				series[i].Points = nil
			}
			_, err = proto.Marshal(response)
			return err
		}
	}
	for _, v := range []struct {
		name string
		pods int64
		run  func(*Engine) func() error
	}{
		{"at-cap-49-pods/http", DefaultMaxSamples / 10081, atCapHTTP},
		{"at-cap-49-pods/grpc", DefaultMaxSamples / 10081, atCapGRPC},
		{"past-cap-250-pods/refused", 250, overCap},
	} {
		b.Run(v.name, func(b *testing.B) {
			e := engine()
			pods.Store(v.pods)
			var peak uint64
			for range b.N {
				p, err := peakHeap(v.run(e))
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(peak)/float64(baseBytes), "x-baseline")
		})
	}
}
