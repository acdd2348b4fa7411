package hportrait

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/replicacalc"
	"github.com/kapacitystack/kapacity/executor/workload"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/burst"
)

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// workloadPods lists the pods of the workload whose scale is given.
func (r *Reconciler) workloadPods(ctx context.Context, namespace string, scale *autoscalingv1.Scale) ([]*corev1.Pod, error) {
	selector, err := workload.Selector(scale)
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// podReady tells whether a pod is Ready, that is serving traffic: a Cutoff or Standby pod is not
// (its readiness gate is False).
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podCapacity returns the traffic one pod serves at 100 % and the target utilisation, in (0, 1],
// from the traffic metric's target and the optional podCapacity:
//
//   - averageValue (any source): the traffic one pod serves at the target is averageValue; the
//     capacity is podCapacity, or averageValue itself when it is unset (target 1: a burst is then
//     traffic growing past what the serving pods handle at the target).
//   - averageUtilization (Resource, ContainerResource): the capacity is the pods' mean request of
//     the resource, in the history's units (cores, bytes), or podCapacity; a target above 100 % is
//     taken as the capacity itself.
func podCapacity(m *v1alpha1.MetricSpec, override *resource.Quantity, pods []*corev1.Pod) (capacity, target float64, err error) {
	var (
		t         autoscalingv2.MetricTarget
		resName   corev1.ResourceName
		container string
		block     string
	)
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		if resName, container, t, err = ResourceSource(&m.MetricSpec); err != nil {
			return 0, 0, err
		}
		block = "resource"
		if m.Type == autoscalingv2.ContainerResourceMetricSourceType {
			block = "containerResource"
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return 0, 0, errors.New("no pods block")
		}
		t, block = m.Pods.Target, "pods"
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return 0, 0, errors.New("no object block")
		}
		t, block = m.Object.Target, "object"
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return 0, 0, errors.New("no external block")
		}
		t, block = m.External.Target, "external"
	default:
		return 0, 0, fmt.Errorf("type %q: the traffic metric must be Object, External, Pods, Resource or ContainerResource", m.Type)
	}
	var perPod, natural float64 // traffic at the target; capacity when podCapacity is unset
	switch {
	case t.AverageValue != nil:
		perPod = t.AverageValue.AsApproximateFloat64()
		natural = perPod
	case t.AverageUtilization != nil && resName != "":
		requests, err := replicacalc.Requests(pods, resName, container)
		if err != nil {
			return 0, 0, err
		}
		if len(requests) == 0 {
			return 0, 0, fmt.Errorf("the workload has no pods to read the %s request of; set spec.algorithm.burst.podCapacity", resName)
		}
		var sum float64
		for _, v := range requests {
			sum += float64(v) / 1000 // milli-units to the history's units
		}
		natural = sum / float64(len(requests))
		perPod = natural * float64(*t.AverageUtilization) / 100
		natural = max(natural, perPod)
	case resName != "":
		return 0, 0, fmt.Errorf("%s.target: Burst needs an averageValue target (the traffic one pod serves) or an averageUtilization target", block)
	default:
		return 0, 0, fmt.Errorf("%s.target: Burst needs an averageValue target (the traffic one pod serves)", block)
	}
	if !(perPod > 0) || math.IsInf(perPod, 0) {
		return 0, 0, fmt.Errorf("%s.target: the traffic one pod serves at the target is %v; it must be positive", block, perPod)
	}
	capacity = natural
	if override != nil {
		capacity = override.AsApproximateFloat64()
		if perPod > capacity {
			return 0, 0, fmt.Errorf("spec.algorithm.burst.podCapacity %s is below the target %.4g of %s.target: a pod cannot be asked to serve more than its capacity", override, perPod, block)
		}
	}
	if !(capacity > 0) || math.IsInf(capacity, 0) {
		return 0, 0, fmt.Errorf("the traffic one pod serves at 100 %% is %v; it must be positive", capacity)
	}
	return capacity, min(1, perPod/capacity), nil
}

// trafficQuery maps the traffic metric to a history query, as the predictive job does
// (recommender/cli): a Resource metric is the usage of the workload's ready pods, a Pods metric the
// external metric of that name over the workload's pods (Kapacity's convention), an Object or
// External metric itself.
func trafficQuery(ns string, ref autoscalingv2.CrossVersionObjectReference, m *v1alpha1.MetricSpec) (historyv1alpha1.Query, error) {
	q := historyv1alpha1.Query{Namespace: ns}
	gk, err := groupKind(ref)
	if err != nil {
		return q, fmt.Errorf("scaleTargetRef: %w", err)
	}
	identify := func(id autoscalingv2.MetricIdentifier, block string) error {
		if id.Name == "" {
			return fmt.Errorf("%s.metric.name must be set", block)
		}
		q.Metric = id.Name
		if id.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(id.Selector)
			if err != nil {
				return fmt.Errorf("%s.metric.selector: %w", block, err)
			}
			q.MetricSelector = sel.String()
		}
		return nil
	}
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		name, container, _, err := ResourceSource(&m.MetricSpec)
		if err != nil {
			return q, err
		}
		q.Kind, q.Workload, q.Name, q.Resource, q.ReadyPodsOnly = historyv1alpha1.WorkloadResource, gk, ref.Name, string(name), true
		if container != "" {
			q.Kind, q.Container = historyv1alpha1.WorkloadContainerResource, container
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return q, errors.New("no pods block")
		}
		q.Kind, q.Workload, q.Name = historyv1alpha1.WorkloadExternal, gk, ref.Name
		return q, identify(m.Pods.Metric, "pods")
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return q, errors.New("no object block")
		}
		ogk, err := groupKind(m.Object.DescribedObject)
		if err != nil {
			return q, fmt.Errorf("object.describedObject: %w", err)
		}
		q.Kind, q.Workload, q.Name = historyv1alpha1.Object, ogk, m.Object.DescribedObject.Name
		return q, identify(m.Object.Metric, "object")
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return q, errors.New("no external block")
		}
		q.Kind = historyv1alpha1.External
		return q, identify(m.External.Metric, "external")
	default:
		return q, fmt.Errorf("type %q cannot be read from the history API", m.Type)
	}
	return q, nil
}

func groupKind(ref autoscalingv2.CrossVersionObjectReference) (schema.GroupKind, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupKind{}, fmt.Errorf("apiVersion %q: %w", ref.APIVersion, err)
	}
	if ref.Kind == "" || ref.Name == "" {
		return schema.GroupKind{}, fmt.Errorf("kind and name must be set, got kind %q name %q", ref.Kind, ref.Name)
	}
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, nil
}

// describeQuery names what q reads, for messages.
func describeQuery(q historyv1alpha1.Query) string {
	switch {
	case q.Metric != "" && q.Name != "":
		return fmt.Sprintf("%s/%s metric %s", q.Namespace, q.Name, q.Metric)
	case q.Metric != "":
		return fmt.Sprintf("%s/%s", q.Namespace, q.Metric)
	default:
		return fmt.Sprintf("%s/%s %s", q.Namespace, q.Name, q.Resource)
	}
}

// sumSeries adds the series point by point (by timestamp) and returns the sums in time order,
// leaving out values that are not finite numbers ≥ 0: the adapter never invents a sample, and
// neither does this.
func sumSeries(series []historyv1alpha1.Series) []burst.Sample {
	sums := map[int64]float64{}
	bad := map[int64]bool{}
	for _, s := range series {
		for _, p := range s.Points {
			v := float64(p.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				bad[p.Timestamp] = true
				continue
			}
			sums[p.Timestamp] += v
		}
	}
	out := make([]burst.Sample, 0, len(sums))
	for ts, v := range sums {
		if bad[ts] || math.IsInf(v, 0) {
			continue
		}
		out = append(out, burst.Sample{Time: time.UnixMilli(ts).UTC(), Value: v})
	}
	slices.SortFunc(out, func(a, b burst.Sample) int { return a.Time.Compare(b.Time) })
	return out
}

// forecastBand returns the upper band of the traffic metric named metric, from the result of the
// Predictive portrait of the same autoscaler (the job's forecast quantile, portraitresult.Band),
// and says where it came from or why there is none. Without a band the capacity rule alone
// detects bursts.
func (r *Reconciler) forecastBand(ctx context.Context, hp *v1alpha1.HorizontalPortrait, metric string, now time.Time) ([]burst.BandPoint, string) {
	const capacityOnly = "capacity rule only"
	owner := metav1.GetControllerOf(hp)
	if owner == nil {
		return nil, capacityOnly + ": the portrait has no owning autoscaler to find a Predictive portrait by"
	}
	if metric == "" {
		return nil, capacityOnly + ": the traffic metric has no name to find its forecast band by"
	}
	var list v1alpha1.HorizontalPortraitList
	if err := r.Client.List(ctx, &list, client.InNamespace(hp.Namespace)); err != nil {
		return nil, capacityOnly + ": listing portraits: " + err.Error()
	}
	for i := range list.Items {
		p := &list.Items[i]
		if o := metav1.GetControllerOf(p); o == nil || o.UID != owner.UID || p.Spec.PortraitType != v1alpha1.PredictivePortraitType ||
			p.Spec.Algorithm.Type != v1alpha1.ExternalJobPortraitAlgorithmType {
			continue
		}
		name := portraitresult.ConfigMapName(p.Name)
		cm, _, err := r.getResult(ctx, p)
		if apierrors.IsNotFound(err) {
			return nil, capacityOnly + ": " + name + " does not exist yet"
		}
		if err != nil {
			return nil, capacityOnly + ": reading " + name + ": " + err.Error()
		}
		// A forecast whose expiry cannot be read is not trusted to be current.
		expire, err := portraitresult.DecodeExpireTime(cm.Data)
		if err != nil {
			return nil, capacityOnly + ": " + name + ": " + err.Error()
		}
		if !expire.IsZero() && !now.Before(expire) {
			return nil, capacityOnly + ": the forecast in " + name + " expired at " + expire.Format(time.RFC3339)
		}
		band, err := portraitresult.DecodeBand(cm.Data)
		if err != nil {
			return nil, capacityOnly + ": " + name + ": " + err.Error()
		}
		upper, err := band.UpperOf(metric)
		if err != nil {
			return nil, capacityOnly + ": " + name + ": " + err.Error()
		}
		out := make([]burst.BandPoint, len(upper))
		for i, p := range upper {
			out[i] = burst.BandPoint{Time: p.Time, Upper: p.Value}
		}
		return out, fmt.Sprintf("forecast band: the %g quantile of %q from %s", band.Quantile, metric, name)
	}
	return nil, capacityOnly + ": the autoscaler has no Predictive portrait"
}
