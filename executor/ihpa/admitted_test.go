package ihpa

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/executor/podstate"
)

// FuzzAdmittedSpecNeverFailsPlanning: an object that passes admission never makes the controller
// fail. Whatever the fuzzer builds, if the IHPA (and the portrait data of its Dynamic provider)
// passes validation, evaluating every provider, merging them and planning the gray change from a
// previous value must neither error nor panic, and the plan must stay within the spec's bounds.
func FuzzAdmittedSpecNeverFailsPlanning(f *testing.F) {
	f.Add(int32(1), int32(10), int32(2), "0 8 * * *", "0 9 * * *", "Asia/Shanghai", int32(5), int32(50), int32(30), int32(60), uint8(0),
		int64(1_700_000_000), int64(1_700_003_600), int32(3), int32(4), int64(1_700_001_000), int32(8), int32(6))
	f.Add(int32(0), int32(0), int32(0), "TZ=UTC", "@daily", "", int32(0), int32(1), int32(1), int32(0), uint8(1),
		int64(0), int64(1), int32(0), int32(1), int64(0), int32(0), int32(0))
	f.Add(int32(2), int32(1000), int32(1000), "CRON_TZ=Asia/Tokyo 0 0 * * *", "@every 1s", "America/Sao_Paulo", int32(999), int32(100), int32(2147483647), int32(2147483647), uint8(2),
		int64(9_000_000_000), int64(9_000_000_001), int32(2147483647), int32(1), int64(9_000_000_000), int32(2147483647), int32(2147483647))
	f.Fuzz(func(t *testing.T, minR, maxR, static int32, start, end, tz string, cronReplicas, pct, interval, obs int32, downState uint8,
		ts1, ts2 int64, r1, r2 int32, nowUnix int64, profileOnline, prevReplicas int32) {
		states := []v1alpha1.PodState{v1alpha1.PodStateCutoff, v1alpha1.PodStateStandby, v1alpha1.PodStateDeleted}
		a := &v1alpha1.IntelligentHorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Namespace: "ns"},
			Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MinReplicas:    minR, MaxReplicas: maxR,
				PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
					{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 0, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: static}},
					{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 1, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
						{Name: "c", TimeZone: tz, Start: start, End: end, Replicas: cronReplicas},
					}}},
					{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 2, Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{
						PortraitType: v1alpha1.PredictivePortraitType, Algorithm: v1alpha1.PortraitAlgorithm{Type: "Prophet"},
					}}},
				},
				Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{
					ScaleUp: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
						GrayState: v1alpha1.PodStateOnline, ChangePercent: pct, ChangeIntervalSeconds: interval, ObservationSeconds: obs}},
					ScaleDown: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
						GrayState: states[int(downState)%len(states)], ChangePercent: pct, ChangeIntervalSeconds: interval, ObservationSeconds: obs}},
				},
			},
		}
		data := &v1alpha1.HorizontalPortraitData{Type: v1alpha1.TimeSeriesHorizontalPortraitDataType, TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{
			TimeSeries: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: ts1, Replicas: r1}, {Timestamp: ts2, Replicas: r2}},
		}}
		a.Default()
		if len(a.Validate()) > 0 || len(data.Validate(field.NewPath("status", "portraitData"))) > 0 {
			return // refused at admission
		}
		if nowUnix < 0 || nowUnix > 1<<40 || profileOnline < 0 || prevReplicas < 0 {
			return // not a state the cluster can be in
		}
		now := time.Unix(nowUnix, 0).UTC()

		var candidates []portrait.Candidate
		for i := range a.Spec.PortraitProviders {
			p := &a.Spec.PortraitProviders[i]
			ev, err := portrait.Evaluate(p, data, now)
			if err != nil {
				t.Fatalf("provider %d of an admitted spec failed: %v", i, err)
			}
			candidates = append(candidates, portrait.Candidate{Priority: p.Priority, Evaluation: ev})
		}
		merged := portrait.Merge(candidates, now)
		if merged.Value == nil {
			return
		}
		// The controller's previous run left a value and a profile; this run plans from them, then
		// again one interval later.
		prev := &v1alpha1.HorizontalPortraitValue{Provider: "Static", Replicas: prevReplicas}
		status := v1alpha1.IntelligentHorizontalPodAutoscalerStatus{CurrentPortraitValue: prev, OnlineReplicas: profileOnline}
		profile := &podstate.Counts{Online: profileOnline}
		for step := 0; step < 3; step++ {
			plan, err := gray.Compute(gray.Input{Spec: &a.Spec, Status: &status, Value: merged.Value, Profile: profile, Now: now})
			if err != nil {
				t.Fatalf("planning an admitted spec failed: %v", err)
			}
			lo, hi := min(profile.Online, plan.Desired), max(profile.Online, plan.Desired)
			if plan.Target.Online < lo || plan.Target.Online > hi || plan.Target.Cutoff < 0 || plan.Target.Standby < 0 {
				t.Fatalf("plan %+v from profile %+v to %d leaves the bounds", plan.Target, *profile, plan.Desired)
			}
			status, profile = plan.Status, &plan.Target
			now = now.Add(plan.RequeueAfter + time.Second)
		}
	})
}
