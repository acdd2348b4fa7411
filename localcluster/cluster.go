// Package localcluster runs a real Kubernetes control plane on 127.0.0.1 for end-to-end tests and
// `kapacity demo`: etcd, kube-apiserver (with API aggregation), kube-controller-manager (including
// the HPA controller), kube-scheduler, kwok faking the nodes, and Prometheus. Every process binds to
// loopback on free ports, all state lives in one temporary directory, and Stop (or an interrupt)
// removes both.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure a test bed. The zero value gives two kwok nodes and tools from DefaultBinDir.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
	// prometheus, as built by `make tools`. Empty means DefaultBinDir().
	BinDir string
	// Nodes is the number of kwok nodes to create (default 2).
	Nodes int
	// NodeCPU and NodeMemory are each node's capacity (default "32" and "256Gi").
	NodeCPU, NodeMemory string
	// HPASyncPeriod is the HPA controller's resync period (default 15s, the Kubernetes default).
	HPASyncPeriod time.Duration
	// MetricsBackend is the time-series database the bed runs: Prometheus (the default) or
	// VictoriaMetrics. Either answers Prometheus' query API at Cluster.PrometheusURL.
	MetricsBackend string
	// ScrapeInterval is the metrics backend's scrape (and Prometheus' evaluation) interval (default 5s).
	ScrapeInterval time.Duration
	// StartTimeout bounds the whole start-up (default 2m).
	StartTimeout time.Duration
	// Logf reports progress; nil discards it.
	Logf func(format string, args ...any)
}

func (o *Options) setDefaults() error {
	if o.BinDir == "" {
		dir, err := DefaultBinDir()
		if err != nil {
			return err
		}
		o.BinDir = dir
	}
	dir, err := filepath.Abs(o.BinDir)
	if err != nil {
		return fmt.Errorf("resolving the tools folder %s: %w", o.BinDir, err)
	}
	o.BinDir = dir
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Nodes < 0 {
		return fmt.Errorf("Options.Nodes must be positive, got %d", o.Nodes)
	}
	if o.NodeCPU == "" {
		o.NodeCPU = "32"
	}
	if o.NodeMemory == "" {
		o.NodeMemory = "256Gi"
	}
	if o.HPASyncPeriod == 0 {
		o.HPASyncPeriod = 15 * time.Second
	}
	switch o.MetricsBackend {
	case "":
		o.MetricsBackend = Prometheus
	case Prometheus, VictoriaMetrics:
	default:
		return fmt.Errorf("Options.MetricsBackend %q: want %q or %q", o.MetricsBackend, Prometheus, VictoriaMetrics)
	}
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = 5 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// BinDirEnv overrides where the control-plane binaries are looked for.
const BinDirEnv = "KAPACITY_TOOLS_BIN"

// DefaultBinDir returns $KAPACITY_TOOLS_BIN, or the bin/ folder of the enclosing checkout (found by
// walking up from the working directory to the go.mod of this module), which is where
// `make tools` puts the binaries.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the tools folder: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "test", "tools", "go.mod")); err == nil {
			return filepath.Join(dir, "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no kapacity checkout above the working directory: set %s to the folder `make tools` built", BinDirEnv)
		}
		dir = parent
	}
}

// Cluster is a running test bed.
type Cluster struct {
	// Dir is the temporary directory holding every file of the bed; removed by Stop.
	Dir string
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// Config is the admin REST config.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
	// PrometheusURL is the base URL of the metrics backend's Prometheus-compatible query API.
	PrometheusURL string
	// BinDir is where the tools were found (kubectl and promtool live there too).
	BinDir string

	opts     Options
	metrics  metricsBackend
	procs    []*process // in start order; stopped in reverse
	stopOnce sync.Once
}

// MetricsBackend names the time-series database the bed runs (Prometheus or VictoriaMetrics).
func (c *Cluster) MetricsBackend() string { return c.opts.MetricsBackend }

// Start brings the whole bed up and returns when nodes are Ready, the controllers run and
// Prometheus answers. On failure everything already started is stopped and removed.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kapacity-cluster-")
	if err != nil {
		return nil, fmt.Errorf("creating the cluster directory: %w", err)
	}
	c := &Cluster{Dir: dir, BinDir: opts.BinDir, opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ports of one bed, all on 127.0.0.1.
type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler, prometheus int
}

func (c *Cluster) start(ctx context.Context) error {
	began := time.Now()
	for _, sub := range []string{"pki", "logs", "etcd", "prometheus"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", sub, err)
		}
	}
	p, err := freePorts(6)
	if err != nil {
		return err
	}
	port := ports{p[0], p[1], p[2], p[3], p[4], p[5]}
	certs, err := generatePKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return err
	}

	// The metrics backend needs nothing from Kubernetes: start it first so it is ready by the end.
	if c.opts.MetricsBackend == VictoriaMetrics {
		c.metrics, err = c.startVictoriaMetrics(port.prometheus)
	} else {
		c.metrics, err = c.startPrometheus(port.prometheus)
	}
	if err != nil {
		return err
	}
	c.PrometheusURL = c.metrics.url()

	etcd, err := c.startEtcd(port)
	if err != nil {
		return err
	}
	if err := waitEtcd(ctx, etcd, port.etcdClient); err != nil {
		return err
	}
	c.opts.Logf("etcd ready after %s", time.Since(began).Round(time.Millisecond))

	apiserver, err := c.startAPIServer(port, certs)
	if err != nil {
		return err
	}
	if err := c.writeKubeconfig(port.apiserver, certs); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx, apiserver); err != nil {
		return err
	}
	c.opts.Logf("kube-apiserver ready after %s", time.Since(began).Round(time.Millisecond))

	controllerManager, err := c.startControllerManager(port, certs)
	if err != nil {
		return err
	}
	if _, err := c.startScheduler(port); err != nil {
		return err
	}
	kwok, err := c.startKwok()
	if err != nil {
		return err
	}
	if err := c.createNodes(ctx); err != nil {
		return err
	}
	if err := c.waitControllers(ctx, controllerManager); err != nil {
		return err
	}
	c.opts.Logf("kube-controller-manager ready after %s", time.Since(began).Round(time.Millisecond))
	if err := c.waitNodesReady(ctx, kwok); err != nil {
		return err
	}
	c.opts.Logf("%d kwok nodes ready after %s", c.opts.Nodes, time.Since(began).Round(time.Millisecond))
	if err := c.metrics.waitReady(ctx); err != nil {
		return err
	}
	c.opts.Logf("%s ready after %s", c.opts.MetricsBackend, time.Since(began).Round(time.Millisecond))
	return nil
}

// Stop terminates every process, newest first, and removes the bed's directory. It is safe to
// call more than once and from a signal handler.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(10 * time.Second)
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			c.opts.Logf("removing %s: %v", c.Dir, err)
		}
	})
}

// StopOnInterrupt stops the bed when the process receives SIGINT or SIGTERM, then lets the signal
// take its default effect (the process exits). TestMain and `kapacity demo` use it so that Ctrl-C
// leaves no processes or directories behind. Call the returned function to uninstall the handler.
func (c *Cluster) StopOnInterrupt() (release func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			c.opts.Logf("received %s: stopping the cluster", sig)
			c.Stop()
			signal.Stop(signals)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(signals)
			close(done)
		})
	}
}

// Running reports an error naming the first control-plane process that has exited.
func (c *Cluster) Running() error {
	var errs []error
	for _, p := range c.procs {
		if err := p.running(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) track(p *process, err error) (*process, error) {
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

func (c *Cluster) logDir() string { return filepath.Join(c.Dir, "logs") }
