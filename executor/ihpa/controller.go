// Package ihpa is the IntelligentHorizontalPodAutoscaler controller: it evaluates the portrait
// providers (package portrait), plans the change (package gray) and writes the ReplicaProfile that
// carries it out (package replicaprofile does that).
//
// The controller keeps no state in memory. Cron windows and expiries are re-evaluated at the
// instants package portrait reports (a timed requeue instead of in-process cron tasks), Dynamic
// providers' HorizontalPortraits are found by owner and name, and gray progress is in the status.
// The status is written before the ReplicaProfile it describes, and every plan starts from the
// ReplicaProfile in effect (package gray), so a manager stopped between the two writes, or a lost
// profile write, never makes a step move more than one batch.
//
// A provider that fails (a portrait it cannot read, a spec admitted while the validating webhook
// was down) is left out of the merge and named in the ProvidersHealthy condition and an event; the
// other providers still decide.
package ihpa

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	"github.com/kapacitystack/kapacity/executor/metrics"
	"github.com/kapacitystack/kapacity/executor/podstate"
	"github.com/kapacitystack/kapacity/executor/requeue"
	"github.com/kapacitystack/kapacity/executor/workload"
)

// ControllerName is the controller's name and its events' reporter.
const ControllerName = "ihpa_controller"

// Condition and event reasons, as Kapacity names them.
const (
	ReasonScalingPaused          = "ScalingPaused"
	ReasonSucceeded              = "SucceededAutoscaling"
	ReasonFailedFetchPortrait    = "FailedUpdateAndFetchPortraitValue"
	ReasonNoValidPortraitValue   = portrait.ReasonNoValidPortraitValue
	ReasonFailedGetRP            = "FailedGetReplicaProfile"
	ReasonFailedCreateRP         = "FailedCreateReplicaProfile"
	ReasonFailedUpdateRP         = "FailedUpdateReplicaProfile"
	ReasonFailedDeleteRP         = "FailedDeleteReplicaProfile"
	ReasonFailedPlan             = "FailedPlanScaling"
	ReasonReplicasMatchPortrait  = "ReplicasMatchPortrait"
	ReasonReplicasNotMatch       = "ReplicasNotMatchPortrait"
	EventCreateReplicaProfile    = "CreateReplicaProfile"
	EventUpdateReplicaProfile    = "UpdateReplicaProfile"
	EventDeleteReplicaProfile    = "DeleteReplicaProfile"
	messageSucceeded             = "the autoscaling process is functional"
	messageReplicasMatchPortrait = "online replica count matches replica count of current portrait value"
	messageReplicasNotMatch      = "online replica count does not match replica count of current portrait value"
)

// Reconciler reconciles IntelligentHorizontalPodAutoscalers.
type Reconciler struct {
	// Client reads from the cache and writes.
	Client client.Client
	// Reader reads ReplicaProfiles from the API server: a plan must start from the counts in
	// effect, not from a cache that may not have seen the last write yet.
	Reader   client.Reader
	Recorder events.EventRecorder
	// Scaler and Metrics let stability checkers measure the workload's online pods; without them
	// the checkers report FailedCheckStability and never stop a change.
	Scaler  workload.Scaler
	Metrics hportrait.MetricsClient
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Exporter publishes what the autoscaler thinks as Prometheus metrics; nil: none.
	Exporter *metrics.Exporter
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.IntelligentHorizontalPodAutoscaler{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Portrait data arrives in a HorizontalPortrait's status.
		Owns(&v1alpha1.HorizontalPortrait{}).
		Owns(&v1alpha1.ReplicaProfile{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, concurrency), RecoverPanic: ptr.To(true)}).
		Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	return requeue.OnConflict(ctx, res, err)
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, req.NamespacedName, ihpa); err != nil {
		if apierrors.IsNotFound(err) {
			r.Exporter.ForgetIHPA(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting autoscaler: %w", err)
	}
	if !ihpa.DeletionTimestamp.IsZero() {
		// Nothing to clean up: portraits and the profile go with their owner. A finalizer left
		// by Kapacity is removed so that deletion completes.
		return ctrl.Result{}, r.removeFinalizer(ctx, ihpa)
	}
	original := ihpa.Status.DeepCopy()
	defer r.Exporter.ObserveIHPA(ihpa) // the status as this reconcile leaves it
	ihpa.Spec.Default()
	now := r.now()

	if ihpa.Spec.Paused {
		return ctrl.Result{}, r.pause(ctx, ihpa, original)
	}

	// A broken provider is left out of the merge instead of failing the reconcile, so that the
	// others (a Static fallback in particular) still apply; it is retried soon.
	candidates, broken := r.evaluateProviders(ctx, ihpa, now)
	brokenMsg := r.reportProviders(ihpa, broken)
	merged := portrait.Merge(candidates, now)
	r.Exporter.ObserveProviders(ihpa, candidates)
	requeue := until(merged.NextChange, now)
	if len(broken) > 0 && (requeue == 0 || requeue > providerRetryInterval) {
		requeue = providerRetryInterval
	}
	if merged.Value == nil {
		// The workload keeps its replicas; the next window, expiry or portrait wakes us up.
		if brokenMsg != "" {
			setCondition(ihpa, v1alpha1.ScalingActive, metav1.ConditionFalse, ReasonFailedFetchPortrait, brokenMsg)
		} else {
			r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, ReasonNoValidPortraitValue, "FetchPortrait", "%s", merged.Message)
			setCondition(ihpa, v1alpha1.ScalingActive, metav1.ConditionFalse, ReasonNoValidPortraitValue, merged.Message)
		}
		log.V(1).Info("no valid portrait value", "message", merged.Message, "broken", broken, "requeueAfter", requeue)
		return ctrl.Result{RequeueAfter: requeue}, r.updateStatus(ctx, ihpa, original)
	}

	rp, err := r.getProfile(ctx, ihpa)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, ihpa, original, ReasonFailedGetRP, err)
	}
	var profile *podstate.Counts
	if rp != nil {
		profile = &podstate.Counts{Online: rp.Spec.OnlineReplicas, Cutoff: rp.Spec.CutoffReplicas, Standby: rp.Spec.StandbyReplicas}
	}
	plan, err := gray.Compute(gray.Input{Spec: &ihpa.Spec, Status: &ihpa.Status, Value: merged.Value, Profile: profile, Now: now})
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, ihpa, original, ReasonFailedPlan, err)
	}
	checkAfter, err := r.stabilize(ctx, ihpa, original, &plan, profile, now)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, ihpa, original, ReasonFailedCheckStability, err)
	}
	ihpa.Status = plan.Status
	setCondition(ihpa, v1alpha1.ScalingLimited, limitStatus(plan.LimitReason), plan.LimitReason, limitMessage(plan.LimitReason, plan.Desired))
	log.V(1).Info("plan", "value", merged.Message, "plan", plan.Reason, "target", plan.Target, "requeueAfter", plan.RequeueAfter)

	if plan.Apply {
		if plan.Progressing {
			setCondition(ihpa, v1alpha1.GrayProgressing, metav1.ConditionTrue, ReasonReplicasNotMatch, messageReplicasNotMatch+": "+plan.Reason)
		} else {
			setCondition(ihpa, v1alpha1.GrayProgressing, metav1.ConditionFalse, ReasonReplicasMatchPortrait, messageReplicasMatchPortrait)
		}
		// The progress first, then the profile it describes (see the package doc).
		if err := r.updateStatus(ctx, ihpa, original); err != nil {
			return ctrl.Result{}, err
		}
		original = ihpa.Status.DeepCopy()
		if err := r.writeProfile(ctx, ihpa, rp, plan.Target); err != nil {
			return ctrl.Result{}, r.fail(ctx, ihpa, original, reasonOf(err), err)
		}
	} else if rp != nil {
		if err := r.Client.Delete(ctx, rp); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.fail(ctx, ihpa, original, ReasonFailedDeleteRP, fmt.Errorf("failed to delete ReplicaProfile: %w", err))
		}
		r.Recorder.Eventf(ihpa, nil, corev1.EventTypeNormal, EventDeleteReplicaProfile, "Preview", "delete ReplicaProfile in Preview mode")
	}
	setCondition(ihpa, v1alpha1.ScalingActive, metav1.ConditionTrue, ReasonSucceeded, messageSucceeded)
	if err := r.updateStatus(ctx, ihpa, original); err != nil {
		return ctrl.Result{}, err
	}
	for _, d := range []time.Duration{plan.RequeueAfter, checkAfter} {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// pause pauses the ReplicaProfile too and reports ScalingPaused (without an event, as Kapacity).
func (r *Reconciler) pause(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, original *v1alpha1.IntelligentHorizontalPodAutoscalerStatus) error {
	rp, err := r.getProfile(ctx, ihpa)
	if err != nil {
		return r.fail(ctx, ihpa, original, ReasonFailedGetRP, err)
	}
	if rp != nil && !rp.Spec.Paused {
		patched := rp.DeepCopy()
		patched.Spec.Paused = true
		if err := r.Client.Patch(ctx, patched, client.MergeFrom(rp)); err != nil {
			return r.fail(ctx, ihpa, original, ReasonFailedUpdateRP, fmt.Errorf("failed to patch ReplicaProfile: %w", err))
		}
	}
	setCondition(ihpa, v1alpha1.ScalingActive, metav1.ConditionFalse, ReasonScalingPaused, "scaling is paused")
	return r.updateStatus(ctx, ihpa, original)
}

func (r *Reconciler) getProfile(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) (*v1alpha1.ReplicaProfile, error) {
	rp := &v1alpha1.ReplicaProfile{}
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(ihpa), rp); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get ReplicaProfile: %w", err)
	}
	if !metav1.IsControlledBy(rp, ihpa) {
		return nil, fmt.Errorf("ReplicaProfile %s exists and is not controlled by this autoscaler", rp.Name)
	}
	return rp, nil
}

type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

func reasonOf(err error) string {
	if re, ok := err.(*reasonError); ok {
		return re.reason
	}
	return ReasonFailedUpdateRP
}

// writeProfile creates or updates the ReplicaProfile with the target counts.
func (r *Reconciler) writeProfile(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, rp *v1alpha1.ReplicaProfile, target podstate.Counts) error {
	behavior := v1alpha1.DefaultReplicaProfileBehavior()
	if ihpa.Spec.Behavior.ReplicaProfile != nil {
		behavior = *ihpa.Spec.Behavior.ReplicaProfile.DeepCopy()
		behavior.Default()
	}
	spec := v1alpha1.ReplicaProfileSpec{
		ScaleTargetRef:          ihpa.Spec.ScaleTargetRef,
		OnlineReplicas:          target.Online,
		CutoffReplicas:          target.Cutoff,
		StandbyReplicas:         target.Standby,
		AllowedScalingDirection: gray.AllowedScalingDirection(&ihpa.Spec.Behavior),
		Behavior:                behavior,
	}
	if rp == nil {
		rp = &v1alpha1.ReplicaProfile{ObjectMeta: metav1.ObjectMeta{Name: ihpa.Name, Namespace: ihpa.Namespace}, Spec: spec}
		if err := controllerutil.SetControllerReference(ihpa, rp, r.Client.Scheme()); err != nil {
			return &reasonError{ReasonFailedCreateRP, fmt.Errorf("failed to create ReplicaProfile: %w", err)}
		}
		if err := r.Client.Create(ctx, rp); err != nil {
			return &reasonError{ReasonFailedCreateRP, fmt.Errorf("failed to create ReplicaProfile: %w", err)}
		}
		r.Recorder.Eventf(ihpa, nil, corev1.EventTypeNormal, EventCreateReplicaProfile, "CreateReplicaProfile",
			"create ReplicaProfile with onlineReplicas: %d, cutoffReplicas: %d, standbyReplicas: %d", target.Online, target.Cutoff, target.Standby)
		return nil
	}
	spec.ScaleTargetRef = rp.Spec.ScaleTargetRef // immutable
	if equality.Semantic.DeepEqual(rp.Spec, spec) {
		return nil
	}
	old := rp.Spec
	patched := rp.DeepCopy()
	patched.Spec = spec
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(rp)); err != nil {
		return &reasonError{ReasonFailedUpdateRP, fmt.Errorf("failed to patch ReplicaProfile: %w", err)}
	}
	if old.OnlineReplicas != spec.OnlineReplicas || old.CutoffReplicas != spec.CutoffReplicas || old.StandbyReplicas != spec.StandbyReplicas {
		r.Recorder.Eventf(ihpa, nil, corev1.EventTypeNormal, EventUpdateReplicaProfile, "UpdateReplicaProfile",
			"update ReplicaProfile with onlineReplicas: %d -> %d, cutoffReplicas: %d -> %d, standbyReplicas: %d -> %d",
			old.OnlineReplicas, spec.OnlineReplicas, old.CutoffReplicas, spec.CutoffReplicas, old.StandbyReplicas, spec.StandbyReplicas)
	}
	return nil
}

func (r *Reconciler) removeFinalizer(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) error {
	if !controllerutil.ContainsFinalizer(ihpa, v1alpha1.FinalizerName) {
		return nil
	}
	patched := ihpa.DeepCopy()
	controllerutil.RemoveFinalizer(patched, v1alpha1.FinalizerName)
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(ihpa)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	return nil
}

// fail reports an error as a Warning event and the ScalingActive condition, and returns it for a
// requeue with backoff.
func (r *Reconciler) fail(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, original *v1alpha1.IntelligentHorizontalPodAutoscalerStatus, reason string, err error) error {
	r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, reason, "Reconcile", "%v", err)
	setCondition(ihpa, v1alpha1.ScalingActive, metav1.ConditionFalse, reason, err.Error())
	if serr := r.updateStatus(ctx, ihpa, original); serr != nil {
		logr.FromContextOrDiscard(ctx).Error(serr, "updating status after a failure")
	}
	return fmt.Errorf("%s: %w", reason, err)
}

func (r *Reconciler) updateStatus(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, original *v1alpha1.IntelligentHorizontalPodAutoscalerStatus) error {
	if equality.Semantic.DeepEqual(*original, ihpa.Status) {
		return nil
	}
	// Update, not patch: a status read from a stale cache conflicts instead of undoing progress.
	if err := r.Client.Status().Update(ctx, ihpa); err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}

func setCondition(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, t v1alpha1.IntelligentHorizontalPodAutoscalerConditionType, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&ihpa.Status.Conditions, metav1.Condition{
		Type: string(t), Status: status, Reason: reason, Message: msg, ObservedGeneration: ihpa.Generation,
	})
}

func limitStatus(reason string) metav1.ConditionStatus {
	if reason == gray.ReasonDesiredWithinRange {
		return metav1.ConditionFalse
	}
	return metav1.ConditionTrue
}

func limitMessage(reason string, desired int32) string {
	switch reason {
	case gray.ReasonTooFewReplicas:
		return fmt.Sprintf("the desired replica count of current portrait value is less than the minimum replica count; using %d", desired)
	case gray.ReasonTooManyReplicas:
		return fmt.Sprintf("the desired replica count of current portrait value is more than the maximum replica count; using %d", desired)
	default:
		return "the desired replica count of current portrait value is within the acceptable range"
	}
}

// until is the wait from now to next, rounded up to whole milliseconds; zero when next is zero.
func until(next, now time.Time) time.Duration {
	if next.IsZero() {
		return 0
	}
	return max(time.Millisecond, next.Sub(now).Truncate(time.Millisecond)+time.Millisecond)
}

// portraitName is the name of the HorizontalPortrait of a Dynamic provider, as Kapacity names it:
// "<autoscaler>-<portrait type in lower case>".
func portraitName(ihpaName string, p *v1alpha1.HorizontalPortraitProvider) string {
	if p.Dynamic == nil {
		return ""
	}
	return ihpaName + "-" + strings.ToLower(string(p.Dynamic.PortraitType))
}
