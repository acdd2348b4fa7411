// Package manager is the `kapacity manager` command: the IntelligentHorizontalPodAutoscaler,
// HorizontalPortrait and ReplicaProfile controllers and the pod webhook in one controller-runtime
// manager.
package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/scale"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/kubeconfig"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	"github.com/kapacitystack/kapacity/executor/ihpa"
	kmetrics "github.com/kapacitystack/kapacity/executor/metrics"
	"github.com/kapacitystack/kapacity/executor/replicaprofile"
	"github.com/kapacitystack/kapacity/executor/standby"
	"github.com/kapacitystack/kapacity/executor/webhook"
	"github.com/kapacitystack/kapacity/executor/workload"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
)

// Options are the command's flags.
type Options struct {
	Kubeconfig         string
	MetricsBindAddress string
	// MetricsSecure serves /metrics over HTTPS to callers kube-apiserver authenticates and
	// authorizes (nonResourceURL /metrics, get); MetricsCertDir holds its tls.crt and tls.key,
	// or, empty, a self-signed certificate is generated at start.
	MetricsSecure           bool
	MetricsCertDir          string
	HealthProbeBindAddress  string
	LeaderElect             bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	ReconcileConcurrency    int
	// KubeAPIQPS and KubeAPIBurst bound the manager's requests to kube-apiserver. client-go's
	// 5/10 default serialized 500 IHPAs to about 2 per second in the scale benchmark.
	KubeAPIQPS   float32
	KubeAPIBurst int
	Webhook      webhook.Options
	// AlgorithmJobs are the defaults of ExternalJob portraits' CronJobs.
	AlgorithmJobs hportrait.JobOptions
	// Standby says how much CPU Standby pods keep.
	Standby standby.Options
}

// NewOptions returns the defaults: metrics and probes on every interface as in a pod, no leader
// election, the webhook on 9443 with a self-signed certificate.
func NewOptions() *Options {
	return &Options{
		MetricsBindAddress:     ":8443",
		MetricsSecure:          true,
		HealthProbeBindAddress: ":8081",
		LeaderElectionID:       "kapacity-manager",
		ReconcileConcurrency:   1,
		KubeAPIQPS:             50,
		KubeAPIBurst:           100,
		Webhook:                webhook.DefaultOptions(),
		AlgorithmJobs:          hportrait.JobOptions{LegacyNamespace: "kapacity-system", ServiceAccount: algorithmjob.DefaultServiceAccount},
		Standby:                standby.DefaultOptions(),
	}
}

// AddFlags registers the flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, kubeconfig.Flag, o.Kubeconfig, kubeconfig.FlagHelp)
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "sustained requests per second to kube-apiserver")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "request burst to kube-apiserver")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, `address of the Prometheus metrics endpoint ("0" disables it)`)
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "serve /metrics over HTTPS to callers kube-apiserver authenticates and authorizes (get on nonResourceURL /metrics); false: plain HTTP to anyone")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", o.MetricsCertDir, "directory of the metrics endpoint's tls.crt and tls.key (default: a self-signed certificate generated at start)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, `address of /healthz and /readyz ("0" disables them)`)
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect a leader, so that only one replica reconciles")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "namespace of the leader election lease; default: the pod's namespace")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "name of the leader election lease")
	fs.IntVar(&o.ReconcileConcurrency, "reconcile-concurrency", o.ReconcileConcurrency, "workers per controller")
	fs.StringVar(&o.AlgorithmJobs.LegacyNamespace, "algorithm-job-namespace", o.AlgorithmJobs.LegacyNamespace,
		"where older versions ran the CronJobs of ExternalJob portraits; they are removed from it on upgrade (jobs now run in their portrait's namespace)")
	_ = fs.MarkDeprecated("algorithm-job-namespace", "algorithm jobs run in their portrait's namespace; the flag only names where older versions' CronJobs are removed from")
	fs.StringVar(&o.AlgorithmJobs.ServiceAccount, "algorithm-job-default-service-account", o.AlgorithmJobs.ServiceAccount,
		"ServiceAccount algorithm jobs run as, in their portrait's namespace: the manager creates it with a RoleBinding to ClusterRole "+algorithmjob.ClusterRoleName+", and templates may name no other")
	fs.StringVar(&o.AlgorithmJobs.PredictiveImage, "algorithm-job-default-image-horizontal-predictive", o.AlgorithmJobs.PredictiveImage,
		`image of the "algorithm" container of Predictive portraits whose template sets none, given the template's arguments (Kapacity's algorithm image); default: --kapacity-image`)
	fs.StringVar(&o.AlgorithmJobs.KapacityImage, "kapacity-image", o.AlgorithmJobs.KapacityImage,
		"this release's image (the one the components run from), also run as `kapacity recommend` by Predictive portraits' jobs when neither their template nor --algorithm-job-default-image-horizontal-predictive names an image (default "+hportrait.DefaultPredictiveImage+")")
	fs.StringVar(&o.AlgorithmJobs.MetricsServerAddr, "algorithm-job-default-metrics-server-addr", o.AlgorithmJobs.MetricsServerAddr, "METRICS_SERVER_ADDR given to algorithm jobs unless their template sets it")
	o.Standby.AddFlags(fs)
	o.Webhook.AddFlags(fs)
}

// Validate checks the flags.
func (o *Options) Validate() error {
	var errs []error
	if o.ReconcileConcurrency < 1 {
		errs = append(errs, fmt.Errorf("--reconcile-concurrency must be at least 1, got %d", o.ReconcileConcurrency))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive, got %v and %d", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	if o.LeaderElect && o.LeaderElectionID == "" {
		errs = append(errs, errors.New("--leader-election-id must not be empty with --leader-elect"))
	}
	if err := algorithmjob.ValidateServiceAccountName(o.AlgorithmJobs.ServiceAccount); err != nil {
		errs = append(errs, fmt.Errorf("--algorithm-job-default-service-account: %w", err))
	}
	if err := o.Standby.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Webhook.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// NewCommand returns the `manager` subcommand.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the IHPA, HorizontalPortrait and ReplicaProfile controllers and the pod webhook",
		Long: `manager runs Kapacity's controllers: IntelligentHorizontalPodAutoscalers choose a replica count
from their portrait providers and move the workload there in gray batches through a ReplicaProfile,
which takes pods out of traffic (Cutoff), parks them (Standby: out of traffic, with their CPU
requests lowered in place through pods/resize where the cluster allows it) and sets the
workload's /scale.
It also serves the mutating webhook that adds the kapacitystack.io/online readiness gate to pods
labelled kapacitystack.io/inject-pod-readiness-gate=true.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every flag's value at -v=1, as the Kubernetes components (and the adapter) log them.
			cliflag.PrintFlags(cmd.Flags())
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Scheme returns the scheme the manager uses: client-go's kinds and Kapacity's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (o *Options) restConfig() (*rest.Config, error) {
	cfg, err := kubeconfig.Load(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "kapacity-manager"
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	return cfg, nil
}

// metricsOptions serves /metrics over HTTPS behind kube-apiserver's authentication and
// authorization unless --metrics-secure=false. HTTP/2 is off: its rapid-reset and stream
// exhaustion attacks (CVE-2023-44487, CVE-2023-39325) reach the endpoint before authentication.
func (o *Options) metricsOptions() metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	if !o.MetricsSecure {
		return m
	}
	m.SecureServing = true
	m.FilterProvider = filters.WithAuthenticationAndAuthorization
	m.CertDir = o.MetricsCertDir
	m.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return m
}

// resultSelector selects the ConfigMaps that carry portraitresult.LabelKey.
func resultSelector() labels.Selector {
	req, err := labels.NewRequirement(portraitresult.LabelKey, selection.Exists, nil)
	if err != nil {
		// A constant, valid key.
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// Run runs the manager until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := klog.NewKlogr().WithName("manager")
	ctrl.SetLogger(log)
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	hookServer, hookRunnable, err := o.Webhook.Server(cfg)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 o.metricsOptions(),
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		LeaderElection:          o.LeaderElect,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaderElectionID:        o.LeaderElectionID,
		// Leaving the lease at once lets a restarted or new leader take over without waiting it out.
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 hookServer,
		GracefulShutdownTimeout:       ptr.To(10 * time.Second),
		// The controllers' names are constants of this package, unique by construction. The
		// check is global to the process, so it would refuse a manager restarted in-process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{
			// Pods are only watched for their labels and phase; keep the cache small.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				// The only ConfigMaps the manager reads are algorithm results: it caches those
				// (labelled by the job) and no other ConfigMap of the cluster. Results without
				// the label are read directly (hportrait.Reconciler.Reader).
				&corev1.ConfigMap{}: {Label: resultSelector()},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the discovery client: %w", err)
	}
	scales, err := scale.NewForConfig(cfg, mgr.GetRESTMapper(), dynamic.LegacyAPIPathResolverFunc,
		scale.NewDiscoveryScaleKindResolver(memory.NewMemCacheClient(disc)))
	if err != nil {
		return fmt.Errorf("creating the scale client: %w", err)
	}
	scaler := &workload.ScaleClient{Mapper: mgr.GetRESTMapper(), Scales: scales}

	if err := (&replicaprofile.Reconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Scaler: scaler,
		Recorder: mgr.GetEventRecorder(replicaprofile.ControllerName),
		Standby:  &o.Standby,
	}).SetupWithManager(mgr, o.ReconcileConcurrency); err != nil {
		return fmt.Errorf("setting up the ReplicaProfile controller: %w", err)
	}
	metrics, err := hportrait.NewMetricsClient(cfg, mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	// What the autoscaler thinks, on the manager's /metrics (dashboards and alerts in deploy/monitoring).
	exporter, err := kmetrics.New(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	if err := (&ihpa.Reconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Scaler: scaler, Metrics: metrics,
		Recorder: mgr.GetEventRecorder(ihpa.ControllerName), Exporter: exporter,
	}).SetupWithManager(mgr, o.ReconcileConcurrency); err != nil {
		return fmt.Errorf("setting up the IHPA controller: %w", err)
	}
	// Burst portraits read their recent traffic from the history API, through kube-apiserver.
	history, err := historyclient.NewHTTPForConfig(cfg)
	if err != nil {
		return err
	}
	if err := (&hportrait.Reconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Scaler: scaler, Metrics: metrics, History: history, Jobs: o.AlgorithmJobs,
		Access:   &algorithmjob.Access{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), ServiceAccount: o.AlgorithmJobs.ServiceAccount},
		Recorder: mgr.GetEventRecorder(hportrait.ControllerName), Exporter: exporter,
	}).SetupWithManager(mgr, o.ReconcileConcurrency); err != nil {
		return fmt.Errorf("setting up the HorizontalPortrait controller: %w", err)
	}
	if hookServer != nil {
		// GetWebhookServer adds the server to the manager's runnables.
		mgr.GetWebhookServer().Register(webhook.Path, webhook.Handler(scheme))
		mgr.GetWebhookServer().Register(webhook.ValidatePath, webhook.ValidationHandler(scheme, o.AlgorithmJobs.ServiceAccount))
		if hookRunnable != nil {
			if err := mgr.Add(hookRunnable); err != nil {
				return err
			}
		}
		if err := mgr.AddReadyzCheck("webhook", hookServer.StartedChecker()); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	log.Info("Starting the manager", "leaderElection", o.LeaderElect, "webhook", hookServer != nil)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}
