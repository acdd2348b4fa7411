package gray

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podstate"
)

var t0 = time.Date(2024, 5, 1, 12, 10, 0, 0, time.UTC)

func grayDown(state v1alpha1.PodState, interval, percent, observation int32) v1alpha1.ScalingBehavior {
	return v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
		GrayState: state, ChangeIntervalSeconds: interval, ChangePercent: percent, ObservationSeconds: observation}}
}

func grayUp(interval, percent, observation int32) v1alpha1.ScalingBehavior {
	return grayDown(v1alpha1.PodStateOnline, interval, percent, observation)
}

func newSpec(minR, maxR int32, up, down v1alpha1.ScalingBehavior) *v1alpha1.IntelligentHorizontalPodAutoscalerSpec {
	return &v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
		MinReplicas: minR, MaxReplicas: maxR, ScaleMode: v1alpha1.ScaleModeAuto,
		Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: down},
	}
}

// sim drives Compute the way a controller does: the status and the ReplicaProfile counts persist
// between calls (the status through a JSON round trip, as through the API server).
type sim struct {
	t       *testing.T
	spec    *v1alpha1.IntelligentHorizontalPodAutoscalerSpec
	status  v1alpha1.IntelligentHorizontalPodAutoscalerStatus
	profile *podstate.Counts
}

func (s *sim) run(at time.Duration, v *v1alpha1.HorizontalPortraitValue) Plan {
	s.t.Helper()
	raw, err := json.Marshal(s.status)
	if err != nil {
		s.t.Fatal(err)
	}
	var stored v1alpha1.IntelligentHorizontalPodAutoscalerStatus
	if err := json.Unmarshal(raw, &stored); err != nil {
		s.t.Fatal(err)
	}
	p, err := Compute(Input{Spec: s.spec, Status: &stored, Value: v, Profile: s.profile, Now: t0.Add(at)})
	if err != nil {
		s.t.Fatalf("at %v: %v", at, err)
	}
	s.status = p.Status
	if p.Apply {
		target := p.Target
		s.profile = &target
	} else {
		s.profile = nil
	}
	return p
}

func val(replicas int32) *v1alpha1.HorizontalPortraitValue {
	return &v1alpha1.HorizontalPortraitValue{Provider: "Static", Replicas: replicas}
}

// timelineStep is one reconcile: at a time, with a portrait value, and what it must produce.
type timelineStep struct {
	at      time.Duration
	value   int32
	want    podstate.Counts
	requeue time.Duration
}

func runTimeline(t *testing.T, s *sim, steps []timelineStep) {
	t.Helper()
	for _, st := range steps {
		p := s.run(st.at, val(st.value))
		if p.Target != st.want || p.RequeueAfter != st.requeue {
			t.Errorf("at %v value %d: target %+v requeue %v, want %+v requeue %v (%s)",
				st.at, st.value, p.Target, p.RequeueAfter, st.want, st.requeue, p.Reason)
		}
		if p.Status.OnlineReplicas != p.Target.Online || p.Status.CutoffReplicas != p.Target.Cutoff || p.Status.StandbyReplicas != p.Target.Standby {
			t.Errorf("at %v: status counts %d/%d/%d differ from the target %+v", st.at,
				p.Status.OnlineReplicas, p.Status.CutoffReplicas, p.Status.StandbyReplicas, p.Target)
		}
	}
}

const s = time.Second

func TestReferenceTimelines(t *testing.T) {
	tests := []struct {
		name  string
		spec  *v1alpha1.IntelligentHorizontalPodAutoscalerSpec
		steps []timelineStep
	}{{
		// The quick-start (seed 001): cron 5 replicas at minutes 0–10 over a static 1; scale-down in
		// Cutoff, 30s interval, 50%, 60s observation: 5 → 3+2 cutoff → 1+4 cutoff → 1.
		name: "quick-start gray scale-down",
		spec: newSpec(1, 10, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 30, 50, 60)),
		steps: []timelineStep{
			{-10 * time.Minute, 1, counts(1, 0, 0), 0},
			{-9 * time.Minute, 5, counts(5, 0, 0), 0},
			{0, 1, counts(3, 2, 0), 30 * s},
			{1 * s, 1, counts(3, 2, 0), 29 * s},
			{30 * s, 1, counts(1, 4, 0), 60 * s},
			{60 * s, 1, counts(1, 4, 0), 30 * s},
			{90 * s, 1, counts(1, 0, 0), 0},
			{120 * s, 1, counts(1, 0, 0), 0},
		},
	}, {
		name: "scale down 20 → 10 in Cutoff at 50%",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 60, 50, 120)),
		steps: []timelineStep{
			{-time.Hour, 20, counts(20, 0, 0), 0},
			{0, 10, counts(15, 5, 0), 60 * s},
			{60 * s, 10, counts(10, 10, 0), 120 * s},
			{180 * s, 10, counts(10, 0, 0), 0},
		},
	}, {
		name: "scale up 10 → 20 at 20%",
		spec: newSpec(0, 100, grayUp(60, 20, 0), v1alpha1.ScalingBehavior{}),
		steps: []timelineStep{
			{-time.Hour, 10, counts(10, 0, 0), 0},
			{0, 20, counts(12, 0, 0), 60 * s},
			{60 * s, 20, counts(14, 0, 0), 60 * s},
			{120 * s, 20, counts(16, 0, 0), 60 * s},
			{180 * s, 20, counts(18, 0, 0), 60 * s},
			{240 * s, 20, counts(20, 0, 0), 0},
		},
	}, {
		name: "scale down in Standby",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateStandby, 10, 50, 10)),
		steps: []timelineStep{
			{-time.Hour, 8, counts(8, 0, 0), 0},
			{0, 4, counts(6, 0, 2), 10 * s},
			{10 * s, 4, counts(4, 0, 4), 10 * s},
			{20 * s, 4, counts(4, 0, 0), 0},
		},
	}, {
		name: "scale down in Deleted removes pods batch by batch",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateDeleted, 10, 50, 10)),
		steps: []timelineStep{
			{-time.Hour, 8, counts(8, 0, 0), 0},
			{0, 4, counts(6, 0, 0), 10 * s},
			{10 * s, 4, counts(4, 0, 0), 10 * s},
			{20 * s, 4, counts(4, 0, 0), 0},
		},
	}, {
		name: "observation 0 ends the change with the last batch",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 0)),
		steps: []timelineStep{
			{-time.Hour, 8, counts(8, 0, 0), 0},
			{0, 4, counts(6, 2, 0), 10 * s},
			{10 * s, 4, counts(4, 0, 0), 0},
		},
	}, {
		name: "a late reconcile applies one batch only",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 25, 10)),
		steps: []timelineStep{
			{-time.Hour, 8, counts(8, 0, 0), 0},
			{0, 4, counts(7, 1, 0), 10 * s},
			{time.Hour, 4, counts(6, 2, 0), 10 * s},
			{time.Hour + 10*s, 4, counts(5, 3, 0), 10 * s},
		},
	}, {
		name: "percent rounding: 3 pods at 50% move 1 then 3",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 5)),
		steps: []timelineStep{
			{-time.Hour, 6, counts(6, 0, 0), 0},
			{0, 3, counts(5, 1, 0), 10 * s},
			{10 * s, 3, counts(3, 3, 0), 5 * s},
			{15 * s, 3, counts(3, 0, 0), 0},
		},
	}, {
		name: "percent rounding: a batch that moves every pod skips the remaining batches",
		spec: newSpec(0, 100, grayUp(10, 30, 0), v1alpha1.ScalingBehavior{}),
		steps: []timelineStep{
			{-time.Hour, 1, counts(1, 0, 0), 0},
			{0, 2, counts(2, 0, 0), 0},
		},
	}, {
		name: "scale from 1",
		spec: newSpec(0, 100, grayUp(10, 50, 0), v1alpha1.ScalingBehavior{}),
		steps: []timelineStep{
			{-time.Hour, 1, counts(1, 0, 0), 0},
			{0, 5, counts(3, 0, 0), 10 * s},
			{10 * s, 5, counts(5, 0, 0), 0},
		},
	}, {
		name: "scale to 0",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 10)),
		steps: []timelineStep{
			{-time.Hour, 2, counts(2, 0, 0), 0},
			{0, 0, counts(1, 1, 0), 10 * s},
			{10 * s, 0, counts(0, 2, 0), 10 * s},
			{20 * s, 0, counts(0, 0, 0), 0},
		},
	}, {
		name: "scale up from 0 without gray",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 10)),
		steps: []timelineStep{
			{-time.Hour, 0, counts(0, 0, 0), 0},
			{0, 3, counts(3, 0, 0), 0},
		},
	}, {
		name: "min = max: the value never matters",
		spec: newSpec(4, 4, grayUp(10, 50, 0), grayDown(v1alpha1.PodStateCutoff, 10, 50, 10)),
		steps: []timelineStep{
			{-time.Hour, 1, counts(4, 0, 0), 0},
			{0, 9, counts(4, 0, 0), 0},
			{10 * s, 0, counts(4, 0, 0), 0},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runTimeline(t, &sim{t: t, spec: tt.spec}, tt.steps)
		})
	}
}

func TestCapping(t *testing.T) {
	sm := &sim{t: t, spec: newSpec(2, 20, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 10))}
	p := sm.run(0, val(25))
	if p.Target.Online != 20 || p.LimitReason != ReasonTooManyReplicas || p.Desired != 20 {
		t.Fatalf("value 25 with max 20: %+v %s", p.Target, p.LimitReason)
	}
	if p.Status.CurrentPortraitValue.Replicas != 25 {
		t.Errorf("status keeps the raw value, got %d", p.Status.CurrentPortraitValue.Replicas)
	}
	// Kapacity stored 20 and saw 25 as a new value on every reconcile.
	p = sm.run(10*s, val(25))
	if p.ValueChanged || p.Status.PreviousPortraitValue != nil || p.Status.Gray != nil {
		t.Errorf("same raw value again: changed=%v previous=%v gray=%v", p.ValueChanged, p.Status.PreviousPortraitValue, p.Status.Gray)
	}
	// Another raw value with the same capped replicas is no new change either.
	p = sm.run(20*s, val(30))
	if !p.ValueChanged || p.Status.PreviousPortraitValue != nil || p.Status.Gray != nil || p.Target.Online != 20 {
		t.Errorf("value 30 capped to 20 again: %+v changed=%v previous=%v gray=%v", p.Target, p.ValueChanged, p.Status.PreviousPortraitValue, p.Status.Gray)
	}
	p = sm.run(30*s, val(1))
	if p.Target != (counts(11, 9, 0)) || p.LimitReason != ReasonTooFewReplicas {
		t.Errorf("value 1 with min 2 from 20 at 50%%: %+v %s", p.Target, p.LimitReason)
	}
	for _, c := range []struct{ v, minR, maxR, want int32 }{{5, 1, 10, 5}, {0, 1, 10, 1}, {11, 1, 10, 10}, {5, 8, 3, 3}} {
		if got, _ := Cap(c.v, c.minR, c.maxR); got != c.want {
			t.Errorf("Cap(%d, %d, %d) = %d, want %d", c.v, c.minR, c.maxR, got, c.want)
		}
	}
}

// Kapacity made the next gray change go from the old portrait value; a value change in the middle of
// a run then moved online pods all at once.
func TestChangeDuringGray(t *testing.T) {
	down := grayDown(v1alpha1.PodStateCutoff, 60, 50, 120)
	tests := []struct {
		name  string
		spec  *v1alpha1.IntelligentHorizontalPodAutoscalerSpec
		steps []timelineStep
	}{{
		name: "scale-up without gray cancels the gray scale-down: cutoff pods return online",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, down),
		steps: []timelineStep{
			{-time.Hour, 20, counts(20, 0, 0), 0},
			{0, 10, counts(15, 5, 0), 60 * s},
			{30 * s, 18, counts(18, 0, 0), 0},
			{90 * s, 18, counts(18, 0, 0), 0},
		},
	}, {
		name: "scale-up with gray keeps the cutoff pods it still needs as a warm reserve",
		spec: newSpec(0, 100, grayUp(60, 50, 0), down),
		steps: []timelineStep{
			{-time.Hour, 20, counts(20, 0, 0), 0},
			{0, 10, counts(15, 5, 0), 60 * s},
			{30 * s, 18, counts(16, 2, 0), 60 * s},
			{90 * s, 18, counts(18, 0, 0), 0},
		},
	}, {
		name: "a further scale-down starts from the online pods and keeps the cutoff ones until it ends",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, down),
		steps: []timelineStep{
			{-time.Hour, 20, counts(20, 0, 0), 0},
			{0, 10, counts(15, 5, 0), 60 * s},
			{30 * s, 12, counts(14, 6, 0), 60 * s},
			{90 * s, 12, counts(12, 8, 0), 120 * s},
			{210 * s, 12, counts(12, 0, 0), 0},
		},
	}, {
		name: "back to the old value during the observation",
		spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, down),
		steps: []timelineStep{
			{-time.Hour, 20, counts(20, 0, 0), 0},
			{0, 10, counts(15, 5, 0), 60 * s},
			{60 * s, 10, counts(10, 10, 0), 120 * s},
			{70 * s, 20, counts(20, 0, 0), 0},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runTimeline(t, &sim{t: t, spec: tt.spec}, tt.steps)
		})
	}

	t.Run("a new expiry with the same replicas continues the change", func(t *testing.T) {
		sm := &sim{t: t, spec: newSpec(0, 100, v1alpha1.ScalingBehavior{}, down)}
		sm.run(-time.Hour, val(20))
		sm.run(0, val(10))
		expire := metav1.NewTime(t0.Add(time.Hour))
		p := sm.run(30*s, &v1alpha1.HorizontalPortraitValue{Provider: "Cron", Replicas: 10, ExpireTime: &expire})
		if !p.ValueChanged || p.Target != (counts(15, 5, 0)) || p.RequeueAfter != 30*s || p.Status.Gray.GrayPercent != 50 {
			t.Errorf("got %+v requeue %v gray %+v changed %v", p.Target, p.RequeueAfter, p.Status.Gray, p.ValueChanged)
		}
		if p.Status.CurrentPortraitValue.Provider != "Cron" || p.Status.PreviousPortraitValue.Replicas != 20 {
			t.Errorf("current %+v previous %+v", p.Status.CurrentPortraitValue, p.Status.PreviousPortraitValue)
		}
	})
}

func TestDisabledDirections(t *testing.T) {
	t.Run("scale-down disabled holds the profile; enabling applies it", func(t *testing.T) {
		spec := newSpec(0, 100, v1alpha1.ScalingBehavior{}, v1alpha1.ScalingBehavior{Disabled: true})
		sm := &sim{t: t, spec: spec}
		sm.run(-time.Hour, val(20))
		p := sm.run(0, val(10))
		if p.Target != (counts(20, 0, 0)) || !p.Progressing {
			t.Errorf("disabled scale-down: %+v progressing %v", p.Target, p.Progressing)
		}
		p = sm.run(10*s, val(25))
		if p.Target != (counts(25, 0, 0)) {
			t.Errorf("scale-up from the held 20: %+v", p.Target)
		}
		if p = sm.run(20*s, val(10)); p.Target != (counts(25, 0, 0)) {
			t.Errorf("disabled scale-down from 25: %+v", p.Target)
		}
		spec.Behavior.ScaleDown.Disabled = false
		p = sm.run(30*s, val(10))
		if p.Target != (counts(10, 0, 0)) || p.Progressing {
			t.Errorf("re-enabled: %+v progressing %v", p.Target, p.Progressing)
		}
	})
	t.Run("disabling in the middle of a gray change pauses it", func(t *testing.T) {
		spec := newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 60, 50, 120))
		sm := &sim{t: t, spec: spec}
		runTimeline(t, sm, []timelineStep{{-time.Hour, 20, counts(20, 0, 0), 0}, {0, 10, counts(15, 5, 0), 60 * s}})
		spec.Behavior.ScaleDown.Disabled = true
		runTimeline(t, sm, []timelineStep{{5 * time.Minute, 10, counts(15, 5, 0), 0}})
		spec.Behavior.ScaleDown.Disabled = false
		runTimeline(t, sm, []timelineStep{{6 * time.Minute, 10, counts(10, 10, 0), 120 * s}})
	})
	for _, c := range []struct {
		up, down bool
		want     v1alpha1.ScalingDirection
	}{{false, false, "Both"}, {true, false, "Down"}, {false, true, "Up"}, {true, true, "Neither"}} {
		b := v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{ScaleUp: v1alpha1.ScalingBehavior{Disabled: c.up}, ScaleDown: v1alpha1.ScalingBehavior{Disabled: c.down}}
		if got := AllowedScalingDirection(&b); got != c.want {
			t.Errorf("up disabled %v, down disabled %v: %s, want %s", c.up, c.down, got, c.want)
		}
	}
}

func TestPreview(t *testing.T) {
	spec := newSpec(1, 10, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 30, 50, 60))
	spec.ScaleMode = v1alpha1.ScaleModePreview
	sm := &sim{t: t, spec: spec}
	sm.run(-time.Hour, val(5))
	p := sm.run(0, val(2))
	if p.Apply || p.Target != (counts(2, 0, 0)) || p.Status.Gray != nil || p.RequeueAfter != 0 {
		t.Errorf("preview: apply %v target %+v gray %v requeue %v", p.Apply, p.Target, p.Status.Gray, p.RequeueAfter)
	}
	if p.Status.PreviousPortraitValue.Replicas != 5 || p.Status.CurrentPortraitValue.Replicas != 2 || p.Status.OnlineReplicas != 0 {
		t.Errorf("preview status: %+v", p.Status)
	}
	// Back to Auto without a ReplicaProfile: applied at once, there is nothing to change gradually.
	spec.ScaleMode = v1alpha1.ScaleModeAuto
	p = sm.run(10*s, val(8))
	if !p.Apply || p.Target != (counts(8, 0, 0)) || p.Status.Gray != nil {
		t.Errorf("auto again: apply %v target %+v gray %v", p.Apply, p.Target, p.Status.Gray)
	}
}

// A restarted controller re-runs from the persisted status and ReplicaProfile: it must land on the
// same step, without applying an extra batch.
func TestRestartResumesAtTheSameStep(t *testing.T) {
	spec := newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 30, 25, 60))
	sm := &sim{t: t, spec: spec}
	sm.run(-time.Hour, val(20))
	// A sub-second now is stored truncated; the wait must be counted from what is stored.
	for i, at := range []time.Duration{0, 30*s + 400*time.Millisecond, 61 * s, 91*s + 999*time.Millisecond} {
		first := sm.run(at, val(12))
		status, profile := sm.status, *sm.profile
		for _, later := range []time.Duration{0, 500 * time.Millisecond, first.RequeueAfter - time.Millisecond} {
			again := sm.run(at+later, val(12))
			if again.Target != first.Target || !again.Status.Gray.LastUpdateTime.Equal(&first.Status.Gray.LastUpdateTime) ||
				again.Status.Gray.GrayPercent != first.Status.Gray.GrayPercent {
				t.Errorf("step %d: re-run after %v gave %+v gray %+v, first run %+v gray %+v", i, later, again.Target, again.Status.Gray, first.Target, first.Status.Gray)
			}
			if want := first.RequeueAfter - later; again.RequeueAfter != want {
				t.Errorf("step %d: re-run after %v requeues after %v, want %v", i, later, again.RequeueAfter, want)
			}
			sm.status, sm.profile = status, &profile
		}
		if first.RequeueAfter <= 0 || first.RequeueAfter > 60*s {
			t.Errorf("step %d: requeue after %v", i, first.RequeueAfter)
		}
	}
	if sm.profile.Online != 12 {
		t.Errorf("after four 25%% batches the online target is %d, want 12", sm.profile.Online)
	}
}

// However the parameters are set, each batch moves at most ceil(diff × changePercent / 100) pods
// out of (or into) Online, and the change ends at the target with no pods left in a gray state.
func TestBatchBoundInvariant(t *testing.T) {
	for _, from := range []int32{0, 1, 2, 3, 7, 20, 101} {
		for _, to := range []int32{0, 1, 2, 5, 20, 100} {
			for _, pct := range []int32{1, 10, 33, 50, 99, 100} {
				for _, state := range []v1alpha1.PodState{v1alpha1.PodStateCutoff, v1alpha1.PodStateStandby, v1alpha1.PodStateDeleted} {
					for _, obs := range []int32{0, 30} {
						name := fmt.Sprintf("%d→%d %d%% %s obs %d", from, to, pct, state, obs)
						checkBatches(t, name, from, to, pct, state, obs)
					}
				}
			}
		}
	}
}

func checkBatches(t *testing.T, name string, from, to, pct int32, state v1alpha1.PodState, obs int32) {
	spec := newSpec(0, 1000, grayUp(10, pct, obs), grayDown(state, 10, pct, obs))
	sm := &sim{t: t, spec: spec}
	sm.run(-time.Hour, val(from))
	diff := abs(to - from)
	bound := (diff*pct + 99) / 100
	prev := podstate.Counts{Online: from}
	at := time.Duration(0)
	for i := 0; i < 200; i++ {
		p := sm.run(at, val(to))
		if d := abs(p.Target.Online - prev.Online); d > bound {
			t.Fatalf("%s: batch %d moved %d online pods (%+v → %+v), bound %d", name, i, d, prev, p.Target, bound)
		}
		if p.Target.Online < min(from, to) || p.Target.Online > max(from, to) {
			t.Fatalf("%s: online %d outside [%d, %d]", name, p.Target.Online, min(from, to), max(from, to))
		}
		if p.Target.Total() > max(from, to) {
			t.Fatalf("%s: %+v needs more pods than %d", name, p.Target, max(from, to))
		}
		prev = p.Target
		if p.RequeueAfter == 0 {
			if p.Target != (podstate.Counts{Online: to}) || p.Status.Gray != nil {
				t.Fatalf("%s: ended at %+v gray %v", name, p.Target, p.Status.Gray)
			}
			return
		}
		at += p.RequeueAfter
	}
	t.Fatalf("%s: did not finish", name)
}

func TestGrayStrategyAddedLater(t *testing.T) {
	// Kapacity dereferenced the nil gray status here.
	spec := newSpec(0, 100, v1alpha1.ScalingBehavior{}, v1alpha1.ScalingBehavior{})
	sm := &sim{t: t, spec: spec}
	sm.run(-time.Hour, val(20))
	sm.run(0, val(10))
	spec.Behavior.ScaleDown = grayDown(v1alpha1.PodStateCutoff, 10, 50, 10)
	p := sm.run(10*s, val(10))
	if p.Target != (counts(10, 0, 0)) || p.Status.Gray != nil {
		t.Errorf("got %+v gray %v", p.Target, p.Status.Gray)
	}
}

func TestComputeErrors(t *testing.T) {
	spec := newSpec(0, 10, v1alpha1.ScalingBehavior{}, v1alpha1.ScalingBehavior{})
	status := &v1alpha1.IntelligentHorizontalPodAutoscalerStatus{}
	for _, in := range []Input{
		{Spec: spec, Status: status},
		{Spec: spec, Status: status, Value: val(-1)},
		{Status: status, Value: val(1)},
	} {
		if _, err := Compute(in); err == nil || !strings.HasPrefix(err.Error(), "gray plan") {
			t.Errorf("Compute(%+v): error %v", in, err)
		}
	}
}

func TestComputeDoesNotModifyInput(t *testing.T) {
	spec := newSpec(0, 100, v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 10, 50, 10))
	status := &v1alpha1.IntelligentHorizontalPodAutoscalerStatus{CurrentPortraitValue: val(20), OnlineReplicas: 20,
		Conditions: []metav1.Condition{{Type: "ScalingActive", Status: metav1.ConditionTrue}}}
	before := status.DeepCopy()
	v := val(10)
	p, err := Compute(Input{Spec: spec, Status: status, Value: v, Profile: &podstate.Counts{Online: 20}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if status.CurrentPortraitValue.Replicas != before.CurrentPortraitValue.Replicas || status.Gray != nil || status.OnlineReplicas != 20 {
		t.Errorf("input status modified: %+v", status)
	}
	if p.Status.CurrentPortraitValue == v || len(p.Status.Conditions) != 1 {
		t.Errorf("next status aliases the input value or lost the conditions")
	}
}

// The status is written before the ReplicaProfile. When the profile write is lost (the manager is
// killed between the two, or the write fails) and the retry comes after changeIntervalSeconds,
// the plan must start from the profile in effect: one batch from it, not the batch after the one
// the status records (which moved 4 pods instead of 2 at 25 % of 8).
func TestLostProfileWriteMovesOneBatch(t *testing.T) {
	cases := []struct {
		name       string
		from, to   int32
		behavior   func(pct int32) (up, down v1alpha1.ScalingBehavior)
		wantFirst  podstate.Counts
		wantLate   podstate.Counts
		wantSecond podstate.Counts
	}{{
		name: "scale-down in Cutoff", from: 8, to: 0,
		behavior: func(pct int32) (v1alpha1.ScalingBehavior, v1alpha1.ScalingBehavior) {
			return v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateCutoff, 30, pct, 0)
		},
		wantFirst: counts(6, 2, 0), wantLate: counts(6, 2, 0), wantSecond: counts(4, 4, 0),
	}, {
		name: "scale-down in Standby", from: 8, to: 0,
		behavior: func(pct int32) (v1alpha1.ScalingBehavior, v1alpha1.ScalingBehavior) {
			return v1alpha1.ScalingBehavior{}, grayDown(v1alpha1.PodStateStandby, 30, pct, 0)
		},
		wantFirst: counts(6, 0, 2), wantLate: counts(6, 0, 2), wantSecond: counts(4, 0, 4),
	}, {
		name: "scale-up", from: 0, to: 8,
		behavior: func(pct int32) (v1alpha1.ScalingBehavior, v1alpha1.ScalingBehavior) {
			return grayUp(30, pct, 0), v1alpha1.ScalingBehavior{}
		},
		wantFirst: counts(2, 0, 0), wantLate: counts(2, 0, 0), wantSecond: counts(4, 0, 0),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up, down := tc.behavior(25)
			sm := &sim{t: t, spec: newSpec(0, 100, up, down)}
			sm.run(-time.Hour, val(tc.from))
			inEffect := *sm.profile
			if p := sm.run(0, val(tc.to)); p.Target != tc.wantFirst {
				t.Fatalf("first batch %+v, want %+v", p.Target, tc.wantFirst)
			}
			sm.profile = &inEffect // the profile write was lost
			late := sm.run(31*s, val(tc.to))
			if late.Target != tc.wantLate {
				t.Fatalf("retry after the interval planned %+v from the profile %+v, want %+v (%s)", late.Target, inEffect, tc.wantLate, late.Reason)
			}
			if late.RequeueAfter != 30*s {
				t.Errorf("the re-applied batch requeues after %v, want a full interval", late.RequeueAfter)
			}
			// The next batch waits a full interval from the re-applied one.
			if p := sm.run(31*s+29*s, val(tc.to)); p.Target != tc.wantLate {
				t.Errorf("before the interval: %+v, want %+v", p.Target, tc.wantLate)
			}
			if p := sm.run(61*s, val(tc.to)); p.Target != tc.wantSecond {
				t.Errorf("second batch %+v, want %+v (%s)", p.Target, tc.wantSecond, p.Reason)
			}
		})
	}
}

// Whatever writes are lost and however late the retries come, no plan moves more than one batch
// of online pods away from the ReplicaProfile in effect, a scale-down never asks for fewer pods
// than the target plus the pods still online, and the change still completes.
func TestOneBatchFromTheProfileInEffect(t *testing.T) {
	for _, from := range []int32{1, 3, 8, 20} {
		for _, to := range []int32{0, 2, 8, 25} {
			if from == to {
				continue
			}
			for _, pct := range []int32{10, 25, 50, 100} {
				for _, state := range []v1alpha1.PodState{v1alpha1.PodStateCutoff, v1alpha1.PodStateStandby, v1alpha1.PodStateDeleted} {
					for seed := int64(1); seed <= 3; seed++ {
						name := fmt.Sprintf("%d→%d %d%% %s seed %d", from, to, pct, state, seed)
						checkLossyBatches(t, name, from, to, pct, state, seed)
					}
				}
			}
		}
	}
}

func checkLossyBatches(t *testing.T, name string, from, to, pct int32, state v1alpha1.PodState, seed int64) {
	spec := newSpec(0, 1000, grayUp(10, pct, 5), grayDown(state, 10, pct, 5))
	sm := &sim{t: t, spec: spec}
	sm.run(-time.Hour, val(from))
	bound := BatchSize(abs(to-from), pct)
	rng := rand.New(rand.NewSource(seed))
	at := time.Duration(0)
	for i := 0; i < 500; i++ {
		inEffect := *sm.profile
		p := sm.run(at, val(to))
		if d := abs(p.Target.Online - inEffect.Online); d > bound {
			t.Fatalf("%s: reconcile %d moved %d online pods from the profile in effect (%+v → %+v), bound %d", name, i, d, inEffect, p.Target, bound)
		}
		if p.Target.Online < min(from, to) || p.Target.Online > max(from, to) {
			t.Fatalf("%s: online %d outside [%d, %d]", name, p.Target.Online, min(from, to), max(from, to))
		}
		if p.RequeueAfter == 0 && p.Target == (podstate.Counts{Online: to}) {
			return
		}
		// One write in three is lost, and one retry in two comes late (after the interval).
		if rng.Intn(3) == 0 {
			sm.profile = &inEffect
		}
		wait := p.RequeueAfter
		if wait == 0 || rng.Intn(2) == 0 {
			wait += time.Duration(rng.Intn(25)) * s
		}
		at += max(wait, time.Second)
	}
	t.Fatalf("%s: did not finish", name)
}

// counts is podstate.Counts{Online: online, Cutoff: cutoff, Standby: standby}, short for the tables.
func counts(online, cutoff, standby int32) podstate.Counts {
	return podstate.Counts{Online: online, Cutoff: cutoff, Standby: standby}
}
