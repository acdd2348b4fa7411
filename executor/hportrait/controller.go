// Package hportrait is the HorizontalPortrait controller. It generates Reactive portraits with the
// HorizontalPodAutoscaler's algorithm (package replicacalc) from the metrics APIs, and Burst
// portraits with package recommender/burst from the history API (burst.go), and writes them to the
// portrait's status, where the owning IntelligentHorizontalPodAutoscaler reads them.
//
// Portraits with an externalGeneratorName belong to another controller and are ignored.
// ExternalJob portraits (Kapacity's predictive algorithm) get a CronJob in their own namespace,
// owned by the portrait and built from their template once package algorithmjob has accepted it
// (ServiceAccount kapacity-algorithm-job, Pod Security "restricted"); their status is read from
// the ConfigMap "<name>-result" the job writes beside it. A CronJob left in the single job
// namespace of older versions (marked by their finalizer) is removed on the first reconcile.
package hportrait

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/metrics"
	"github.com/kapacitystack/kapacity/executor/replicacalc"
	"github.com/kapacitystack/kapacity/executor/workload"
)

// ControllerName is the controller's name and its events' reporter.
const ControllerName = "horizontal_portrait_controller"

// Condition reasons.
const (
	ReasonSucceeded          = "SucceededGeneratePortrait"
	ReasonFailedGetGenerator = "FailedGetPortraitGenerator"
	ReasonFailedGenerate     = "FailedGeneratePortrait"
)

// Reconciler reconciles HorizontalPortraits.
type Reconciler struct {
	Client   client.Client
	Scaler   workload.Scaler
	Metrics  MetricsClient
	Recorder events.EventRecorder
	// Reader reads from the API server: result ConfigMaps without portraitresult.LabelKey, which the
	// cache does not hold. Nil: only labelled results are read.
	Reader client.Reader
	// Access creates the ServiceAccount and RoleBinding ExternalJob portraits' jobs run with; nil
	// leaves them to the cluster's administrator.
	Access *algorithmjob.Access
	// Jobs are the defaults of ExternalJob portraits' CronJobs.
	Jobs JobOptions
	// History reads the recent traffic of Burst portraits (burst.go); nil fails them.
	History TrafficHistory
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Exporter publishes portraits' values and generation outcomes as Prometheus metrics; nil: none.
	Exporter *metrics.Exporter
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	internal := predicate.NewPredicateFuncs(func(o client.Object) bool {
		hp, ok := o.(*v1alpha1.HorizontalPortrait)
		return ok && hp.Spec.ExternalGeneratorName == ""
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.HorizontalPortrait{}, builder.WithPredicates(predicate.GenerationChangedPredicate{}, internal)).
		// ExternalJob results: "<portrait>-result" in the portrait's namespace.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(resultOwner), builder.WithPredicates(resultPredicate())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, concurrency), RecoverPanic: ptr.To(true)}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	hp := &v1alpha1.HorizontalPortrait{}
	if err := r.Client.Get(ctx, req.NamespacedName, hp); err != nil {
		if apierrors.IsNotFound(err) {
			r.Exporter.ForgetPortrait(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting HorizontalPortrait: %w", err)
	}
	if !hp.DeletionTimestamp.IsZero() {
		// The CronJob goes with the portrait (owner reference); one of an older version does not.
		return ctrl.Result{}, r.removeLegacyJob(ctx, hp)
	}
	if hp.Spec.ExternalGeneratorName != "" {
		return ctrl.Result{}, nil
	}
	original := hp.Status.DeepCopy()
	defer r.Exporter.ObservePortrait(hp) // the status as this reconcile leaves it
	hp.Spec.PortraitSpec.Default()
	if hp.Spec.Algorithm.Type == v1alpha1.ExternalJobPortraitAlgorithmType {
		// Event-driven: the result ConfigMap's changes enqueue the portrait.
		return r.externalJob(ctx, hp, original)
	}
	// A portrait that left ExternalJob has its job removed.
	if err := r.removeLegacyJob(ctx, hp); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.deleteCronJob(ctx, hp); err != nil {
		return ctrl.Result{}, err
	}
	if hp.Spec.PortraitType == v1alpha1.BurstPortraitType && hp.Spec.Algorithm.Type == v1alpha1.BurstPortraitAlgorithmType {
		return r.burstPortrait(ctx, hp, original)
	}
	if hp.Spec.PortraitType != v1alpha1.ReactivePortraitType || hp.Spec.Algorithm.Type != v1alpha1.KubeHPAPortraitAlgorithmType {
		err := fmt.Errorf("no in-process generator for portrait type %q with algorithm %q: only %s with %s and %s with %s are supported",
			hp.Spec.PortraitType, hp.Spec.Algorithm.Type, v1alpha1.ReactivePortraitType, v1alpha1.KubeHPAPortraitAlgorithmType,
			v1alpha1.BurstPortraitType, v1alpha1.BurstPortraitAlgorithmType)
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedGetGenerator, "Generate", "failed to get portrait generator: %v", err)
		setCondition(hp, metav1.ConditionFalse, ReasonFailedGetGenerator, "failed to get portrait generator: "+err.Error())
		// Nothing to retry until the spec changes.
		return ctrl.Result{}, r.updateStatus(ctx, hp, original)
	}
	algo := v1alpha1.DefaultKubeHPAPortraitAlgorithm()
	if hp.Spec.Algorithm.KubeHPA != nil {
		algo = *hp.Spec.Algorithm.KubeHPA
	}
	replicas, err := r.generate(ctx, hp, algo)
	if err != nil {
		msg := "failed to generate portrait: " + err.Error()
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedGenerate, "Generate", "%s", msg)
		setCondition(hp, metav1.ConditionFalse, ReasonFailedGenerate, msg)
		if serr := r.updateStatus(ctx, hp, original); serr != nil {
			log.Error(serr, "updating status after a failure")
		}
		// Metrics come and go: try again at the next sync rather than with a fast backoff.
		return ctrl.Result{RequeueAfter: algo.SyncPeriod.Duration}, nil
	}
	hp.Status.PortraitData = &v1alpha1.HorizontalPortraitData{
		Type:   v1alpha1.StaticHorizontalPortraitDataType,
		Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: replicas},
	}
	setCondition(hp, metav1.ConditionTrue, ReasonSucceeded, "portrait has been successfully generated")
	log.V(1).Info("generated portrait", "replicas", replicas)
	return ctrl.Result{RequeueAfter: algo.SyncPeriod.Duration}, r.updateStatus(ctx, hp, original)
}

// generate is Kapacity's KubeHPA generator: the largest proposal over the metrics, at least 1,
// with no min/max (the autoscaler applies them). Invalid metrics are ignored unless all are, or
// the valid ones propose a scale-down (as the HPA: never scale down on partial information).
func (r *Reconciler) generate(ctx context.Context, hp *v1alpha1.HorizontalPortrait, algo v1alpha1.KubeHPAPortraitAlgorithm) (int32, error) {
	tolerance, err := strconv.ParseFloat(algo.Tolerance, 64)
	if err != nil || tolerance < 0 {
		return 0, fmt.Errorf("invalid tolerance %q", algo.Tolerance)
	}
	if len(hp.Spec.Metrics) == 0 {
		return 0, errors.New("no metrics")
	}
	scale, _, err := r.Scaler.GetScale(ctx, hp.Namespace, hp.Spec.ScaleTargetRef)
	if err != nil {
		return 0, err
	}
	selector, err := workload.Selector(scale)
	if err != nil {
		return 0, err
	}
	var podList corev1.PodList
	if err := r.Client.List(ctx, &podList, client.InNamespace(hp.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return 0, fmt.Errorf("listing pods: %w", err)
	}
	pods := make([]*corev1.Pod, len(podList.Items))
	for i := range podList.Items {
		pods[i] = &podList.Items[i]
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	in := proposalInput{
		specReplicas: scale.Spec.Replicas, statusReplicas: scale.Status.Replicas,
		namespace: hp.Namespace, selector: selector, pods: pods,
		params: replicacalc.Params{Tolerance: tolerance, CPUInitializationPeriod: algo.CPUInitializationPeriod.Duration,
			InitialReadinessDelay: algo.InitialReadinessDelay.Duration, Now: now},
	}
	replicas := int32(1)
	var invalid []error
	for i := range hp.Spec.Metrics {
		n, err := r.propose(ctx, &hp.Spec.Metrics[i].MetricSpec, in)
		if err != nil {
			invalid = append(invalid, fmt.Errorf("metric %d (%s): %w", i, hp.Spec.Metrics[i].Type, err))
			continue
		}
		replicas = max(replicas, n)
	}
	if len(invalid) == len(hp.Spec.Metrics) || (len(invalid) > 0 && replicas < scale.Spec.Replicas) {
		return 0, fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", len(invalid), len(hp.Spec.Metrics), invalid[0])
	}
	return replicas, nil
}

type proposalInput struct {
	specReplicas, statusReplicas int32
	namespace                    string
	selector                     labels.Selector
	pods                         []*corev1.Pod
	params                       replicacalc.Params
}

// ResourceSource returns the resource, container ("" for a Resource metric) and target of a
// Resource or ContainerResource metric.
func ResourceSource(m *autoscalingv2.MetricSpec) (corev1.ResourceName, string, autoscalingv2.MetricTarget, error) {
	if m.Type == autoscalingv2.ResourceMetricSourceType {
		if m.Resource == nil {
			return "", "", autoscalingv2.MetricTarget{}, errors.New("no resource block")
		}
		return m.Resource.Name, "", m.Resource.Target, nil
	}
	if m.ContainerResource == nil {
		return "", "", autoscalingv2.MetricTarget{}, errors.New("no containerResource block")
	}
	return m.ContainerResource.Name, m.ContainerResource.Container, m.ContainerResource.Target, nil
}

// propose computes one metric's proposal, as the HPA does for each metric source and target type.
func (r *Reconciler) propose(ctx context.Context, m *autoscalingv2.MetricSpec, in proposalInput) (int32, error) {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		name, container, target, err := ResourceSource(m)
		if err != nil {
			return 0, err
		}
		samples, err := r.Metrics.PodResource(ctx, in.namespace, in.selector, name, container)
		if err != nil {
			return 0, err
		}
		isCPU := name == corev1.ResourceCPU
		switch {
		case target.AverageValue != nil:
			n, _, err := replicacalc.AverageValue(in.specReplicas, target.AverageValue.MilliValue(), isCPU, in.pods, samples, in.params)
			return n, err
		case target.AverageUtilization != nil:
			requests, err := replicacalc.Requests(in.pods, name, container)
			if err != nil {
				return 0, err
			}
			n, _, err := replicacalc.ResourceUtilization(in.specReplicas, *target.AverageUtilization, isCPU, in.pods, samples, requests, in.params)
			return n, err
		default:
			return 0, errors.New("invalid resource metric source: neither a utilization target nor a value target was set")
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil || m.Pods.Target.AverageValue == nil {
			return 0, errors.New("pods metric needs an averageValue target")
		}
		sel, err := metricSelector(m.Pods.Metric.Selector)
		if err != nil {
			return 0, err
		}
		samples, err := r.Metrics.PodMetric(ctx, in.namespace, in.selector, m.Pods.Metric.Name, sel)
		if err != nil {
			return 0, err
		}
		n, _, err := replicacalc.AverageValue(in.specReplicas, m.Pods.Target.AverageValue.MilliValue(), false, in.pods, samples, in.params)
		return n, err
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return 0, errors.New("no object block")
		}
		sel, err := metricSelector(m.Object.Metric.Selector)
		if err != nil {
			return 0, err
		}
		ref := autoscalingv2.CrossVersionObjectReference(m.Object.DescribedObject)
		usage, err := r.Metrics.ObjectMetric(ctx, in.namespace, ref, m.Object.Metric.Name, sel)
		if err != nil {
			return 0, err
		}
		switch {
		case m.Object.Target.Value != nil:
			return replicacalc.ObjectValue(in.specReplicas, usage, m.Object.Target.Value.MilliValue(), in.pods, in.params)
		case m.Object.Target.AverageValue != nil:
			return replicacalc.PerPodValue(in.statusReplicas, usage, m.Object.Target.AverageValue.MilliValue(), in.params)
		default:
			return 0, errors.New("invalid object metric source: neither a value target nor an average value target was set")
		}
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return 0, errors.New("no external block")
		}
		sel, err := metricSelector(m.External.Metric.Selector)
		if err != nil {
			return 0, err
		}
		usage, err := r.Metrics.ExternalMetric(ctx, in.namespace, m.External.Metric.Name, sel)
		if err != nil {
			return 0, err
		}
		switch {
		case m.External.Target.AverageValue != nil:
			return replicacalc.PerPodValue(in.statusReplicas, usage, m.External.Target.AverageValue.MilliValue(), in.params)
		case m.External.Target.Value != nil:
			return replicacalc.ObjectValue(in.specReplicas, usage, m.External.Target.Value.MilliValue(), in.pods, in.params)
		default:
			return 0, errors.New("invalid external metric source: neither a value target nor an average value target was set")
		}
	default:
		return 0, fmt.Errorf("unknown metric source type %q", m.Type)
	}
}

func metricSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("invalid metric selector: %w", err)
	}
	return sel, nil
}

func setCondition(hp *v1alpha1.HorizontalPortrait, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&hp.Status.Conditions, metav1.Condition{
		Type: string(v1alpha1.PortraitGenerated), Status: status, Reason: reason, Message: msg, ObservedGeneration: hp.Generation,
	})
}

func (r *Reconciler) updateStatus(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus) error {
	if equality.Semantic.DeepEqual(*original, hp.Status) {
		return nil
	}
	if err := r.Client.Status().Update(ctx, hp); err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}

// resultPredicate passes result ConfigMaps when created, or when their data changes.
func resultPredicate() predicate.Funcs {
	isResult := func(o client.Object) bool { _, ok := portraitresult.PortraitName(o.GetName()); return ok }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return isResult(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.ConfigMap)
			n, ok2 := e.ObjectNew.(*corev1.ConfigMap)
			return ok1 && ok2 && isResult(n) && !equality.Semantic.DeepEqual(o.Data, n.Data)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
