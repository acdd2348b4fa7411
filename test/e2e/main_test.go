// Package e2e holds the end-to-end suites. They share one real test bed (see localcluster),
// started once in TestMain and removed when the suites end or the run is interrupted.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/localcluster"
)

// MetricsBackendEnv names the bed's metrics backend (localcluster.Prometheus, the default, or
// localcluster.VictoriaMetrics).
const MetricsBackendEnv = "KAPACITY_E2E_METRICS_BACKEND"

// bed is the shared cluster. Tests create their own namespaces in it.
var bed *localcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	started := time.Now()
	var err error
	bed, err = localcluster.Start(context.Background(), localcluster.Options{
		// make test-e2e-vm runs the adapter, history and predictive suites on VictoriaMetrics.
		MetricsBackend: os.Getenv(MetricsBackendEnv),
		Nodes:          2,
		HPASyncPeriod:  5 * time.Second,
		ScrapeInterval: 2 * time.Second,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "test bed: "+format+"\n", args...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the test bed: %v\n", err)
		return 1
	}
	release := bed.StopOnInterrupt()
	defer release()
	defer bed.Stop()
	fmt.Fprintf(os.Stderr, "test bed up in %s (kubeconfig %s, metrics backend %s at %s)\n",
		time.Since(started).Round(time.Millisecond), bed.Kubeconfig, bed.MetricsBackend(), bed.PrometheusURL)
	defer func() {
		for i := len(suiteCleanups) - 1; i >= 0; i-- {
			suiteCleanups[i]()
		}
	}()
	return m.Run()
}
