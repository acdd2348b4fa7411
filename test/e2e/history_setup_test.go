package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// The history tests read synthetic one-minute history that is backfilled into the bed's
// Prometheus once: 7 days (the benchmark's range; the tests read 3) ending historyEnd, in
// namespace historyNS. No Kubernetes objects exist for it: workload queries select pods by name.
const (
	historyNS    = "history-data"
	historyDays  = 7
	historySteps = historyDays * 24 * 60 // minutes; samples are 0..historySteps
)

// Pods of Deployment "web" (0 and 1) and its neighbours, which web's pod-name pattern must not
// match: Deployment "web-canary" (2), StatefulSet "web-api" (3) and CronJob "web" (4).
var historyPods = []string{"web-5d8f7c9b6-x2k4p", "web-5d8f7c9b6-m8qzt", "web-canary-7f8c9d6b5-h6wjr", "web-api-0", "web-29512345-b7dzq"}

// Synthetic values, integers so that sums are exact. i is the minute index from historyStart.
func histMemory(pod int, container string, i int) float64 {
	if container == "app" {
		return float64(100_000_000*(pod+1) + 1000*(i%1440))
	}
	return float64(10_000_000*(pod+1) + i%60)
}

// Pod 1 is ready every other hour; the others always.
func histReady(pod, i int) float64 {
	if pod == 1 && (i/60)%2 == 1 {
		return 0
	}
	return 1
}

func histQueueLength(pod, i int) float64 { return float64(5*(pod+1) + i%10) }
func histInflight(pod, i int) float64    { return float64(pod + 1 + i%7) }

var (
	historyOnce  sync.Once
	historyErr   error
	historyEnd   time.Time // last sample, on the minute
	historyStart time.Time // first sample
)

// useHistory starts the adapter and backfills the history on first use, returning once
// Prometheus serves the backfilled samples and discovery knows the history metrics.
func useHistory(t testing.TB) *stack.Adapter {
	t.Helper()
	env := useAdapter(t)
	historyOnce.Do(func() { historyErr = backfillHistory(context.Background(), t) })
	if historyErr != nil {
		t.Fatalf("backfilling history: %v", historyErr)
	}
	return env
}

func backfillHistory(ctx context.Context, t testing.TB) error {
	// Ten minutes back, so no query of the history reaches the live samples below.
	historyEnd = time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
	historyStart = historyEnd.Add(-historySteps * time.Minute)
	var om bytes.Buffer
	family := func(name string, series func(emit func(labels string, value func(i int) float64))) {
		fmt.Fprintf(&om, "# TYPE %s gauge\n", name)
		series(func(labels string, value func(i int) float64) {
			for i := 0; i <= historySteps; i++ {
				fmt.Fprintf(&om, "%s{%s} %g %d\n", name, labels, value(i), historyStart.Add(time.Duration(i)*time.Minute).Unix())
			}
		})
	}
	family("container_memory_working_set_bytes", func(emit func(string, func(int) float64)) {
		for p, pod := range historyPods {
			for _, c := range []string{"app", "sidecar"} {
				emit(fmt.Sprintf(`namespace=%q,pod=%q,container=%q`, historyNS, pod, c), func(i int) float64 { return histMemory(p, c, i) })
			}
		}
	})
	family("kube_pod_status_ready", func(emit func(string, func(int) float64)) {
		for p, pod := range historyPods {
			emit(fmt.Sprintf(`namespace=%q,pod=%q,condition="true"`, historyNS, pod), func(i int) float64 { return histReady(p, i) })
		}
	})
	family("history_queue_length", func(emit func(string, func(int) float64)) {
		for p, pod := range historyPods {
			emit(fmt.Sprintf(`namespace=%q,pod=%q`, historyNS, pod), func(i int) float64 { return histQueueLength(p, i) })
		}
	})
	family("history_inflight", func(emit func(string, func(int) float64)) {
		for p, pod := range historyPods {
			emit(fmt.Sprintf(`namespace=%q,pod=%q`, historyNS, pod), func(i int) float64 { return histInflight(p, i) })
		}
	})
	om.WriteString("# EOF\n")
	if err := bed.Backfill(ctx, &om); err != nil {
		return err
	}
	// Discovery lists series with recent samples only: a live target keeps the history metrics'
	// names known. Its samples start now, ten minutes after the history ends.
	if err := serveFreshHistorySeries(); err != nil {
		return err
	}
	prom, err := promclient.New(bed.PrometheusURL, nil, "GET", nil)
	if err != nil {
		return err
	}
	// Prometheus picks up new blocks at its next reload, within about a minute.
	poll.Until(ctx, t, 3*time.Minute, "backfilled history visible in Prometheus", func(ctx context.Context) (string, bool, error) {
		v, err := prom.Query(ctx, fmt.Sprintf(`count(history_queue_length{namespace=%q})`, historyNS), historyStart.Add(time.Hour))
		if err != nil {
			return err.Error(), false, nil
		}
		vec, _ := v.(model.Vector)
		return v.String(), len(vec) == 1 && vec[0].Value == model.SampleValue(len(historyPods)), nil
	})
	return nil
}

func serveFreshHistorySeries() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var body strings.Builder
	for _, name := range []string{"history_queue_length", "history_inflight"} {
		fmt.Fprintf(&body, "# TYPE %s gauge\n%s{namespace=%q,pod=%q} 0\n", name, name, historyNS, "live-0")
	}
	server := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body.String()))
	})}
	go func() { _ = server.Serve(l) }()
	suiteCleanups = append(suiteCleanups, func() { _ = server.Close() })
	return bed.AddScrapeTarget(localcluster.ScrapeTarget{Name: "history-fresh", Address: l.Addr().String()})
}
