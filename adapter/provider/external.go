package provider

import (
	"context"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kapacitystack/kapacity/adapter/metricvalue"
	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
)

// External serves external.metrics.k8s.io.
type External struct {
	base
	portraits PortraitLister // nil: predicted replicas are not served
}

var _ cmprovider.ExternalMetricsProvider = (*External)(nil)

// NewExternal returns the external metrics provider. With portraits, it also serves
// PredictedReplicasMetric from HorizontalPortrait status.
func NewExternal(registry Registry, querier promclient.Querier, mapper meta.RESTMapper, portraits PortraitLister, metrics *Metrics, opts Options) *External {
	opts.setDefaults()
	return &External{base: base{registry: registry, querier: querier, mapper: mapper, opts: opts, metrics: metrics}, portraits: portraits}
}

// ListAllExternalMetrics lists the discovered external metric names.
func (e *External) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	var out []cmprovider.ExternalMetricInfo
	if e.portraits != nil {
		out = append(out, cmprovider.ExternalMetricInfo{Metric: PredictedReplicasMetric})
	}
	reg := e.registry.Registry()
	if reg == nil {
		return out
	}
	for name := range reg.External {
		if name == PredictedReplicasMetric && e.portraits != nil {
			continue // served from portraits; listed once above
		}
		out = append(out, cmprovider.ExternalMetricInfo{Metric: name})
	}
	return out
}

// GetExternalMetric returns one value per series the metric's query yields. No measured sample is
// "not found" (prometheus-adapter answers an empty list, which the HPA also treats as a failure
// but with a less useful message).
func (e *External) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (_ *external_metrics.ExternalMetricValueList, err error) {
	began := e.opts.Now()
	metricLabel := "unknown"
	defer func() { e.metrics.Observe("external", metricLabel, began, err) }()

	// Served from the cluster, not Prometheus: it must work before discovery and whatever the
	// rules say.
	if info.Metric == PredictedReplicasMetric && e.portraits != nil {
		metricLabel = info.Metric
		return e.predictedReplicas(namespace, metricSelector, began)
	}

	reg, err := e.currentRegistry()
	if err != nil {
		return nil, err
	}
	ref, ok := reg.External[info.Metric]
	if !ok {
		e.registry.TriggerOnDemand()
		return nil, cmprovider.NewMetricNotFoundError(namespacesResource, info.Metric)
	}
	metricLabel = info.Metric
	query, err := ref.Rule.Query.BuildExternal(naming.ExternalQuery{
		Series: ref.SeriesName, Namespace: namespace, MetricSelector: metricSelector,
	})
	if err != nil {
		return nil, badRequest(info.Metric, err)
	}
	vector, err := e.queryVector(ctx, query, began)
	if err != nil {
		return nil, fetchError(info.Metric, err)
	}
	list := &external_metrics.ExternalMetricValueList{}
	for _, sample := range vector {
		if !measured(sample.Value) {
			continue
		}
		list.Items = append(list.Items, externalValue(info.Metric, sample))
	}
	if len(list.Items) == 0 {
		return nil, cmprovider.NewMetricNotFoundForSelectorError(namespacesResource, info.Metric, namespace, metricSelector)
	}
	return list, nil
}

func externalValue(metric string, sample *model.Sample) external_metrics.ExternalMetricValue {
	metricLabels := make(map[string]string, len(sample.Metric))
	for k, v := range sample.Metric {
		metricLabels[string(k)] = string(v)
	}
	return external_metrics.ExternalMetricValue{
		MetricName:   metric,
		MetricLabels: metricLabels,
		Timestamp:    metav1.NewTime(sample.Timestamp.Time()),
		Value:        metricvalue.External(float64(sample.Value)),
	}
}
