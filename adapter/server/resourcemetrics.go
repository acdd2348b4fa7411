package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/provider"
	"github.com/kapacitystack/kapacity/adapter/resourcemetrics"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
)

// installResourceMetrics serves metrics.k8s.io when the config has resourceRules. API groups and
// this provider are built when the server starts, so changes to resourceRules take effect at the
// next restart (rules and externalRules reload live).
func installResourceMetrics(ctx context.Context, server *genericapiserver.GenericAPIServer, rules *ruleset.RuleSet,
	querier promclient.Querier, clientConfig *rest.Config, timeout time.Duration, mapper ruleset.Mapper, requestMetrics *provider.Metrics) error {
	if rules.Config.ResourceRules == nil {
		klog.InfoS("No resourceRules in the config: metrics.k8s.io is not served")
		return nil
	}
	p, err := resourcemetrics.New(rules.Config, mapper, querier, resourcemetrics.Options{QueryTimeout: timeout})
	if err != nil {
		return fmt.Errorf("resource metrics: %w", err)
	}
	kubeClient, err := kubernetes.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("resource metrics: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(clientConfig)
	if err != nil {
		return fmt.Errorf("resource metrics: %w", err)
	}
	informers, err := resourcemetrics.NewInformers(kubeClient, metadataClient, 0)
	if err != nil {
		return err
	}
	if err := resourcemetrics.Install(server, timedMetricsGetter{inner: p, metrics: requestMetrics}, informers); err != nil {
		return err
	}
	// Start the informers with the server, and report ready only once their caches are filled.
	return server.AddPostStartHook("kapacity-resource-metrics-informers", func(hookCtx genericapiserver.PostStartHookContext) error {
		informers.Start(ctx.Done())
		return informers.WaitForCacheSync(hookCtx.Done())
	})
}

// timedMetricsGetter records metrics.k8s.io requests on the adapter's request metrics.
type timedMetricsGetter struct {
	inner   metricsapi.MetricsGetter
	metrics *provider.Metrics
}

func (t timedMetricsGetter) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	began := time.Now()
	out, err := t.inner.GetPodMetrics(pods...)
	t.metrics.Observe("resource", "pods", began, err)
	return out, err
}

func (t timedMetricsGetter) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	began := time.Now()
	out, err := t.inner.GetNodeMetrics(nodes...)
	t.metrics.Observe("resource", "nodes", began, err)
	return out, err
}
