package replicaprofile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podstate"
	"github.com/kapacitystack/kapacity/executor/standby"
)

// Event reasons about resources and readiness gates.
const (
	EventStandbyReleased       = "StandbyResourcesReleased"
	EventStandbyKept           = "StandbyResourcesKept"
	EventResourcesRestored     = "StandbyResourcesRestored"
	ReasonFailedRestore        = "FailedRestoreResources"
	ReasonWithoutReadinessGate = "PodsWithoutReadinessGate"
)

// retryInterval is how soon a reconcile runs again after a resize failed for a reason that may
// pass (a timeout, an overloaded API server): pod events alone might never come.
const retryInterval = 15 * time.Second

// maxKeptReason bounds the reason stored in standby.KeptAnnotation (API errors can be long).
const maxKeptReason = 512

// report collects, over one reconcile, what happened to pods' resources and gates, so that each
// kind of outcome makes one event naming all its pods instead of one event per pod.
type report struct {
	released    []string
	kept        map[string][]string // reason -> pods
	restored    []string
	notRestored []string
	restoreErr  error
	ungated     []string
	// retry asks for a timed requeue: some resize failed in a way that may pass.
	retry bool
}

func (rep *report) keep(reason string, pod *corev1.Pod) {
	if rep.kept == nil {
		rep.kept = map[string][]string{}
	}
	rep.kept[reason] = append(rep.kept[reason], pod.Name)
}

// emit records the report's events on the profile, naming pods in order.
func (r *Reconciler) emit(rp *v1alpha1.ReplicaProfile, rep *report) {
	for _, pods := range [][]string{rep.released, rep.restored, rep.notRestored} {
		slices.Sort(pods)
	}
	for _, pods := range rep.kept {
		slices.Sort(pods)
	}
	rep.ungated = slices.Compact(slices.Sorted(slices.Values(rep.ungated)))
	if len(rep.ungated) > 0 {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, ReasonWithoutReadinessGate, "SetPodState",
			"pods %v lack the %s readiness gate (not labelled %s=true, or created while the pod webhook was unavailable), so their traffic cannot be cut off: they stay Online; recreate them to let them take part in gray changes",
			rep.ungated, v1alpha1.PodOnlineConditionType, v1alpha1.InjectReadinessGateLabelKey)
	}
	if len(rep.released) > 0 && r.Standby != nil {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeNormal, EventStandbyReleased, "Resize",
			"lowered the CPU requests of standby pods %v to %s", rep.released, r.Standby.String())
	}
	for _, reason := range slices.Sorted(maps.Keys(rep.kept)) {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, EventStandbyKept, "Resize",
			"standby pods %v keep their resources, their traffic is only cut off: %s", rep.kept[reason], reason)
	}
	if len(rep.restored) > 0 {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeNormal, EventResourcesRestored, "Resize",
			"restored the CPU requests of pods %v", rep.restored)
	}
	if len(rep.notRestored) > 0 {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, ReasonFailedRestore, "Resize",
			"could not restore the CPU requests of pods %v: %v", rep.notRestored, rep.restoreErr)
	}
}

// converge makes every running pod's traffic and resources agree with its state label before
// anything is decided, so that the counts are honest and a change interrupted half-way (a manager
// stopped between two writes) is completed or undone. Nothing is written when they agree.
//   - A pod labelled Cutoff or Standby without the readiness gate was never cut off: it gets its
//     resources back and is labelled Online again (and reported).
//   - A gated pod labelled Cutoff or Standby must serve no traffic. One labelled Online whose
//     condition is False was being taken out of service (traffic is always switched before the
//     label): it is left so until the plan is known (halfCutPods, resumeTraffic), so that a change
//     the plan makes again completes without the pod serving in between.
//   - A Standby pod has its CPU requests lowered (or a recorded reason to keep them); any other
//     pod has the requests remembered in its annotation given back.
func (r *Reconciler) converge(ctx context.Context, pods []*corev1.Pod, rep *report) error {
	for _, pod := range pods {
		if !podstate.IsRunning(pod) {
			continue
		}
		state, gated := podstate.StateOf(pod), podstate.HasOnlineGate(pod)
		switch {
		case state != v1alpha1.PodStateOnline && !gated:
			r.restoreResources(ctx, pod, rep)
			if err := setState(ctx, r.Client, pod, v1alpha1.PodStateOnline); err != nil {
				return err
			}
			rep.ungated = append(rep.ungated, pod.Name)
		case state != v1alpha1.PodStateOnline:
			if cond := onlineCondition(pod); cond == nil || cond.Status != corev1.ConditionFalse {
				if err := setTraffic(ctx, r.Client, pod, false); err != nil {
					return err
				}
			}
			if state == v1alpha1.PodStateStandby {
				if err := r.releaseResources(ctx, pod, rep); err != nil {
					return err
				}
			} else {
				r.restoreResources(ctx, pod, rep)
			}
		default:
			// Resources first: a pod serves again with its CPU back.
			r.restoreResources(ctx, pod, rep)
		}
	}
	return nil
}

// halfCutPods lists the running gated pods labelled Online whose traffic is off: a manager stopped
// between cutting their traffic and setting their label.
func halfCutPods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, pod := range pods {
		if !podstate.IsRunning(pod) || podstate.StateOf(pod) != v1alpha1.PodStateOnline || !podstate.HasOnlineGate(pod) {
			continue
		}
		if cond := onlineCondition(pod); cond != nil && cond.Status == corev1.ConditionFalse {
			out = append(out, pod)
		}
	}
	return out
}

// resumeTraffic gives the half-cut pods their traffic back, except those the plan applied has just
// taken out of service (t.Cutoff, t.Standby): those changes are now complete. Undoing a half-done
// cut-off before the plan is known would put the pod back in service only for the plan to cut it
// again, one pod more Online than planned in between.
func (r *Reconciler) resumeTraffic(ctx context.Context, halfCut []*corev1.Pod, t podstate.Transition) error {
	taken := map[string]bool{}
	for _, p := range append(slices.Clone(t.Cutoff), t.Standby...) {
		taken[p.Name] = true
	}
	for _, pod := range halfCut {
		if taken[pod.Name] {
			continue
		}
		if err := setTraffic(ctx, r.Client, pod, true); err != nil {
			return err
		}
	}
	return nil
}

// releaseResources lowers the CPU requests of a pod labelled Standby, remembering the original
// ones in standby.OriginalCPUAnnotation first. It never fails the state change: when the pod
// cannot be resized or the cluster refuses (the API server answers 404 where pods/resize does not
// exist, 403 without RBAC, 422 where the node does not support resize; the kubelet marks the
// resize Infeasible), the pod stays Standby with its resources, standby.KeptAnnotation says why
// and an event is recorded. It is idempotent, and continues a release a restart interrupted. Only
// failures to write the annotations are returned.
func (r *Reconciler) releaseResources(ctx context.Context, pod *corev1.Pod, rep *report) error {
	log := logr.FromContextOrDiscard(ctx).WithValues("pod", pod.Name)
	if r.Standby == nil || !r.Standby.Enabled() {
		return nil
	}
	if _, kept := pod.Annotations[standby.KeptAnnotation]; kept {
		return nil
	}
	orig, err := standby.Originals(pod)
	if err != nil {
		// Someone changed the annotation: what to give back is unknown, so touch nothing more.
		log.Error(err, "standby pod has an unreadable annotation; leaving its resources alone")
		return r.keep(ctx, pod, rep, err.Error(), false)
	}
	if orig == nil {
		var reason string
		if orig, reason = standby.Plan(pod, *r.Standby); reason != "" {
			log.Info("standby pod keeps its resources", "reason", reason)
			return r.keep(ctx, pod, rep, reason, false)
		}
		// Remember before changing anything, so a restart right after the resize still knows.
		if err := annotate(ctx, r.Client, pod, map[string]*string{standby.OriginalCPUAnnotation: ptr.To(orig.Encode())}); err != nil {
			return err
		}
	}
	if msg, infeasible := standby.Infeasible(pod); infeasible {
		reason := "the kubelet refused the resize as infeasible: " + msg
		log.Info("standby pod keeps its resources", "reason", reason)
		if err := resize(ctx, r.Client, pod, orig); err != nil && !podGone(err, pod) {
			rep.retry = true
			log.Error(err, "giving back the CPU requests of a pod whose resize was infeasible; will retry")
			return nil
		}
		return r.keep(ctx, pod, rep, reason, true)
	}
	target := standby.Reduced(orig, *r.Standby)
	if standby.Matches(pod, target) {
		return nil
	}
	err = resize(ctx, r.Client, pod, target)
	switch {
	case err == nil:
		log.Info("lowered the CPU requests of a standby pod", "from", orig.Encode(), "to", target.Encode())
		rep.released = append(rep.released, pod.Name)
		return nil
	case podGone(err, pod):
		return nil
	case refused(err):
		log.Info("standby pod keeps its resources: falling back to traffic cut-off only", "reason", err.Error())
		return r.keepDetailed(ctx, pod, rep, "the API server refused the resize: "+refusal(err, pod), "the API server refused the resize: "+err.Error(), true)
	default:
		// Maybe transient; the annotation stays, so the next reconcile tries again.
		rep.retry = true
		log.Error(err, "lowering the CPU requests of a standby pod; will retry")
		return nil
	}
}

// keep marks a standby pod as keeping its resources, with the reason, and forgets the originals
// (its spec has them) when dropOriginals is set.
func (r *Reconciler) keep(ctx context.Context, pod *corev1.Pod, rep *report, reason string, dropOriginals bool) error {
	return r.keepDetailed(ctx, pod, rep, reason, reason, dropOriginals)
}

// keepDetailed is keep with a reason for the event, shared by the pods it groups, and a detail
// for the pod's annotation.
func (r *Reconciler) keepDetailed(ctx context.Context, pod *corev1.Pod, rep *report, reason, detail string, dropOriginals bool) error {
	rep.keep(reason, pod)
	if len(detail) > maxKeptReason {
		detail = detail[:maxKeptReason]
	}
	set := map[string]*string{standby.KeptAnnotation: &detail}
	if dropOriginals {
		set[standby.OriginalCPUAnnotation] = nil
	}
	if err := annotate(ctx, r.Client, pod, set); err != nil && !podGone(err, pod) {
		return err
	}
	return nil
}

// restoreResources gives a pod that is not (or no longer) Standby the CPU requests remembered in
// its annotation, then removes the Standby annotations. When the resize fails the annotation
// stays, the failure is reported and the reconcile retries later; the pod's state change goes on,
// because bringing capacity back must not wait (its CPU limit is unchanged, so it can still use
// idle CPU meanwhile).
func (r *Reconciler) restoreResources(ctx context.Context, pod *corev1.Pod, rep *report) {
	_, hasOrig := pod.Annotations[standby.OriginalCPUAnnotation]
	_, hasKept := pod.Annotations[standby.KeptAnnotation]
	if !hasOrig && !hasKept {
		return
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("pod", pod.Name)
	orig, err := standby.Originals(pod)
	if err != nil {
		// Retrying cannot help: report it once and drop the annotations below.
		rep.notRestored, rep.restoreErr = append(rep.notRestored, pod.Name), err
		log.Error(err, "cannot restore the CPU requests of a pod: its annotation is unreadable")
		orig = nil
	}
	if orig != nil && !standby.Matches(pod, orig) {
		if err := resize(ctx, r.Client, pod, orig); err != nil {
			if podGone(err, pod) {
				return
			}
			rep.notRestored, rep.restoreErr, rep.retry = append(rep.notRestored, pod.Name), err, true
			log.Error(err, "restoring the CPU requests of a pod; will retry")
			return
		}
		log.Info("restored the CPU requests of a pod", "requests", orig.Encode())
		rep.restored = append(rep.restored, pod.Name)
	}
	err = annotate(ctx, r.Client, pod, map[string]*string{standby.OriginalCPUAnnotation: nil, standby.KeptAnnotation: nil})
	if err != nil && !podGone(err, pod) {
		rep.retry, rep.restoreErr = true, err
		log.Error(err, "removing the standby annotations of a pod; will retry")
	}
}

// resize sets the CPU requests of pod's containers through the pods/resize subresource (the only
// way to change them in place since Kubernetes 1.33).
func resize(ctx context.Context, c client.Client, pod *corev1.Pod, requests standby.Requests) error {
	patch := client.RawPatch(types.StrategicMergePatchType, standby.ResizePatch(requests))
	if err := c.SubResource("resize").Patch(ctx, pod, patch); err != nil {
		return fmt.Errorf("resizing pod %s to CPU requests %s: %w", pod.Name, requests.Encode(), err)
	}
	return nil
}

// annotate sets (or, for nil values, removes) annotations of pod with a merge patch.
func annotate(ctx context.Context, c client.Client, pod *corev1.Pod, set map[string]*string) error {
	patched := pod.DeepCopy()
	changed := false
	for k, v := range set {
		old, has := patched.Annotations[k]
		switch {
		case v == nil && has:
			delete(patched.Annotations, k)
			changed = true
		case v != nil && (!has || old != *v):
			if patched.Annotations == nil {
				patched.Annotations = map[string]string{}
			}
			patched.Annotations[k] = *v
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Patch(ctx, patched, client.MergeFrom(pod)); err != nil {
		return fmt.Errorf("annotating pod %s: %w", pod.Name, err)
	}
	*pod = *patched
	return nil
}

// refused tells whether a resize error is the cluster saying no for good, not a passing failure:
// pods/resize is unknown (404: Kubernetes before 1.32), not allowed (403: RBAC), or the change is
// invalid (422: the feature gate is off, the node does not support resize, the QoS class would
// change, a Windows or static pod, ...).
func refused(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsBadRequest(err) || apierrors.IsUnsupportedMediaType(err)
}

// refusal describes a refused resize without naming the pod, so that the pods it refused for the
// same reason share one event: the causes of a 422 ("spec: Forbidden: Pod running on node without
// support for resize"), otherwise the status message with the pod's name left out.
func refusal(err error, pod *corev1.Pod) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err.Error()
	}
	s := status.Status()
	if s.Details != nil && len(s.Details.Causes) > 0 {
		var causes []string
		for _, c := range s.Details.Causes {
			msg := c.Message
			if c.Field != "" {
				msg = c.Field + ": " + msg
			}
			causes = append(causes, msg)
		}
		return strings.Join(slices.Compact(slices.Sorted(slices.Values(causes))), "; ")
	}
	return strings.ReplaceAll(s.Message, fmt.Sprintf("%q", pod.Name), "the pod")
}

// podGone tells whether err says the pod itself no longer exists (as opposed to the resize
// subresource not existing, which is also a 404).
func podGone(err error, pod *corev1.Pod) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name == pod.Name && d.Kind == "pods"
}
