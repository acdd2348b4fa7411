package ihpa

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/executor/podstate"
	"github.com/kapacitystack/kapacity/executor/stability"
	"github.com/kapacitystack/kapacity/executor/workload"
)

// ConditionStable reports the stability checkers' verdict on the change in progress (an addition
// to Kapacity, which never implemented the checkers). While it is False, its lastTransitionTime is
// when the anomaly was last seen, and the cool-down runs from there: the state lives in the status,
// so a restarted manager keeps stabilizing.
const ConditionStable v1alpha1.IntelligentHorizontalPodAutoscalerConditionType = "Stable"

// Reasons and events of stability checks.
const (
	ReasonNoAnomaly            = "NoAnomaly"
	ReasonAnomalyPaused        = "AnomalyPaused"
	ReasonAnomalyRolledBack    = "AnomalyRolledBack"
	ReasonFailedCheckStability = "FailedCheckStability"
	EventStabilityRestored     = "StabilityRestored"
)

// stabilityCheckPeriod is how often the checkers are evaluated while a gray change or a
// stabilization is in progress.
const stabilityCheckPeriod = 5 * time.Second

// checkersFor lists the checkers that watch the change the plan describes: the autoscaler's, and
// those of the gray strategy of the change's direction.
func checkersFor(spec *v1alpha1.IntelligentHorizontalPodAutoscalerSpec, plan *gray.Plan) []v1alpha1.StabilityChecker {
	out := append([]v1alpha1.StabilityChecker(nil), spec.StabilityCheckers...)
	if prev := plan.Status.PreviousPortraitValue; prev != nil {
		var s *v1alpha1.GrayStrategy
		switch {
		case plan.Desired < prev.Replicas:
			s = spec.Behavior.ScaleDown.GrayStrategy
		case plan.Desired > prev.Replicas:
			s = spec.Behavior.ScaleUp.GrayStrategy
		}
		if s != nil {
			out = append(out, s.StabilityCheckers...)
		}
	}
	return out
}

func actionOfReason(reason string) v1alpha1.StabilizationActionType {
	if reason == ReasonAnomalyRolledBack {
		return v1alpha1.StabilizationActionRollback
	}
	return v1alpha1.StabilizationActionPause
}

func reasonOfAction(a v1alpha1.StabilizationActionType) string {
	if a == v1alpha1.StabilizationActionRollback {
		return ReasonAnomalyRolledBack
	}
	return ReasonAnomalyPaused
}

// coolDownOf is the longest cool-down of the checkers with that action.
func coolDownOf(checkers []v1alpha1.StabilityChecker, a v1alpha1.StabilizationActionType) time.Duration {
	var d time.Duration
	for _, c := range checkers {
		if c.StabilizationAction == a {
			d = max(d, time.Duration(c.CoolDownSeconds)*time.Second)
		}
	}
	return d
}

// stabilize evaluates the stability checkers while a gray change (or a stabilization) is in
// progress and, on an anomaly, applies podstate.Stabilize to the plan: Pause holds the
// ReplicaProfile's counts and the gray progress; Rollback returns every pod kept in a gray state to
// Online and restarts the gray change from its first batch once the cool-down has passed. Neither
// removes nor adds a pod. It returns when to check again (zero: no check is due).
//
// original is the status at the start of the reconcile; profile is the ReplicaProfile's counts in
// effect (nil without one, when nothing can be in progress).
func (r *Reconciler) stabilize(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, original *v1alpha1.IntelligentHorizontalPodAutoscalerStatus, plan *gray.Plan, profile *podstate.Counts, now time.Time) (time.Duration, error) {
	log := logr.FromContextOrDiscard(ctx)
	checkers := checkersFor(&ihpa.Spec, plan)
	cond := meta.FindStatusCondition(original.Conditions, string(ConditionStable))
	var anomaly *podstate.Anomaly
	if cond != nil && cond.Status == metav1.ConditionFalse {
		a := actionOfReason(cond.Reason)
		anomaly = &podstate.Anomaly{Action: a, DetectedAt: cond.LastTransitionTime.Time, CoolDown: coolDownOf(checkers, a)}
	}
	if len(checkers) == 0 || profile == nil || !plan.Apply {
		if cond != nil {
			meta.RemoveStatusCondition(&plan.Status.Conditions, string(ConditionStable))
		}
		return 0, nil
	}
	inGray := original.Gray != nil || plan.Status.Gray != nil
	if !inGray && anomaly == nil {
		return 0, nil
	}

	fresh := false
	if inGray {
		res, err := r.checkStability(ctx, ihpa, checkers)
		if err != nil {
			res.Errors = append(res.Errors, err)
		}
		if len(res.Errors) > 0 {
			err := errors.Join(res.Errors...)
			// A checker that cannot see must not block the change forever: report and go on.
			log.Info("stability checks incomplete", "error", err.Error())
			r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, ReasonFailedCheckStability, "CheckStability", "failed to check stability: %v", err)
		}
		if v := res.Anomaly(); v != nil {
			fresh = true
			anomaly = &podstate.Anomaly{Action: v.Action, DetectedAt: now, CoolDown: v.CoolDown}
			var msgs []string
			for _, v := range res.Violations {
				msgs = append(msgs, v.Message)
			}
			reason := reasonOfAction(v.Action)
			msg := fmt.Sprintf("stability anomaly: %s; action %s for %s", strings.Join(msgs, "; "), v.Action, v.CoolDown)
			r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, reason, "CheckStability", "%s", msg)
			setStable(&plan.Status, ihpa.Generation, metav1.ConditionFalse, reason, msg, now)
			log.Info("stability anomaly", "action", v.Action, "coolDown", v.CoolDown, "violations", msgs)
		}
	}
	if anomaly == nil {
		setStable(&plan.Status, ihpa.Generation, metav1.ConditionTrue, ReasonNoAnomaly, "the stability checkers see no anomaly", time.Time{})
		return stabilityCheckPeriod, nil
	}
	desired := plan.Target
	counts, resumeAfter, err := podstate.Stabilize(desired, *profile, anomaly, now)
	if err != nil {
		return 0, err
	}
	if resumeAfter == 0 {
		msg := fmt.Sprintf("no anomaly for %s: the change resumes", anomaly.CoolDown)
		r.Recorder.Eventf(ihpa, nil, corev1.EventTypeNormal, EventStabilityRestored, "CheckStability", "%s", msg)
		setStable(&plan.Status, ihpa.Generation, metav1.ConditionTrue, ReasonNoAnomaly, msg, time.Time{})
		return stabilityCheckPeriod, nil
	}
	if !fresh {
		// Keep the condition as it was (the time it was last seen in particular).
		setStable(&plan.Status, ihpa.Generation, metav1.ConditionFalse, cond.Reason, cond.Message, cond.LastTransitionTime.Time)
	}
	plan.Target = counts
	plan.Status.OnlineReplicas, plan.Status.CutoffReplicas, plan.Status.StandbyReplicas = counts.Online, counts.Cutoff, counts.Standby
	plan.Progressing = counts.Online != plan.Desired
	// The gray progress is held; a new portrait value meanwhile starts its own change.
	if !plan.ValueChanged {
		plan.Status.Gray = original.Gray.DeepCopy()
	}
	if anomaly.Action == v1alpha1.StabilizationActionRollback && plan.Status.Gray != nil {
		// Every batch was undone: after the cool-down the change starts over.
		plan.Status.Gray = &v1alpha1.GrayStatus{GrayPercent: 0, LastUpdateTime: metav1.NewTime(now.Truncate(time.Second))}
	}
	plan.Reason = fmt.Sprintf("stabilizing (%s) for %s: %d online, %d cutoff, %d standby", anomaly.Action, resumeAfter.Round(time.Second), counts.Online, counts.Cutoff, counts.Standby)
	return min(resumeAfter, stabilityCheckPeriod), nil
}

// checkStability evaluates the checkers over the workload's Online pods.
func (r *Reconciler) checkStability(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, checkers []v1alpha1.StabilityChecker) (stability.Result, error) {
	if r.Scaler == nil || r.Metrics == nil {
		return stability.Result{}, errors.New("this manager has no metrics client for stability checkers")
	}
	scale, _, err := r.Scaler.GetScale(ctx, ihpa.Namespace, ihpa.Spec.ScaleTargetRef)
	if err != nil {
		return stability.Result{}, fmt.Errorf("getting the target's scale: %w", err)
	}
	selector, err := workload.Selector(scale)
	if err != nil {
		return stability.Result{}, err
	}
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(ihpa.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return stability.Result{}, fmt.Errorf("listing pods: %w", err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	online := podstate.Classify(pods).Online
	return stability.Check(ctx, r.Metrics, checkers, stability.Target{Namespace: ihpa.Namespace, Selector: selector, Online: online}), nil
}

// setStable sets the Stable condition; a non-zero at sets its lastTransitionTime.
func setStable(status *v1alpha1.IntelligentHorizontalPodAutoscalerStatus, generation int64, s metav1.ConditionStatus, reason, msg string, at time.Time) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: string(ConditionStable), Status: s, Reason: reason, Message: msg, ObservedGeneration: generation,
	})
	if !at.IsZero() {
		meta.FindStatusCondition(status.Conditions, string(ConditionStable)).LastTransitionTime = metav1.NewTime(at.Truncate(time.Second))
	}
}
