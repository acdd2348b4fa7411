// Package stack runs Kapacity's components on a test bed (localcluster) the way a cluster runs
// them: the adapter serving the three metrics APIs through kube-apiserver, and the workload
// simulator whose series Prometheus scrapes. The end-to-end suites and `kapacity demo` share it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	adapterserver "github.com/kapacitystack/kapacity/adapter/server"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/sim"
)

// Namespace holds the adapter's Service; not kapacity-system, which the deploy/ manifests own.
const Namespace = "kapacity-test"

// simulatorRules are the rules a user of the default config would add for the simulator's
// series and for the history tests' gauges, and the rule the predictive quick-start (2.2.1.3) tells
// its users to add for ingress-nginx, verbatim.
const simulatorRules = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[20s])) by (<<.GroupBy>>)'
# Gauges of the history tests, backfilled at one-minute resolution (no rate windows to outgrow).
- seriesQuery: 'history_queue_length{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
# The ingress-nginx rule of Kapacity's predictive quick-start (2.2.1.3), verbatim; its 3m irate
# window also reads history backfilled at one-minute resolution.
- seriesQuery: '{__name__="nginx_ingress_controller_requests"}'
  metricsQuery: round(sum(irate(<<.Series>>{<<.LabelMatchers>>}[3m])) by (<<.GroupBy>>), 0.001)
  name:
    as: nginx_ingress_controller_requests_rate
  resources:
    template: <<.Resource>>
externalRules:
- seriesQuery: 'history_inflight{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
- seriesQuery: 'http_requests_total{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
  name: {matches: "^http_requests_total$", as: "requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[20s]))'
`

// AdapterConfig returns the config the test bed's adapter runs with: Kapacity's default config
// (deploy/config/kapacity-default.yaml, what the chart installs: resource rules, the ready-pods
// rules, workload patterns) with simulatorRules appended to its rules and externalRules, as a
// user adds their own. What the quick-start samples read (CPU of ready pods, kube_pod_status_ready)
// therefore comes from the default config itself.
func AdapterConfig() (string, error) {
	var cfg, extra map[string]any
	if err := yaml.Unmarshal(deployconfig.KapacityDefault(), &cfg); err != nil {
		return "", fmt.Errorf("decoding the default config: %w", err)
	}
	if err := yaml.Unmarshal([]byte(simulatorRules), &extra); err != nil {
		return "", fmt.Errorf("decoding the simulator's rules: %w", err)
	}
	for _, key := range []string{"rules", "externalRules"} {
		base, _ := cfg[key].([]any)
		add, _ := extra[key].([]any)
		cfg[key] = append(base, add...)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	if _, err := metricsconfig.Load(out); err != nil {
		return "", fmt.Errorf("the test bed's adapter config: %w", err)
	}
	return string(out), nil
}

// Adapter is a running adapter with the simulator feeding it.
type Adapter struct {
	// Sim serves the workloads' series; add workloads and set their traffic through it.
	Sim *sim.Simulator
	// Prometheus is the proxy the adapter reaches Prometheus through; stop it to make
	// Prometheus unreachable for the adapter without disturbing the bed.
	Prometheus *SwitchableProxy
	// Port is the adapter's HTTPS port on 127.0.0.1.
	Port int
	// Namespace holds the adapter's certificate Secret and HistoryReader: Namespace, or the
	// chart's release namespace.
	Namespace string
	// GRPCAddr is host:port of the adapter's gRPC ProviderService (plaintext, on loopback).
	GRPCAddr string
	// GRPCTokenFile holds a token the gRPC service accepts: ServiceAccount HistoryReader of
	// Namespace, which may read every namespace's history (kapacity-history-reader, cluster-wide).
	GRPCTokenFile string

	cancel  context.CancelFunc
	started bool          // the adapter goroutine runs
	done    chan struct{} // closed when it returns
	exitErr error
	dir     string
}

// AdapterOptions say how StartAdapterWith runs the adapter.
type AdapterOptions struct {
	// Config is the metrics-discovery config (AdapterConfig for the simulator's series).
	Config string
	// Chart, when set, is the installed chart: the adapter runs with its Deployment's arguments
	// and the token of its ServiceAccount, behind its APIServices. Otherwise it runs as the bed's
	// admin behind APIServices of its own, backed by a Service in Namespace.
	Chart *ChartInstall
}

// StartAdapter starts the simulator and the adapter (in this process) with config, registers the
// adapter as the APIService of custom.metrics.k8s.io (v1beta1, v1beta2), external.metrics.k8s.io,
// metrics.k8s.io and history.metrics.kapacitystack.io, and returns once kube-apiserver reports
// them Available. The adapter's gRPC ProviderService listens on GRPCAddr.
func StartAdapter(ctx context.Context, bed *localcluster.Cluster, config string) (*Adapter, error) {
	return StartAdapterWith(ctx, bed, AdapterOptions{Config: config})
}

// StartAdapterWith is StartAdapter with options.
func StartAdapterWith(ctx context.Context, bed *localcluster.Cluster, o AdapterOptions) (_ *Adapter, err error) {
	if o.Chart != nil && o.Chart.adapter.args == nil {
		return nil, errors.New("the chart was rendered without the adapter (adapter.enabled=false)")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &Adapter{cancel: cancel, done: make(chan struct{}), Namespace: Namespace}
	if o.Chart != nil {
		a.Namespace = o.Chart.Namespace
	}
	defer func() {
		if err != nil {
			a.Stop()
		}
	}()
	a.Sim = sim.New(bed.Client)
	simAddr, err := a.Sim.Serve(runCtx)
	if err != nil {
		return nil, err
	}
	if err := bed.AddScrapeTarget(localcluster.ScrapeTarget{Name: "sim", Address: simAddr}); err != nil {
		return nil, err
	}
	if a.Prometheus, err = NewSwitchableProxy(bed.PrometheusURL); err != nil {
		return nil, err
	}
	// Inside the bed's directory, so that an interrupted run that only gets to stop the bed
	// still leaves nothing behind.
	if a.dir, err = os.MkdirTemp(bed.Dir, "adapter-"); err != nil {
		return nil, err
	}
	configPath := filepath.Join(a.dir, "config.yaml")
	if err := os.WriteFile(configPath, []byte(o.Config), 0o600); err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	a.GRPCAddr = fmt.Sprintf("127.0.0.1:%d", grpcPort)
	// What the bed needs of every adapter: loopback ports, files in the bed's folder, the
	// simulator's Prometheus, quick relists; gRPC on loopback (plaintext there) for the tests.
	host := map[string]string{
		"bind-address":            "127.0.0.1",
		"cert-dir":                filepath.Join(a.dir, "certs"),
		"prometheus-url":          a.Prometheus.URL(),
		"config":                  configPath,
		"metrics-relist-interval": "5s",
		"config-reload-interval":  "1s",
		"grpc-port":               fmt.Sprint(grpcPort),
		"grpc-bind-address":       "127.0.0.1",
	}
	var args []string
	if o.Chart != nil {
		// The chart's own flags (its serving certificate, Prometheus options…), on the host, with
		// the token of its ServiceAccount where a pod would use its in-cluster config.
		a.Port = o.Chart.AdapterPort
		host["secure-port"] = fmt.Sprint(a.Port)
		for _, f := range []string{"lister-kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"} {
			host[f] = o.Chart.adapter.kubeconfig
		}
		args = withFlags(o.Chart.adapter.args, host, "grpc-tls-cert-file", "grpc-tls-key-file")
	} else {
		if a.Port, err = freePort(); err != nil {
			return nil, err
		}
		// Registered first: the adapter publishes its CA in the APIServices when it starts.
		if err := registerAPIServices(ctx, bed, a.Port); err != nil {
			return nil, err
		}
		host["secure-port"] = fmt.Sprint(a.Port)
		for _, f := range []string{"lister-kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"} {
			host[f] = bed.Kubeconfig
		}
		args = withFlags([]string{
			// As the chart runs it: a CA in a Secret, published as the APIServices' caBundle, which
			// kube-apiserver verifies for <service>.<namespace>.svc.
			"--serving-cert-mode=self-signed",
			"--serving-cert-secret-namespace=" + Namespace,
			"--serving-cert-secret-name=kapacity-adapter-cert",
			"--serving-cert-dns-names=kapacity-adapter." + Namespace + ".svc",
		}, host)
	}
	cmd := adapterserver.NewCommand()
	cmd.SetArgs(args)
	a.started = true
	go func() {
		a.exitErr = cmd.ExecuteContext(runCtx)
		close(a.done)
	}()
	if a.GRPCTokenFile, err = historyReaderToken(ctx, bed, a.Namespace, a.dir); err != nil {
		return nil, err
	}
	if err := a.waitAvailable(ctx, bed); err != nil {
		return nil, err
	}
	return a, nil
}

// Stop stops the adapter and the simulator and removes their files.
func (a *Adapter) Stop() {
	a.cancel()
	if a.started {
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "the adapter did not stop within 30s")
		}
	}
	if a.Prometheus != nil {
		a.Prometheus.Stop()
	}
	if a.dir != "" {
		_ = os.RemoveAll(a.dir)
	}
}

// Err reports why the adapter stopped, or nil while it runs.
func (a *Adapter) Err() error {
	select {
	case <-a.done:
		if a.exitErr == nil {
			return errors.New("the adapter stopped")
		}
		return fmt.Errorf("the adapter stopped: %w", a.exitErr)
	default:
		return nil
	}
}

// registerAPIServices makes kube-apiserver route the metrics APIs to the adapter on loopback,
// through an ExternalName Service, verifying the adapter with the CA bundle it publishes.
func registerAPIServices(ctx context.Context, bed *localcluster.Cluster, port int) error {
	_, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	_, err = bed.Client.CoreV1().Services(Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kapacity-adapter"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the adapter service: %w", err)
	}
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	for _, gv := range metricsAPIs {
		_, err := apiServices.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: gv.version + "." + gv.group},
			Spec: apiregistrationv1.APIServiceSpec{
				Service: &apiregistrationv1.ServiceReference{Namespace: Namespace, Name: "kapacity-adapter", Port: ptr.To(int32(port))},
				Group:   gv.group,
				Version: gv.version,
				// No caBundle yet and no insecureSkipTLSVerify: the adapter publishes its CA.
				GroupPriorityMinimum: 100,
				VersionPriority:      100,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("registering %s/%s: %w", gv.group, gv.version, err)
		}
	}
	return nil
}

// HistoryReader is the ServiceAccount, in Adapter.Namespace, whose token Adapter.GRPCTokenFile holds.
const HistoryReader = "history-reader"

// historyReaderToken creates HistoryReader in namespace with cluster-wide read access to the
// history API and writes a token of it (TokenRequest, valid for a day) into dir.
func historyReaderToken(ctx context.Context, bed *localcluster.Cluster, namespace, dir string) (string, error) {
	_, err := bed.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: HistoryReader}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating ServiceAccount %s: %w", HistoryReader, err)
	}
	role := "kapacity-test:" + HistoryReader
	_, err = bed.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{historyv1alpha1.GroupName}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating ClusterRole %s: %w", role, err)
	}
	_, err = bed.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: HistoryReader, Namespace: namespace}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("binding ClusterRole %s: %w", role, err)
	}
	token, err := bed.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, HistoryReader, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of %s: %w", HistoryReader, err)
	}
	path := filepath.Join(dir, "grpc-token")
	return path, os.WriteFile(path, []byte(token.Status.Token), 0o600)
}

var metricsAPIs = []struct{ group, version string }{
	{"custom.metrics.k8s.io", "v1beta1"}, {"custom.metrics.k8s.io", "v1beta2"},
	{"external.metrics.k8s.io", "v1beta1"}, {"metrics.k8s.io", "v1beta1"},
	{"history.metrics.kapacitystack.io", "v1alpha1"},
}

// waitAvailable waits until kube-apiserver reports the adapter's APIServices Available, failing
// early if the adapter exits.
func (a *Adapter) waitAvailable(ctx context.Context, bed *localcluster.Cluster) error {
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	deadline := time.After(90 * time.Second)
	for {
		var notReady []string
		for _, gv := range metricsAPIs {
			svc, err := apiServices.ApiregistrationV1().APIServices().Get(ctx, gv.version+"."+gv.group, metav1.GetOptions{})
			if err != nil {
				notReady = append(notReady, err.Error())
				continue
			}
			available := false
			for _, c := range svc.Status.Conditions {
				if c.Type == apiregistrationv1.Available {
					available = c.Status == apiregistrationv1.ConditionTrue
					if !available {
						notReady = append(notReady, fmt.Sprintf("%s: %s", svc.Name, c.Message))
					}
				}
			}
			if !available && len(svc.Status.Conditions) == 0 {
				notReady = append(notReady, svc.Name+": no status yet")
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-a.done:
			return a.Err()
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
