// Package gray plans how an IntelligentHorizontalPodAutoscaler moves its workload from one portrait
// value to the next: min/max capping, the allowed directions, and gray changes applied in batches.
//
// Compute is a pure function of the spec, the persisted status, the ReplicaProfile counts in effect
// and the time. All progress lives in the status (previous value, gray percent and time of the last
// batch), so a restarted controller resumes exactly where the last one stopped, and it never applies
// more than one batch per call however late it runs. Each step starts from the ReplicaProfile in
// effect: when the status records a batch the profile does not show (its write was lost), that
// batch is applied again instead of the next one, so no step moves more than one batch.
package gray

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podstate"
)

// Reasons of the ScalingLimited condition.
const (
	ReasonDesiredWithinRange = "DesiredWithinRange"
	ReasonTooFewReplicas     = "TooFewReplicas"
	ReasonTooManyReplicas    = "TooManyReplicas"
)

// Input is everything a plan depends on.
type Input struct {
	// Spec is the autoscaler's spec: min/max, scale mode and behavior are read.
	Spec *v1alpha1.IntelligentHorizontalPodAutoscalerSpec
	// Status is the persisted status; it is not modified.
	Status *v1alpha1.IntelligentHorizontalPodAutoscalerStatus
	// Value is the merged portrait value in effect now. It must not be nil: when there is none the
	// controller reports NoValidPortraitValue and leaves the ReplicaProfile alone.
	Value *v1alpha1.HorizontalPortraitValue
	// Profile is the spec counts of the existing ReplicaProfile, which is what is in effect, or nil
	// when there is no ReplicaProfile.
	Profile *podstate.Counts
	// Now is the current time.
	Now time.Time
}

// Plan is what the controller should do.
type Plan struct {
	// Target is what the ReplicaProfile's spec should hold.
	Target podstate.Counts
	// Apply is false in Preview mode: the plan is computed, but the controller must not write a
	// ReplicaProfile (Kapacity deletes an existing one).
	Apply bool
	// Status is the next status. Conditions are copied unchanged; the controller sets them.
	Status v1alpha1.IntelligentHorizontalPodAutoscalerStatus
	// ValueChanged tells that Value differs from the status' current value.
	ValueChanged bool
	// Desired is the portrait value's replicas capped to min/max, and LimitReason tells whether
	// and how it was capped (for ScalingLimited).
	Desired     int32
	LimitReason string
	// Progressing is the GrayProgressing condition: the online target has not reached Desired.
	Progressing bool
	// RequeueAfter is when the next batch or the end of the observation is due; zero when nothing
	// is scheduled.
	RequeueAfter time.Duration
	// Reason explains the plan in words, for logs and events.
	Reason string
}

// Compute plans the next ReplicaProfile counts and status.
//
// Deliberate differences from Kapacity:
//   - The status keeps the raw portrait value; capping applies to the plan only. Kapacity stored the
//     capped value, so the next reconcile saw a "new" value, flipped previous/current and reset the
//     gray progress every time.
//   - A new target (a value whose capped replicas differ) starts from the online replicas in effect
//     (the ReplicaProfile's), recorded as the previous value's replicas. Kapacity started from the
//     old portrait value, so a change in the middle of a gray run could make the online count jump.
//   - A value that differs only in provider or expiry, with the same capped replicas, continues the
//     change in progress instead of restarting it (Kapacity made it jump straight to the target).
//   - Pods left in a gray state by an interrupted scale-down are kept: a further scale-down keeps
//     them until it ends; a scale-up brings them back first and keeps, as a warm reserve, those the
//     target still needs. Without a scale-up gray strategy that means the scale-up cancels the gray
//     scale-down at once: the cutoff pods return online, the surplus is removed.
//   - A gray strategy added to the spec never applies to a change that started without one (Kapacity
//     dereferenced a nil gray status there). Gray is nil whenever no gray change is unfinished.
//   - A change in a disabled direction leaves the ReplicaProfile as it is. Kapacity still wrote the
//     gray cutoff pods, which the ReplicaProfile then had to create on top of the online ones.
//   - Once a batch has moved every pod (small changes, where each batch moves at least one pod), the
//     remaining batches are skipped and the observation starts. With observationSeconds 0 the last
//     batch ends the change at once instead of waiting for an incidental extra reconcile.
func Compute(in Input) (Plan, error) {
	if in.Spec == nil || in.Status == nil {
		return Plan{}, fmt.Errorf("gray plan: spec and status are required")
	}
	if in.Value == nil {
		return Plan{}, fmt.Errorf("gray plan: no portrait value")
	}
	if in.Value.Replicas < 0 {
		return Plan{}, fmt.Errorf("gray plan: portrait value of provider %q has negative replicas %d", in.Value.Provider, in.Value.Replicas)
	}
	spec, now := in.Spec, in.Now
	desired, limit := Cap(in.Value.Replicas, spec.MinReplicas, spec.MaxReplicas)
	p := Plan{
		Status:      *in.Status.DeepCopy(),
		Desired:     desired,
		LimitReason: limit,
		Apply:       spec.ScaleMode != v1alpha1.ScaleModePreview,
	}
	next := &p.Status
	old := in.Status.CurrentPortraitValue
	p.ValueChanged = old == nil || !equality.Semantic.DeepEqual(*old, *in.Value)
	next.CurrentPortraitValue = in.Value.DeepCopy()

	if !p.Apply {
		// Nothing is requested from a ReplicaProfile in Preview, so nothing can be in progress.
		if p.ValueChanged && old != nil {
			next.PreviousPortraitValue = old.DeepCopy()
		}
		next.Gray = nil
		next.OnlineReplicas, next.CutoffReplicas, next.StandbyReplicas = 0, 0, 0
		p.Target = podstate.Counts{Online: desired}
		p.Reason = "preview: the plan is not applied"
		return p, nil
	}

	if old == nil {
		next.PreviousPortraitValue, next.Gray = nil, nil
	} else if oldDesired, _ := Cap(old.Replicas, spec.MinReplicas, spec.MaxReplicas); p.ValueChanged && oldDesired != desired {
		from := oldDesired
		if in.Profile != nil {
			from = in.Profile.Online
		}
		prev := old.DeepCopy()
		prev.Replicas = from
		next.PreviousPortraitValue = prev
		next.Gray = nil
		// A gray change needs a ReplicaProfile to change gradually; without one (first creation,
		// after Preview) the target is applied at once.
		if in.Profile != nil && strategyFor(&spec.Behavior, from, desired) != nil {
			next.Gray = &v1alpha1.GrayStatus{GrayPercent: 0, LastUpdateTime: stamp(now)}
		}
	}

	p.step(in)
	next.OnlineReplicas, next.CutoffReplicas, next.StandbyReplicas = p.Target.Online, p.Target.Cutoff, p.Target.Standby
	p.Progressing = p.Target.Online != desired
	return p, nil
}

// step fills Target, Reason, RequeueAfter and the next Gray from the previous value to Desired.
func (p *Plan) step(in Input) {
	next, desired, now := &p.Status, p.Desired, in.Now
	direct := func(reason string) {
		next.Gray = nil
		p.Target = podstate.Counts{Online: desired}
		p.Reason = reason
	}
	if next.PreviousPortraitValue == nil {
		direct(fmt.Sprintf("apply %d online replicas", desired))
		return
	}
	from := next.PreviousPortraitValue.Replicas
	behavior := &in.Spec.Behavior
	if in.Profile != nil && blocked(behavior, in.Profile.Online, desired) {
		// Hold everything, gray progress included, so that re-enabling the direction resumes the
		// change where it stopped.
		p.Target = *in.Profile
		p.Reason = fmt.Sprintf("scaling from %d to %d online replicas is disabled; the ReplicaProfile is left as it is", in.Profile.Online, desired)
		return
	}
	strategy := strategyFor(behavior, from, desired)
	if next.Gray == nil || strategy == nil {
		direct(fmt.Sprintf("apply %d online replicas", desired))
		return
	}

	gray := next.Gray
	diff := abs(desired - from)
	// The status is written before the ReplicaProfile, so it can record a batch whose profile
	// write was lost (the manager killed between the two writes, a failed patch). Stepping on
	// from the status would then move two batches at once; the progress is taken back to the
	// last step the profile in effect has reached, and the batch after it is applied now.
	redo := false
	if in.Profile != nil {
		if reached, behind := reachedPercent(diff, gray.GrayPercent, strategy.ChangePercent, applied(from, desired, in.Profile.Online)); behind {
			gray = &v1alpha1.GrayStatus{GrayPercent: reached, LastUpdateTime: gray.LastUpdateTime}
			redo = true
		}
	}
	wait := time.Duration(strategy.ChangeIntervalSeconds) * time.Second
	switch {
	case gray.GrayPercent <= 0:
		wait = 0
	case gray.GrayPercent >= 100:
		wait = time.Duration(strategy.ObservationSeconds) * time.Second
	}
	due := gray.LastUpdateTime.Add(wait)
	if redo {
		due = now
	}
	percent := gray.GrayPercent
	switch {
	case now.Before(due):
		p.RequeueAfter = due.Sub(now)
	case percent >= 100:
		direct(fmt.Sprintf("gray change to %d online replicas finished", desired))
		return
	default:
		percent = min(100, percent+strategy.ChangePercent)
		if moved(diff, percent) >= diff {
			percent = 100
		}
		if percent == 100 && strategy.ObservationSeconds == 0 {
			direct(fmt.Sprintf("gray change to %d online replicas finished", desired))
			return
		}
		last := stamp(now)
		next.Gray = &v1alpha1.GrayStatus{GrayPercent: percent, LastUpdateTime: last}
		wait = time.Duration(strategy.ChangeIntervalSeconds) * time.Second
		if percent == 100 {
			wait = time.Duration(strategy.ObservationSeconds) * time.Second
		}
		p.RequeueAfter = max(0, last.Add(wait).Sub(now))
	}

	var profile podstate.Counts
	if in.Profile != nil {
		profile = *in.Profile
	}
	n := moved(diff, percent)
	if desired > from {
		// Pods left in a gray state by an interrupted scale-down come back online first (the
		// ReplicaProfile pulls online pods from Cutoff, then Standby); keep as many as the target
		// still needs, so that they need not be recreated.
		p.Target.Online = from + n
		room := desired - p.Target.Online
		p.Target.Cutoff = min(profile.Cutoff, room)
		p.Target.Standby = min(profile.Standby, room-p.Target.Cutoff)
	} else {
		// The ReplicaProfile in effect holds the pods this change moved so far (at the percent
		// before this step) plus pods carried over from an interrupted change; the carried ones
		// stay until this change ends.
		before := moved(diff, gray.GrayPercent)
		p.Target.Online = from - n
		p.Target.Cutoff, p.Target.Standby = profile.Cutoff, profile.Standby
		switch strategy.GrayState {
		case v1alpha1.PodStateCutoff:
			p.Target.Cutoff = max(0, profile.Cutoff-before) + n
		case v1alpha1.PodStateStandby:
			p.Target.Standby = max(0, profile.Standby-before) + n
		}
	}
	p.Reason = fmt.Sprintf("gray change from %d to %d online replicas at %d%%: %d online, %d cutoff, %d standby",
		from, desired, percent, p.Target.Online, p.Target.Cutoff, p.Target.Standby)
}

// Cap limits replicas to [minReplicas, maxReplicas] and returns the ScalingLimited reason. Max is
// applied after min, so max wins if min > max (validation rejects that spec).
func Cap(replicas, minReplicas, maxReplicas int32) (int32, string) {
	reason := ReasonDesiredWithinRange
	if replicas < minReplicas {
		replicas, reason = minReplicas, ReasonTooFewReplicas
	}
	if replicas > maxReplicas {
		replicas, reason = maxReplicas, ReasonTooManyReplicas
	}
	return replicas, reason
}

// AllowedScalingDirection is the ReplicaProfile's allowed direction for the autoscaler's behavior.
func AllowedScalingDirection(b *v1alpha1.IntelligentHorizontalPodAutoscalerBehavior) v1alpha1.ScalingDirection {
	switch up, down := !b.ScaleUp.Disabled, !b.ScaleDown.Disabled; {
	case up && down:
		return v1alpha1.ScalingDirectionBoth
	case up:
		return v1alpha1.ScalingDirectionUp
	case down:
		return v1alpha1.ScalingDirectionDown
	default:
		return v1alpha1.ScalingDirectionNeither
	}
}

// applied is how many online pods of a change from from to desired the ReplicaProfile in effect
// has moved, within [0, |desired - from|].
func applied(from, desired, profileOnline int32) int32 {
	n := profileOnline - from
	if desired < from {
		n = from - profileOnline
	}
	return min(max(0, n), abs(desired-from))
}

// reachedPercent tells whether the recorded gray percent is ahead of the pods the profile has
// moved and, if so, returns the last step of the change (0, changePercent, 2×changePercent, …) that
// the profile has reached.
func reachedPercent(diff, recorded, changePercent, appliedPods int32) (int32, bool) {
	if recorded <= 0 || moved(diff, recorded) <= appliedPods {
		return recorded, false
	}
	reached := int32(0)
	if changePercent < 1 { // refused by validation; never loop on it
		return reached, true
	}
	for p := changePercent; p < recorded && p < 100 && moved(diff, p) <= appliedPods; p += changePercent {
		reached = p
	}
	return reached, true
}

// moved is the number of pods a change of diff has moved at percent: at least one once started, so
// that small changes progress.
func moved(diff, percent int32) int32 {
	if percent <= 0 || diff == 0 {
		return 0
	}
	return max(1, int32(int64(diff)*int64(percent)/100))
}

func strategyFor(b *v1alpha1.IntelligentHorizontalPodAutoscalerBehavior, from, to int32) *v1alpha1.GrayStrategy {
	switch {
	case to > from:
		return b.ScaleUp.GrayStrategy
	case to < from:
		return b.ScaleDown.GrayStrategy
	default:
		return nil
	}
}

func blocked(b *v1alpha1.IntelligentHorizontalPodAutoscalerBehavior, from, to int32) bool {
	return (to > from && b.ScaleUp.Disabled) || (to < from && b.ScaleDown.Disabled)
}

// stamp is now as the API server stores it (whole seconds), so that waits computed before and after
// a round trip through the status agree.
func stamp(now time.Time) metav1.Time {
	return metav1.NewTime(now).Rfc3339Copy()
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

// BatchSize is the most online pods one gray step moves in a change of diff pods at changePercent:
// ceil(diff × changePercent / 100), and at least one.
func BatchSize(diff, changePercent int32) int32 {
	if diff <= 0 {
		return 0
	}
	return max(1, int32((int64(diff)*int64(changePercent)+99)/100))
}
