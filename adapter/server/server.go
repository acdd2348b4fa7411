// Package server is `kapacity adapter`: the aggregated API server serving custom.metrics.k8s.io,
// external.metrics.k8s.io and metrics.k8s.io from Prometheus, with prometheus-adapter's config
// format and flags, plus metric history (history.metrics.kapacitystack.io, and optionally
// Kapacity's gRPC ProviderService).
package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/provider"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/adapter/servingcert"
	deployconfig "github.com/kapacitystack/kapacity/deploy/config"
	"github.com/kapacitystack/kapacity/historyapi/query"
)

// Options are all flags of `kapacity adapter`.
type Options struct {
	base *basecmd.AdapterBase

	Prometheus           PrometheusOptions
	ConfigFile           string
	ConfigReloadInterval time.Duration
	RelistInterval       time.Duration
	MaxAge               time.Duration
	MaxRegexBytes        int
	History              HistoryOptions
	ServingCert          servingcert.Options
	// DisableHTTP2 is prometheus-adapter's --disable-http2: the secure port serves HTTP/1.1 only
	// (ALPN offers no h2), against HTTP/2 rapid reset (CVE-2023-44487) and stream exhaustion
	// (CVE-2023-39325), which reach an aggregated API server before authentication.
	DisableHTTP2 bool
}

func newOptions() *Options {
	return &Options{base: &basecmd.AdapterBase{Name: "kapacity-adapter"}}
}

// NewCommand returns the `adapter` subcommand.
func NewCommand() *cobra.Command {
	o := newOptions()
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Serve custom, external and resource metrics APIs from Prometheus (replaces prometheus-adapter)",
		Long: `adapter is an aggregated API server for custom.metrics.k8s.io, external.metrics.k8s.io and
metrics.k8s.io backed by Prometheus. It reads prometheus-adapter's configuration format unchanged
(plus Kapacity's workloadPodNamePatterns and readyPodsOnlyContainerQuery) and reloads the file when
it changes. Without --config it serves Kapacity's default configuration.`,
		Args: cobra.NoArgs,
		// Flag errors still print usage; a failure while running does not bury its message.
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every flag's value at -v=1, as the Kubernetes components log them.
			cliflag.PrintFlags(cmd.Flags())
			if errs := o.Validate(); len(errs) > 0 {
				return errors.Join(errs...)
			}
			return o.Run(cmd.Context())
		},
	}
	setSectionedHelp(cmd, o.AddFlags(cmd.Flags()))
	return cmd
}

// Validate checks the flags.
func (o *Options) Validate() []error {
	errs := append(o.Prometheus.Validate(), o.History.Validate()...)
	errs = append(errs, o.ServingCert.Validate()...)
	if o.ServingCert.Mode == servingcert.ModeSelfSigned && o.base.SecureServing != nil &&
		(o.base.SecureServing.ServerCert.CertKey.CertFile != "" || o.base.SecureServing.ServerCert.CertKey.KeyFile != "") {
		errs = append(errs, fmt.Errorf("--serving-cert-mode=self-signed issues the serving certificate: drop --tls-cert-file and --tls-private-key-file, or use --serving-cert-mode=external"))
	}
	if o.RelistInterval <= 0 {
		errs = append(errs, fmt.Errorf("--metrics-relist-interval must be positive, got %s", o.RelistInterval))
	}
	if o.MaxAge != 0 && o.MaxAge < o.RelistInterval {
		errs = append(errs, fmt.Errorf("--metrics-max-age (%s) must not be less than --metrics-relist-interval (%s), or metrics vanish between listings", o.MaxAge, o.RelistInterval))
	}
	if o.ConfigReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("--config-reload-interval must not be negative"))
	}
	if o.MaxRegexBytes < 0 {
		errs = append(errs, fmt.Errorf("--max-name-regex-bytes must not be negative"))
	}
	return errs
}

// Run serves until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	// The API server's /metrics serves the legacy registry; the adapter's own metrics join it
	// there, injected from here so that no package registers globally on its own.
	reg := legacyregistry.Registerer()

	mapper, err := o.base.RESTMapper()
	if err != nil {
		return fmt.Errorf("building the REST mapper: %w", err)
	}
	rules, err := o.loadRules(mapper, reg)
	if err != nil {
		return err
	}
	httpClient, err := o.Prometheus.HTTPClient()
	if err != nil {
		return err
	}
	prom, err := promclient.New(o.Prometheus.URL, httpClient, o.Prometheus.Method, promclient.NewMetrics(reg))
	if err != nil {
		return err
	}
	relister, err := discovery.New(prom, rules.Current, discovery.Options{Interval: o.RelistInterval, MaxAge: o.MaxAge}, reg)
	if err != nil {
		return err
	}
	clientConfig, err := o.base.ClientConfig()
	if err != nil {
		return err
	}
	metadataClient, err := metadata.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("building the metadata client: %w", err)
	}
	requestMetrics := provider.NewMetrics(reg)
	providerOpts := provider.Options{QueryTimeout: o.Prometheus.QueryTimeout, MaxRegexBytes: o.MaxRegexBytes}
	objects := provider.NewCachedLister(ctx, metadataClient)
	o.base.WithCustomMetrics(provider.NewCustom(relister, prom, mapper, objects, requestMetrics, providerOpts))
	dynamicClient, err := o.base.DynamicClient()
	if err != nil {
		return fmt.Errorf("building the dynamic client: %w", err)
	}
	portraits := provider.NewCachedPortraits(ctx, dynamicClient)
	o.base.WithExternalMetrics(provider.NewExternal(relister, prom, mapper, portraits, requestMetrics, providerOpts))

	if o.DisableHTTP2 {
		o.base.SecureServing.DisableHTTP2Serving = true
	}
	if o.ServingCert.Mode == servingcert.ModeSelfSigned {
		if err := o.startServingCert(ctx, clientConfig); err != nil {
			return err
		}
	}
	o.setOpenAPIConfig()
	server, err := o.base.Server()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	serverConfig, err := o.base.Config()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	// The history engine authorizes every query itself, against the namespace it really reads,
	// with the API server's delegated authorizer (SubjectAccessReview, cached).
	historyEngine := query.New(rules.Current, relister, prom, mapper, objects, requestMetrics, query.Options{
		QueryTimeout: o.Prometheus.QueryTimeout, MaxRegexBytes: o.MaxRegexBytes,
		Concurrency: o.History.ShardConcurrency, MaxRange: o.History.MaxRange, MaxPoints: o.History.MaxPoints, MaxStep: o.History.MaxStep,
		MaxSamples: o.History.MaxSamples, MaxConcurrent: o.History.MaxConcurrent,
		Authorizer: serverConfig.GenericConfig.Authorization.Authorizer,
	})
	kubeClient, err := kubernetes.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("building the Kubernetes client: %w", err)
	}
	if err := o.History.install(ctx, server.GenericAPIServer, historyEngine, kubeClient); err != nil {
		return err
	}
	if err := installResourceMetrics(ctx, server.GenericAPIServer, rules.Current(), prom, clientConfig, o.Prometheus.QueryTimeout, mapper, requestMetrics); err != nil {
		return err
	}

	go relister.Run(ctx)
	if o.ConfigFile != "" && o.ConfigReloadInterval > 0 {
		go rules.Watch(ctx, o.ConfigReloadInterval, func(*ruleset.RuleSet) { relister.Trigger() })
	}
	klog.InfoS("Starting the Kapacity adapter", "prometheus", o.Prometheus.URL, "config", o.configName())
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// startServingCert issues (or adopts) the self-signed serving certificate, points the API server
// at its files (which it reloads when they change), publishes the CA in the APIServices, and keeps
// all three current.
func (o *Options) startServingCert(ctx context.Context, clientConfig *rest.Config) error {
	serverCert := &o.base.SecureServing.ServerCert
	dir := serverCert.CertDirectory
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kapacity-adapter-certs-"); err != nil {
			return fmt.Errorf("creating a certificate directory: %w", err)
		}
	}
	kubeClient, err := kubernetes.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("building the Kubernetes client: %w", err)
	}
	apiServices, err := aggregator.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("building the APIService client: %w", err)
	}
	rotator, err := servingcert.NewRotator(o.ServingCert, dir, kubeClient, apiServices)
	if err != nil {
		return err
	}
	if err := rotator.Sync(ctx); err != nil {
		return fmt.Errorf("preparing the serving certificate: %w", err)
	}
	serverCert.CertKey.CertFile, serverCert.CertKey.KeyFile = rotator.CertFile(), rotator.KeyFile()
	go rotator.Run(ctx)
	return nil
}

func (o *Options) configName() string {
	if o.ConfigFile == "" {
		return "built-in Kapacity default"
	}
	return o.ConfigFile
}

// loadRules loads the config file, or the built-in default.
func (o *Options) loadRules(mapper ruleset.Mapper, reg prometheus.Registerer) (*ruleset.Source, error) {
	if o.ConfigFile == "" {
		return ruleset.NewFixedSource(deployconfig.KapacityDefault(), mapper, reg)
	}
	return ruleset.NewSource(o.ConfigFile, mapper, reg)
}
