package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	adapterserver "github.com/kapacitystack/kapacity/adapter/server"
	"github.com/kapacitystack/kapacity/test/cluster"
	"github.com/kapacitystack/kapacity/test/poll"
	"github.com/kapacitystack/kapacity/test/sim"
)

// adapterConfig is a prometheus-adapter config as a user would write it for the simulator's
// series, plus Kapacity's resource rules and workload patterns.
const adapterConfig = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[20s])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'http_requests_total{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
  name: {matches: "^http_requests_total$", as: "requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[20s]))'
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (irate(container_cpu_usage_seconds_total{container!="",container!="POD",<<.LabelMatchers>>}[20s]))'
    resources:
      overrides:
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{container!="",container!="POD",<<.LabelMatchers>>})'
    resources:
      overrides:
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 20s
workloadPodNamePatterns:
- {group: apps, kind: ReplicaSet, pattern: '^%s-[a-z0-9]+$'}
- {group: apps, kind: Deployment, pattern: '^%s-[a-z0-9]+-[a-z0-9]+$'}
- {group: apps, kind: StatefulSet, pattern: '^%s-[0-9]+$'}
`

// adapterEnv is the adapter under test and what feeds it: the workload simulator, scraped by the
// bed's Prometheus, and a proxy in front of Prometheus that tests can take down.
type adapterEnv struct {
	sim   *sim.Simulator
	proxy *switchableProxy
}

var (
	adapterOnce sync.Once
	adapterErr  error
	adapter     *adapterEnv
	// suiteCleanups run when the suites end, before the bed stops.
	suiteCleanups []func()
)

// useAdapter starts the adapter, registered as an APIService for all three metrics APIs, on first
// use; later tests share it.
func useAdapter(t *testing.T) *adapterEnv {
	t.Helper()
	adapterOnce.Do(func() { adapter, adapterErr = startAdapter() })
	if adapterErr != nil {
		t.Fatalf("starting the adapter: %v", adapterErr)
	}
	return adapter
}

func startAdapter() (*adapterEnv, error) {
	ctx, cancel := context.WithCancel(context.Background())
	suiteCleanups = append(suiteCleanups, cancel)

	simulator := sim.New(bed.Client)
	simAddr, err := simulator.Serve(ctx)
	if err != nil {
		return nil, err
	}
	if err := bed.AddScrapeTarget(cluster.ScrapeTarget{Name: "sim", Address: simAddr}); err != nil {
		return nil, err
	}
	proxy, err := newSwitchableProxy(bed.PrometheusURL)
	if err != nil {
		return nil, err
	}
	suiteCleanups = append(suiteCleanups, proxy.Close)

	dir, err := os.MkdirTemp("", "kapacity-adapter-e2e-")
	if err != nil {
		return nil, err
	}
	suiteCleanups = append(suiteCleanups, func() { _ = os.RemoveAll(dir) })
	configPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, []byte(adapterConfig), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := adapterserver.NewCommand()
	cmd.SetArgs([]string{
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--lister-kubeconfig=" + bed.Kubeconfig,
		"--authentication-kubeconfig=" + bed.Kubeconfig,
		"--authorization-kubeconfig=" + bed.Kubeconfig,
		"--prometheus-url=" + proxy.URL(),
		"--config=" + configPath,
		"--metrics-relist-interval=5s",
		"--config-reload-interval=1s",
	})
	// done is closed when the adapter returns; exitErr holds what it returned.
	done := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.ExecuteContext(ctx)
		close(done)
		if ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "the adapter exited early: %v\n", exitErr)
		}
	}()
	suiteCleanups = append(suiteCleanups, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "adapter did not stop within 30s")
		}
	})
	if err := registerAdapter(ctx, port); err != nil {
		return nil, err
	}
	if err := waitAPIServicesAvailable(ctx, done, &exitErr); err != nil {
		return nil, err
	}
	return &adapterEnv{sim: simulator, proxy: proxy}, nil
}

// registerAdapter makes kube-apiserver route the three metrics APIs to the adapter on loopback.
func registerAdapter(ctx context.Context, port int) error {
	const ns = "kapacity-system"
	_, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = bed.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kapacity-adapter"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	for _, gv := range []struct{ group, version string }{
		{"custom.metrics.k8s.io", "v1beta1"}, {"custom.metrics.k8s.io", "v1beta2"},
		{"external.metrics.k8s.io", "v1beta1"}, {"metrics.k8s.io", "v1beta1"},
	} {
		_, err := apiServices.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: gv.version + "." + gv.group},
			Spec: apiregistrationv1.APIServiceSpec{
				Service:               &apiregistrationv1.ServiceReference{Namespace: ns, Name: "kapacity-adapter", Port: ptr.To(int32(port))},
				Group:                 gv.group,
				Version:               gv.version,
				InsecureSkipTLSVerify: true,
				GroupPriorityMinimum:  100,
				VersionPriority:       100,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("registering %s/%s: %w", gv.group, gv.version, err)
		}
	}
	return nil
}

// waitAPIServicesAvailable waits until kube-apiserver reports the adapter's APIServices Available,
// failing early if the adapter exits.
func waitAPIServicesAvailable(ctx context.Context, adapterDone <-chan struct{}, exitErr *error) error {
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	deadline := time.After(90 * time.Second)
	for {
		list, err := apiServices.ApiregistrationV1().APIServices().List(ctx, metav1.ListOptions{})
		var notReady []string
		if err != nil {
			notReady = append(notReady, err.Error())
		}
		for _, svc := range list.Items {
			if svc.Spec.Service == nil || svc.Spec.Service.Name != "kapacity-adapter" {
				continue
			}
			available := false
			for _, c := range svc.Status.Conditions {
				if c.Type == apiregistrationv1.Available && c.Status == apiregistrationv1.ConditionTrue {
					available = true
				} else if c.Type == apiregistrationv1.Available {
					notReady = append(notReady, fmt.Sprintf("%s: %s", svc.Name, c.Message))
				}
			}
			if !available && len(svc.Status.Conditions) == 0 {
				notReady = append(notReady, svc.Name+": no status yet")
			}
		}
		if err == nil && len(notReady) == 0 {
			return nil
		}
		select {
		case <-adapterDone:
			return fmt.Errorf("the adapter exited: %v", *exitErr)
		case <-deadline:
			return fmt.Errorf("adapter APIServices not Available within 90s: %v", notReady)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// switchableProxy forwards to Prometheus on a fixed loopback port and can be stopped and started
// again, so a test can make Prometheus unreachable for the adapter without disturbing the bed.
type switchableProxy struct {
	addr    string
	handler http.Handler

	mu     sync.Mutex
	server *http.Server
}

func newSwitchableProxy(target string) (*switchableProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &switchableProxy{addr: fmt.Sprintf("127.0.0.1:%d", port), handler: httputil.NewSingleHostReverseProxy(u)}
	return p, p.Start()
}

func (p *switchableProxy) URL() string { return "http://" + p.addr }

// Start serves again on the same address.
func (p *switchableProxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	p.server = &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}
	go func(s *http.Server) { _ = s.Serve(l) }(p.server)
	return nil
}

// Stop closes the listener and every connection: the adapter sees "connection refused".
func (p *switchableProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		_ = p.server.Close()
		p.server = nil
	}
}

func (p *switchableProxy) Close() { p.Stop() }

// getRaw GETs an API path, with optional query parameters ("key=value"), through kube-apiserver.
func getRaw(ctx context.Context, path string, params ...string) ([]byte, error) {
	req := bed.Client.CoreV1().RESTClient().Get().AbsPath(path)
	for _, p := range params {
		key, value, _ := strings.Cut(p, "=")
		req = req.Param(key, value)
	}
	return req.DoRaw(ctx)
}

// waitRaw polls an API path until it answers 200 and accept approves the body.
func waitRaw(ctx context.Context, t *testing.T, timeout time.Duration, path string, accept func([]byte) bool, params ...string) []byte {
	t.Helper()
	var body []byte
	poll.Until(ctx, t, timeout, "GET "+path, func(ctx context.Context) (string, bool, error) {
		reqCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		b, err := getRaw(reqCtx, path, params...)
		if err != nil {
			return fmt.Sprintf("%v: %s", err, b), false, nil
		}
		body = b
		return string(b), accept(b), nil
	})
	return body
}
