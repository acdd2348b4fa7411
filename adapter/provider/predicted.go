package provider

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kapacitystack/kapacity/adapter/metricvalue"
	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
)

// PredictedReplicasMetric is the external metric serving the replicas HorizontalPortraits
// recommend now, so that a plain autoscaling/v2 HPA follows a prediction with
//
//	metric: {name: kapacity_predicted_replicas, selector: {matchLabels: {portrait: web-predictive}}}
//	target: {type: AverageValue, averageValue: "1"}
//
// The HPA divides the value by 1 per pod, so its desired replicas are the portrait's replicas.
const PredictedReplicasMetric = "kapacity_predicted_replicas"

// Labels of PredictedReplicasMetric, for the HPA's metric selector.
const (
	LabelPortrait     = "portrait"
	LabelPortraitType = "portrait_type"
	LabelWorkloadKind = "workload_kind"
	LabelWorkloadName = "workload_name"
	LabelNamespace    = "namespace"
)

// PortraitLister lists the HorizontalPortraits of a namespace.
type PortraitLister interface {
	ListPortraits(namespace string) ([]*v1alpha1.HorizontalPortrait, error)
}

// predictedReplicas answers PredictedReplicasMetric: one value per portrait in namespace that
// matches selector and has a valid value now (expired or empty data has none, as for the IHPA's
// Dynamic provider). No value at all is "not found", never 0 replicas.
func (e *External) predictedReplicas(namespace string, selector labels.Selector, now time.Time) (*external_metrics.ExternalMetricValueList, error) {
	if e.portraits == nil {
		return nil, cmprovider.NewMetricNotFoundError(namespacesResource, PredictedReplicasMetric)
	}
	portraits, err := e.portraits.ListPortraits(namespace)
	if err != nil {
		return nil, fetchError(PredictedReplicasMetric, err)
	}
	if selector == nil {
		selector = labels.Everything()
	}
	list := &external_metrics.ExternalMetricValueList{}
	for _, hp := range portraits {
		set := portraitLabels(hp)
		if !selector.Matches(labels.Set(set)) {
			continue
		}
		ev, err := portrait.EvaluateData(hp.Name, hp.Status.PortraitData, now)
		if err != nil || ev.Value == nil {
			continue // invalid or no data: this portrait has no prediction now
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:   PredictedReplicasMetric,
			MetricLabels: set,
			Timestamp:    metav1.NewTime(now),
			Value:        metricvalue.External(float64(ev.Value.Replicas)),
		})
	}
	if len(list.Items) == 0 {
		return nil, cmprovider.NewMetricNotFoundForSelectorError(namespacesResource, PredictedReplicasMetric, namespace, selector)
	}
	return list, nil
}

func portraitLabels(hp *v1alpha1.HorizontalPortrait) map[string]string {
	return map[string]string{
		LabelNamespace:    hp.Namespace,
		LabelPortrait:     hp.Name,
		LabelPortraitType: string(hp.Spec.PortraitType),
		LabelWorkloadKind: hp.Spec.ScaleTargetRef.Kind,
		LabelWorkloadName: hp.Spec.ScaleTargetRef.Name,
	}
}
