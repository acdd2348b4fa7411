package cli

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// HistorySource reads metric history; historyapi/client.Interface (HTTP or gRPC) implements it.
type HistorySource interface {
	Range(ctx context.Context, q historyv1alpha1.Query, r historyv1alpha1.Range) ([]historyv1alpha1.Series, error)
}

// historyStep is the resolution of history queries, as the reference's (60 s).
const historyStep = time.Minute

// workloadGroupKind is the group/kind of a scale target reference.
func workloadGroupKind(ref autoscalingv2.CrossVersionObjectReference) (schema.GroupKind, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupKind{}, fmt.Errorf("apiVersion %q: %w", ref.APIVersion, err)
	}
	if ref.Kind == "" || ref.Name == "" {
		return schema.GroupKind{}, fmt.Errorf("kind and name must be set, got kind %q name %q", ref.Kind, ref.Name)
	}
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, nil
}

// metricIdentifierQuery fills the metric name or selector of q (the reference uses the name, else the selector).
func metricIdentifierQuery(q *historyv1alpha1.Query, id autoscalingv2.MetricIdentifier) error {
	q.Metric = id.Name
	if id.Selector != nil {
		q.MetricSelector = formatSelector(id.Selector.MatchLabels)
	}
	if q.Metric == "" {
		return fmt.Errorf("metric.name must be set")
	}
	return nil
}

func formatSelector(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ","
		}
		s += k + "=" + labels[k]
	}
	return s
}

// metricQuery maps a metric of a workload's portrait or training target to a history query, as the
// reference's metric/query.py does (resource usage of ready pods only).
func metricQuery(ns string, ref autoscalingv2.CrossVersionObjectReference, m autoscalingv1alpha1.MetricSpec) (historyv1alpha1.Query, error) {
	gk, err := workloadGroupKind(ref)
	if err != nil {
		return historyv1alpha1.Query{}, fmt.Errorf("scaleTargetRef: %w", err)
	}
	q := historyv1alpha1.Query{Namespace: ns}
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource == nil {
			return q, fmt.Errorf("type Resource needs the resource block")
		}
		q.Kind, q.Workload, q.Name, q.Resource, q.ReadyPodsOnly = historyv1alpha1.WorkloadResource, gk, ref.Name, string(m.Resource.Name), true
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource == nil {
			return q, fmt.Errorf("type ContainerResource needs the containerResource block")
		}
		q.Kind, q.Workload, q.Name, q.Resource, q.Container, q.ReadyPodsOnly = historyv1alpha1.WorkloadContainerResource, gk, ref.Name,
			string(m.ContainerResource.Name), m.ContainerResource.Container, true
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return q, fmt.Errorf("type Pods needs the pods block")
		}
		q.Kind, q.Workload, q.Name = historyv1alpha1.WorkloadExternal, gk, ref.Name
		if err := metricIdentifierQuery(&q, m.Pods.Metric); err != nil {
			return q, fmt.Errorf("pods.%w", err)
		}
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return q, fmt.Errorf("type Object needs the object block")
		}
		ogk, err := workloadGroupKind(m.Object.DescribedObject)
		if err != nil {
			return q, fmt.Errorf("object.describedObject: %w", err)
		}
		q.Kind, q.Workload, q.Name = historyv1alpha1.Object, ogk, m.Object.DescribedObject.Name
		if err := metricIdentifierQuery(&q, m.Object.Metric); err != nil {
			return q, fmt.Errorf("object.%w", err)
		}
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return q, fmt.Errorf("type External needs the external block")
		}
		q.Kind = historyv1alpha1.External
		if err := metricIdentifierQuery(&q, m.External.Metric); err != nil {
			return q, fmt.Errorf("external.%w", err)
		}
	default:
		return q, fmt.Errorf("type %q is not one of Resource, ContainerResource, Pods, Object, External", m.Type)
	}
	return q, nil
}

// fetchPoints queries one metric over [end−length, end] and returns the first series' points (the
// reference uses series[0]); an empty answer is an error naming the query.
func fetchPoints(ctx context.Context, src HistorySource, q historyv1alpha1.Query, end time.Time, length time.Duration) ([]Point, error) {
	r := historyv1alpha1.Range{Start: end.Add(-length), End: end, Step: historyStep}
	series, err := src.Range(ctx, q, r)
	if err != nil {
		return nil, fmt.Errorf("query %s %s/%s: %w", q.Kind, q.Namespace, queryName(q), err)
	}
	if len(series) == 0 || len(series[0].Points) == 0 {
		return nil, fmt.Errorf("query %s %s/%s: no data from %s to %s", q.Kind, q.Namespace, queryName(q),
			r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339))
	}
	pts := make([]Point, 0, len(series[0].Points))
	for _, p := range series[0].Points {
		v := float64(p.Value)
		if math.IsInf(v, 0) {
			v = math.NaN()
		}
		pts = append(pts, Point{Time: time.UnixMilli(p.Timestamp).UTC(), Value: v})
	}
	return pts, nil
}

func queryName(q historyv1alpha1.Query) string {
	if q.Metric != "" {
		if q.Name != "" {
			return q.Name + " metric " + q.Metric
		}
		return q.Metric
	}
	return q.Name + " " + q.Resource
}
