// Package demo implements `kapacity demo`: the loopback cluster of localcluster, the same one the
// end-to-end tests use, kept running with every component and sample for a person to explore.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

// NewCommand returns the `demo` subcommand.
func NewCommand() *cobra.Command {
	opts := localcluster.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local cluster (kwok nodes) with Prometheus, the Kapacity adapter and manager, and sample autoscaled workloads until Ctrl-C",
		Long: `demo starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes)
and Prometheus on 127.0.0.1, then the Kapacity adapter registered for the three metrics APIs, a
sample Deployment with simulated traffic scaled by a native HPA on a custom metric, the Kapacity
manager (executor) and a sample IHPA that scales a second Deployment up on a cron window and down
in gray steps. It prints how to reach everything, then sets up the predictive quick-start: it
backfills 3 days of synthetic seasonal traffic into Prometheus, trains the forecaster (printing
each epoch), creates the predictive sample IHPA and runs its algorithm job at once, so that its
StatefulSet is scaled up before its traffic rises (every 10 minutes). It runs until
interrupted. On Ctrl-C every process is stopped and every file removed. The control-plane binaries
come from ` + "`make tools`" + ` (bin/).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Run(ctx, cmd.OutOrStdout(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.BinDir, "tools-bin", "", "folder holding the control-plane binaries (default: bin/ of the enclosing checkout, or $"+localcluster.BinDirEnv+")")
	flags.IntVar(&opts.Nodes, "nodes", 3, "number of kwok (fake) nodes")
	flags.StringVar(&opts.NodeCPU, "node-cpu", "32", "CPU capacity of each node")
	flags.StringVar(&opts.NodeMemory, "node-memory", "256Gi", "memory capacity of each node")
	flags.DurationVar(&opts.HPASyncPeriod, "hpa-sync-period", 15*time.Second, "resync period of the HPA controller")
	flags.DurationVar(&opts.ScrapeInterval, "scrape-interval", 5*time.Second, "Prometheus scrape interval")
	return cmd
}

// Run brings the demo up and keeps it running until ctx ends, then removes everything.
func Run(ctx context.Context, out io.Writer, opts localcluster.Options) error {
	if opts.Nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1, got %d", opts.Nodes)
	}
	opts.Logf = func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }
	began := time.Now()
	fmt.Fprintln(out, "Starting the local cluster…")
	bed, err := localcluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the demo cluster: %w", err)
	}
	defer bed.Stop()
	fmt.Fprintln(out, "Starting the Kapacity adapter and a sample workload…")
	// The adapter and the manager run in this process; their logs go beside the control plane's
	// instead of burying the instructions below.
	kapacityLog, err := os.Create(filepath.Join(bed.Dir, "logs", "kapacity.log"))
	if err != nil {
		return fmt.Errorf("creating the Kapacity log: %w", err)
	}
	defer kapacityLog.Close()
	klog.LogToStderr(false)
	klog.SetOutput(kapacityLog)
	config, err := stack.AdapterConfig()
	if err != nil {
		return err
	}
	adapter, err := stack.StartAdapter(ctx, bed, config)
	if err != nil {
		return fmt.Errorf("starting the adapter: %w", err)
	}
	defer adapter.Stop()
	if err := startSampleWorkload(ctx, bed, adapter); err != nil {
		return err
	}
	fmt.Fprintln(out, "Starting the Kapacity manager and a sample IHPA…")
	mgr, err := stack.StartManager(ctx, bed)
	if err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	defer mgr.Close()
	stopStandIn, err := startExecutorSample(ctx, bed)
	if err != nil {
		return err
	}
	defer stopStandIn()
	consoleURL, stopConsole, err := startConsole(ctx, bed)
	if err != nil {
		return err
	}
	defer stopConsole()

	fmt.Fprintf(out, `
Cluster up in %s. In another shell:

  export KUBECONFIG=%s
  export PATH=%s:$PATH
  kubectl get nodes

The Kapacity adapter serves custom.metrics.k8s.io, external.metrics.k8s.io and metrics.k8s.io.
Deployment demo/web gets simulated traffic swinging between 10 and 80 requests/s every 10 minutes;
a native HPA keeps 10 requests/s per pod on the adapter's http_requests_per_second metric:

  kubectl get hpa -n demo -w
  kubectl top pods -n demo
  kubectl get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second"
  kubectl get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/deployments.apps/web/http_requests_per_second"

The Kapacity manager runs the executor. IHPA demo/batch (the quick-start's gray-strategy sample with
its cron window every 10 minutes) scales Deployment demo/batch from 1 to 5 replicas at minutes 0, 10,
20… and, 4 minutes later, back to 1 in gray steps: pods are cut off (unready, out of the Service)
2 at a time every 30 s, then removed after a 60 s observation:

  kubectl get ihpa,replicaprofile -n demo -w
  kubectl get pods -n demo -l app=batch -L kapacitystack.io/pod-state -w
  kubectl describe ihpa -n demo batch

Prometheus: %s
%sFiles and logs: %s

Setting up the predictive sample (about a minute)…
`, time.Since(began).Round(time.Millisecond), bed.Kubeconfig, filepath.Clean(bed.BinDir), bed.PrometheusURL, consoleLine(consoleURL), bed.Dir)

	pred, err := startPredictive(ctx, bed, out)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "\nStopping the cluster…")
			return nil
		}
		return fmt.Errorf("setting up the predictive sample: %w", err)
	}
	defer pred.stop()
	fmt.Fprintf(out, "\n%s\nThe demo's training took %s; the first predictive result was in the HorizontalPortrait %s after the start.\n"+
		"Press Ctrl-C to stop and clean up.\n", pred.instructions(), pred.training.Round(100*time.Millisecond),
		pred.firstResult.Sub(began).Round(time.Second))

	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nStopping the cluster…")
			return nil
		case <-ticker.C:
			if err := bed.Running(); err != nil {
				return fmt.Errorf("the demo cluster failed: %w", err)
			}
			if err := adapter.Err(); err != nil {
				return err
			}
			if err := mgr.Err(); err != nil {
				return err
			}
		}
	}
}
