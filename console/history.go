package console

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// PodHistory is what the history API measured of a workload's pods at each step: how many pods
// had a CPU sample (the pods that existed, in any state) and their CPU usage summed, in cores.
type PodHistory struct {
	Times []time.Time
	Pods  []float64 // NaN where nothing was measured
	CPU   []float64 // cores; NaN where nothing was measured
}

// podHistory asks the history API for the CPU usage of the pods matching selector over
// [from, to] and counts them per step.
func (c *Cluster) podHistory(ctx context.Context, ns string, selector labels.Selector, from, to time.Time, step time.Duration) (*PodHistory, error) {
	if c.History == nil {
		return nil, fmt.Errorf("the console runs without the history API (--history=false)")
	}
	q := historyv1alpha1.Query{Kind: historyv1alpha1.PodResource, Namespace: ns, Selector: selector.String(), Resource: "cpu"}
	series, err := c.History.Range(ctx, q, historyv1alpha1.Range{Start: from, End: to, Step: step})
	if err != nil {
		return nil, fmt.Errorf("history API, CPU of the pods matching %q: %w", selector.String(), err)
	}
	n := int(to.Sub(from)/step) + 1
	h := &PodHistory{Times: make([]time.Time, n), Pods: make([]float64, n), CPU: make([]float64, n)}
	for i := range n {
		h.Times[i] = from.Add(time.Duration(i) * step)
	}
	for _, s := range series {
		for _, p := range s.Points {
			v := float64(p.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			i := int(time.UnixMilli(p.Timestamp).Sub(from).Round(step) / step)
			if i < 0 || i >= n {
				continue
			}
			h.Pods[i]++
			h.CPU[i] += v
		}
	}
	for i := range n {
		if h.Pods[i] == 0 {
			h.Pods[i], h.CPU[i] = math.NaN(), math.NaN()
		}
	}
	return h, nil
}

// series returns the pod counts as a chart series.
func (h *PodHistory) series(name, class string) Series {
	s := Series{Name: name, Class: class, Steps: true}
	for i, t := range h.Times {
		s.Points = append(s.Points, Point{T: t, V: h.Pods[i]})
	}
	return s
}

// trafficQuery is the history query of a predictive portrait's traffic metric (spec.metrics[2],
// the recommender's convention: the resource, the ready replicas, then the traffic).
func trafficQuery(hp *v1alpha1.HorizontalPortrait) (historyv1alpha1.Query, string, error) {
	if len(hp.Spec.Metrics) < 3 {
		return historyv1alpha1.Query{}, "", fmt.Errorf("HorizontalPortrait %s has %d metrics; the traffic metric is the third (spec.metrics[2])", hp.Name, len(hp.Spec.Metrics))
	}
	m := hp.Spec.Metrics[2]
	ref := hp.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return historyv1alpha1.Query{}, "", fmt.Errorf("scaleTargetRef.apiVersion %q: %w", ref.APIVersion, err)
	}
	q := historyv1alpha1.Query{Namespace: hp.Namespace}
	selector := func(id autoscalingv2.MetricIdentifier) string {
		if id.Selector == nil {
			return ""
		}
		keys := make([]string, 0, len(id.Selector.MatchLabels))
		for k := range id.Selector.MatchLabels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s := ""
		for i, k := range keys {
			if i > 0 {
				s += ","
			}
			s += k + "=" + id.Selector.MatchLabels[k]
		}
		return s
	}
	switch {
	case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil:
		q.Kind, q.Workload, q.Name = historyv1alpha1.WorkloadExternal, schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, ref.Name
		q.Metric, q.MetricSelector = m.Pods.Metric.Name, selector(m.Pods.Metric)
	case m.Type == autoscalingv2.ObjectMetricSourceType && m.Object != nil:
		ogv, err := schema.ParseGroupVersion(m.Object.DescribedObject.APIVersion)
		if err != nil {
			return q, "", fmt.Errorf("spec.metrics[2].object.describedObject.apiVersion: %w", err)
		}
		q.Kind, q.Workload, q.Name = historyv1alpha1.Object, schema.GroupKind{Group: ogv.Group, Kind: m.Object.DescribedObject.Kind}, m.Object.DescribedObject.Name
		q.Metric, q.MetricSelector = m.Object.Metric.Name, selector(m.Object.Metric)
	case m.Type == autoscalingv2.ExternalMetricSourceType && m.External != nil:
		q.Kind = historyv1alpha1.External
		q.Metric, q.MetricSelector = m.External.Metric.Name, selector(m.External.Metric)
	default:
		return q, "", fmt.Errorf("spec.metrics[2] of HorizontalPortrait %s is of type %q: the console charts Pods, Object and External traffic metrics", hp.Name, m.Type)
	}
	return q, q.Metric, nil
}

// traffic reads the first series of a predictive portrait's traffic metric over [from, to].
func (c *Cluster) traffic(ctx context.Context, hp *v1alpha1.HorizontalPortrait, from, to time.Time, step time.Duration) (*Traffic, error) {
	if c.History == nil {
		return nil, fmt.Errorf("the console runs without the history API (--history=false)")
	}
	q, metric, err := trafficQuery(hp)
	if err != nil {
		return nil, err
	}
	series, err := c.History.Range(ctx, q, historyv1alpha1.Range{Start: from, End: to, Step: step})
	if err != nil {
		return nil, fmt.Errorf("history API, traffic metric %s: %w", metric, err)
	}
	t := &Traffic{Metric: metric, From: from, To: to}
	if len(series) == 0 {
		return t, nil
	}
	s := Series{Name: metric + " (measured)", Class: "actual"}
	for _, p := range series[0].Points {
		s.Points = append(s.Points, Point{T: time.UnixMilli(p.Timestamp), V: float64(p.Value)})
	}
	t.Series = append(t.Series, s)
	return t, nil
}
