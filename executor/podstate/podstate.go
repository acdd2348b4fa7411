// Package podstate decides what a ReplicaProfile does to its workload: which pods change state
// (Online, Cutoff, Standby, or removal) and how many replicas the workload's /scale should ask for.
//
// Kapacity never deletes pods itself: it labels them, switches their traffic, and lowers the
// workload's replicas, trusting the workload's controller to remove the pods that were taken out of
// service (they are not ready, which both the ReplicaSet and the StatefulSet order favour; see
// package podsort).
package podstate

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podsort"
)

// Counts are numbers of pods per state: what a ReplicaProfile asks for, what a gray step plans
// (executor/gray) and what the stability checker returns.
type Counts struct {
	Online, Cutoff, Standby int32
}

// Total is the number of pods in all states.
func (c Counts) Total() int32 { return c.Online + c.Cutoff + c.Standby }

// StateOf reads a pod's state label. Pods Kapacity never touched have no label and serve traffic, so
// a missing, empty or unknown value is Online.
func StateOf(pod *corev1.Pod) v1alpha1.PodState {
	switch s := v1alpha1.PodState(pod.Labels[v1alpha1.PodStateLabelKey]); s {
	case v1alpha1.PodStateCutoff, v1alpha1.PodStateStandby:
		return s
	default:
		return v1alpha1.PodStateOnline
	}
}

// HasOnlineGate tells whether the pod declares the kapacitystack.io/online readiness gate, the
// only way its traffic can be cut off. The pod webhook adds it when the pod is created;
// spec.readinessGates is immutable afterwards, so a pod created without it (not labelled for
// injection, or created while the webhook was unavailable) never gets it.
func HasOnlineGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType == v1alpha1.PodOnlineConditionType {
			return true
		}
	}
	return false
}

// EffectiveState is the state a pod is actually in: its label, except that a pod without the
// readiness gate is Online whatever its label says, because nothing cut its traffic off.
func EffectiveState(pod *corev1.Pod) v1alpha1.PodState {
	if s := StateOf(pod); s == v1alpha1.PodStateOnline || HasOnlineGate(pod) {
		return s
	}
	return v1alpha1.PodStateOnline
}

// IsRunning tells whether a pod counts for a ReplicaProfile: running and not being deleted.
func IsRunning(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil
}

// Pods are running pods grouped by state.
type Pods struct {
	Online, Cutoff, Standby []*corev1.Pod
}

// Classify groups the running pods by their EffectiveState and ignores the others: a pod is
// never counted as cut off (or standby) unless its traffic can actually be cut.
func Classify(pods []*corev1.Pod) Pods {
	var g Pods
	for _, p := range pods {
		if !IsRunning(p) {
			continue
		}
		switch EffectiveState(p) {
		case v1alpha1.PodStateCutoff:
			g.Cutoff = append(g.Cutoff, p)
		case v1alpha1.PodStateStandby:
			g.Standby = append(g.Standby, p)
		default:
			g.Online = append(g.Online, p)
		}
	}
	return g
}

// Counts counts the pods of each state.
func (g Pods) Counts() Counts {
	return Counts{Online: int32(len(g.Online)), Cutoff: int32(len(g.Cutoff)), Standby: int32(len(g.Standby))}
}

// Transition lists the pods whose state must change, by the state they change to. A pod appears at
// most once.
type Transition struct {
	// Online pods get traffic back and lose the state label.
	Online []*corev1.Pod
	// Cutoff pods lose traffic and get the Cutoff label.
	Cutoff []*corev1.Pod
	// Standby pods lose traffic, get the Standby label and give resources back.
	Standby []*corev1.Pod
	// Delete pods are beyond the desired total. Kapacity leaves their removal to the workload's
	// controller, which removes the same pods when the scale is lowered, provided the order used was
	// the workload's (package podsort).
	Delete []*corev1.Pod
	// Ungated pods were picked for Cutoff or Standby but lack the readiness gate, so their traffic
	// cannot be cut: they stay Online (and keep serving) instead, and the profile stays short of
	// gray pods until the workload removes them or they are recreated with the gate.
	Ungated []*corev1.Pod
}

// Empty tells whether no pod changes state.
func (t Transition) Empty() bool {
	return len(t.Online)+len(t.Cutoff)+len(t.Standby)+len(t.Delete) == 0
}

// CalculateTransition moves pods between states until each state holds its desired count, as far as
// the pods present allow (new pods come from raising the scale, not from here).
//
// States are visited in the order Online, Cutoff, Standby. A state short of pods pulls them from the
// later states, nearest first, taking the pods the order puts last (the last to scale in come back
// first). A state with too many pushes the pods the order puts first into the next state; the excess
// of Standby is to be deleted. Pushed pods can cascade: Online excess that Cutoff does not need moves
// on to Standby or deletion. order must sort pods first to scale in first; the input slices are not
// modified.
//
// Pods without the readiness gate (HasOnlineGate) can be deleted but never cut off or put on
// standby; those picked for it are returned in Ungated instead. preferGated makes the pushes into
// Cutoff and Standby take gated pods before ungated ones: right for workloads that remove
// not-ready pods first whatever the order (podsort.RemovesNotReadyFirst), so the pods removed in
// the end are still the ones taken out of service; wrong for a StatefulSet, which removes the
// highest ordinals whatever their readiness, so there the order is kept and the ungated pod stays
// Online until it is removed.
func CalculateTransition(current Pods, desired Counts, order podsort.Order, preferGated bool) (Transition, error) {
	if order == nil {
		return Transition{}, fmt.Errorf("calculate state transition: no pod order")
	}
	if desired.Online < 0 || desired.Cutoff < 0 || desired.Standby < 0 {
		return Transition{}, fmt.Errorf("calculate state transition: negative desired counts %+v", desired)
	}
	const deleted = 3
	want := [deleted]int{int(desired.Online), int(desired.Cutoff), int(desired.Standby)}
	cur := [deleted][]*corev1.Pod{slices.Clone(current.Online), slices.Clone(current.Cutoff), slices.Clone(current.Standby)}
	var cand [deleted + 1][]*corev1.Pod

	for i := 0; i < deleted; i++ {
		diff := len(cur[i]) + len(cand[i]) - want[i]
		for j := i + 1; diff < 0 && j < deleted; j++ {
			n := min(-diff, len(cur[j]))
			order(cur[j])
			cand[i] = append(cand[i], cur[j][len(cur[j])-n:]...)
			cur[j] = cur[j][:len(cur[j])-n]
			diff += n
		}
		if diff > 0 {
			// Pods already moving into this state and pods in it compete on equal terms.
			pool := append(slices.Clone(cur[i]), cand[i]...)
			order(pool)
			pushed := pool[:diff]
			cand[i+1] = append(cand[i+1], pushed...)
			cur[i] = without(cur[i], pushed)
			cand[i] = without(cand[i], pushed)
		}
	}
	t := Transition{Online: cand[0], Cutoff: cand[1], Standby: cand[2], Delete: cand[deleted]}
	// Every ungated pod is effectively Online (Classify), so one headed for Cutoff or Standby stays
	// where it is; with preferGated, the first gated pod the order keeps Online takes its place.
	// Pods headed for deletion are left as the order chose them.
	staying := slices.Clone(cur[0])
	order(staying)
	for _, gray := range []*[]*corev1.Pod{&t.Cutoff, &t.Standby} {
		moved := (*gray)[:0:0]
		for _, p := range *gray {
			if HasOnlineGate(p) {
				moved = append(moved, p)
				continue
			}
			if i := slices.IndexFunc(staying, HasOnlineGate); preferGated && i >= 0 {
				moved = append(moved, staying[i])
				staying = slices.Delete(staying, i, i+1)
				continue
			}
			t.Ungated = append(t.Ungated, p)
		}
		*gray = moved
	}
	return t, nil
}

// Decision is what a ReplicaProfile reconcile should do.
type Decision struct {
	// Observed are the running pods per state (the ReplicaProfile's status).
	Observed Counts
	// Ensured is the Ensured condition: observed counts and the workload's replicas match.
	// Nothing else needs doing then.
	Ensured bool
	// DesiredOnline is the spec's online count after the allowed scaling direction.
	DesiredOnline int32
	// StateChangeNeeded tells that some pod is, or must become, Cutoff or Standby.
	StateChangeNeeded bool
	// StateChangeSkipped tells that a state change was needed but the running pods do not match
	// the workload's replicas (a rollout, pods starting or self-healing), so labels were left alone
	// to avoid acting on pods that are about to go (the Applied condition's StateChangeSkipped).
	StateChangeSkipped bool
	// Transition is the state changes to apply, in the order Online, Cutoff, Standby.
	Transition Transition
	// ScaleReplicas is the replica count the workload's /scale should have; UpdateScale tells that
	// it differs from the current one.
	ScaleReplicas int32
	UpdateScale   bool
}

// Decide computes a ReplicaProfile reconcile from its spec, the workload's pods and its
// scale.spec.replicas. order and preferGated are CalculateTransition's.
//
// Unlike Kapacity, Ensured also requires the workload's replicas to equal the desired total: Kapacity
// counted running pods only, so extra replicas that never started (pending pods) kept the profile
// "ensured" and were never scaled away.
func Decide(spec *v1alpha1.ReplicaProfileSpec, pods []*corev1.Pod, workloadReplicas int32, order podsort.Order, preferGated bool) (Decision, error) {
	running := Classify(pods)
	d := Decision{Observed: running.Counts(), ScaleReplicas: workloadReplicas}
	obs := d.Observed

	switch spec.AllowedScalingDirection {
	case v1alpha1.ScalingDirectionUp:
		d.DesiredOnline = max(spec.OnlineReplicas, obs.Online)
	case v1alpha1.ScalingDirectionDown:
		d.DesiredOnline = min(spec.OnlineReplicas, obs.Online)
	case v1alpha1.ScalingDirectionNeither:
		d.DesiredOnline = obs.Online
	case v1alpha1.ScalingDirectionBoth, "":
		d.DesiredOnline = spec.OnlineReplicas
	default:
		return Decision{}, fmt.Errorf("decide replica profile: unknown allowed scaling direction %q", spec.AllowedScalingDirection)
	}
	desired := Counts{Online: d.DesiredOnline, Cutoff: spec.CutoffReplicas, Standby: spec.StandbyReplicas}
	if desired.Cutoff < 0 || desired.Standby < 0 || desired.Online < 0 {
		return Decision{}, fmt.Errorf("decide replica profile: negative desired counts %+v", desired)
	}

	d.Ensured = obs == desired && workloadReplicas == desired.Total()
	if d.Ensured {
		return d, nil
	}

	d.StateChangeNeeded = desired.Cutoff > 0 || desired.Standby > 0 || obs.Cutoff > 0 || obs.Standby > 0
	if d.StateChangeNeeded {
		if obs.Total() != workloadReplicas {
			d.StateChangeSkipped = true
		} else {
			t, err := CalculateTransition(running, desired, order, preferGated)
			if err != nil {
				return Decision{}, fmt.Errorf("decide replica profile: %w", err)
			}
			d.Transition = t
		}
	}
	d.ScaleReplicas = desired.Total()
	d.UpdateScale = d.ScaleReplicas != workloadReplicas
	return d, nil
}

// Anomaly is a stability checker's finding during a change.
type Anomaly struct {
	// Action is the checker's stabilization action.
	Action v1alpha1.StabilizationActionType
	// DetectedAt is when the anomaly was last seen.
	DetectedAt time.Time
	// CoolDown is how long no anomaly must be seen before the change resumes.
	CoolDown time.Duration
}

// Stabilize applies a stability checker's verdict to the counts a ReplicaProfile is about to be
// given (Kapacity has the API but never implemented it). With no anomaly, or once the cool-down has
// passed, desired is returned unchanged. Otherwise:
//   - Pause holds the pods where they are: observed is returned, so nothing moves.
//   - Rollback returns every pod kept running in a gray state to Online at once, without deleting
//     or creating pods; this undoes a gray scale-down in seconds. Returning to the previous portrait
//     value afterwards is the autoscaler's decision.
//
// resumeAfter is the rest of the cool-down, for a requeue.
func Stabilize(desired, observed Counts, anomaly *Anomaly, now time.Time) (counts Counts, resumeAfter time.Duration, err error) {
	if anomaly == nil {
		return desired, 0, nil
	}
	resume := anomaly.DetectedAt.Add(anomaly.CoolDown)
	if !now.Before(resume) {
		return desired, 0, nil
	}
	switch anomaly.Action {
	case v1alpha1.StabilizationActionPause:
		return observed, resume.Sub(now), nil
	case v1alpha1.StabilizationActionRollback:
		return Counts{Online: observed.Total()}, resume.Sub(now), nil
	default:
		return Counts{}, 0, fmt.Errorf("stabilize: unknown stabilization action %q", anomaly.Action)
	}
}

// without returns pods minus drop, keeping the order.
func without(pods, drop []*corev1.Pod) []*corev1.Pod {
	out := pods[:0:0]
	for _, p := range pods {
		if !slices.Contains(drop, p) {
			out = append(out, p)
		}
	}
	return out
}
