package hportrait

import (
	"context"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	resourceclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
	"k8s.io/metrics/pkg/client/custom_metrics"
	"k8s.io/metrics/pkg/client/external_metrics"

	"github.com/kapacitystack/kapacity/executor/replicacalc"
)

// MetricsClient reads the metrics APIs (metrics.k8s.io, custom.metrics.k8s.io,
// external.metrics.k8s.io), as the HPA controller does.
type MetricsClient interface {
	// PodResource returns the pods' usage of a resource (summed over their containers, or of one
	// container), in milli-units.
	PodResource(ctx context.Context, namespace string, selector labels.Selector, resource corev1.ResourceName, container string) (replicacalc.Samples, error)
	// PodMetric returns a custom metric of the selected pods, in milli-units.
	PodMetric(ctx context.Context, namespace string, selector labels.Selector, metric string, metricSelector labels.Selector) (replicacalc.Samples, error)
	// ObjectMetric returns a custom metric of one object, in milli-units.
	ObjectMetric(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, metric string, metricSelector labels.Selector) (int64, error)
	// ExternalMetric returns the sum of an external metric's series, in milli-units.
	ExternalMetric(ctx context.Context, namespace, metric string, metricSelector labels.Selector) (int64, error)
}

// NewMetricsClient returns a MetricsClient over the three metrics APIs.
func NewMetricsClient(cfg *rest.Config, mapper meta.RESTMapper) (MetricsClient, error) {
	res, err := resourceclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the resource metrics client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	ext, err := external_metrics.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the external metrics client: %w", err)
	}
	return &apiMetrics{
		resource: res,
		custom:   custom_metrics.NewForConfig(cfg, mapper, custom_metrics.NewAvailableAPIsGetter(memory.NewMemCacheClient(disc))),
		external: ext,
	}, nil
}

type apiMetrics struct {
	resource resourceclient.MetricsV1beta1Interface
	custom   custom_metrics.CustomMetricsClient
	external external_metrics.ExternalMetricsClient
}

func (m *apiMetrics) PodResource(ctx context.Context, namespace string, selector labels.Selector, resource corev1.ResourceName, container string) (replicacalc.Samples, error) {
	list, err := m.resource.PodMetricses(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, fmt.Errorf("unable to get metrics for resource %s: unable to fetch metrics from resource metrics API: %w", resource, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", resource)
	}
	out := replicacalc.Samples{}
	for _, pm := range list.Items {
		var sum int64
		found := false
		for _, c := range pm.Containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Usage[resource]
			if !ok {
				found = false
				break
			}
			sum += q.MilliValue()
			found = true
		}
		// A pod missing the resource for some container has no sample, as for the HPA.
		if found {
			out[pm.Name] = replicacalc.Sample{Value: sum, Timestamp: pm.Timestamp.Time, Window: pm.Window.Duration}
		}
	}
	return out, nil
}

func (m *apiMetrics) PodMetric(_ context.Context, namespace string, selector labels.Selector, metric string, metricSelector labels.Selector) (replicacalc.Samples, error) {
	list, err := m.custom.NamespacedMetrics(namespace).GetForObjects(schema.GroupKind{Kind: "Pod"}, selector, metric, metricSelector)
	if err != nil {
		return nil, fmt.Errorf("unable to fetch metrics from custom metrics API: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no metrics returned from custom metrics API")
	}
	out := replicacalc.Samples{}
	for _, v := range list.Items {
		window := time.Minute
		if v.WindowSeconds != nil {
			window = time.Duration(*v.WindowSeconds) * time.Second
		}
		out[v.DescribedObject.Name] = replicacalc.Sample{Value: v.Value.MilliValue(), Timestamp: v.Timestamp.Time, Window: window}
	}
	return out, nil
}

func (m *apiMetrics) ObjectMetric(_ context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, metric string, metricSelector labels.Selector) (int64, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return 0, fmt.Errorf("invalid apiVersion %q of the described object: %w", ref.APIVersion, err)
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	var v interface{ MilliValue() int64 }
	if gk.Kind == "Namespace" && gk.Group == "" {
		mv, err := m.custom.RootScopedMetrics().GetForObject(gk, namespace, metric, metricSelector)
		if err != nil {
			return 0, fmt.Errorf("unable to fetch metrics from custom metrics API: %w", err)
		}
		v = &mv.Value
	} else {
		mv, err := m.custom.NamespacedMetrics(namespace).GetForObject(gk, ref.Name, metric, metricSelector)
		if err != nil {
			return 0, fmt.Errorf("unable to fetch metrics from custom metrics API: %w", err)
		}
		v = &mv.Value
	}
	return v.MilliValue(), nil
}

func (m *apiMetrics) ExternalMetric(_ context.Context, namespace, metric string, metricSelector labels.Selector) (int64, error) {
	list, err := m.external.NamespacedMetrics(namespace).List(metric, metricSelector)
	if err != nil {
		return 0, fmt.Errorf("unable to fetch metrics from external metrics API: %w", err)
	}
	if len(list.Items) == 0 {
		return 0, fmt.Errorf("no metrics returned from external metrics API")
	}
	var sum int64
	for _, v := range list.Items {
		sum += v.Value.MilliValue()
	}
	return sum, nil
}
