package replay

import (
	"math"
	"testing"
)

// TestTunedHPAInterpolatesOnTheFrontier pins how a policy is priced against the HPA: the frontier keeps
// the HPA points no other beats on cost and minutes over 100 %, and the tuned HPA's replica-hours at a
// policy's minutes over 100 % are interpolated between its neighbours, or bounded when the sweep does
// not reach that far.
func TestTunedHPAInterpolatesOnTheFrontier(t *testing.T) {
	hpa := []ParetoPoint{
		{HPATarget: 0.9, ReplicaHours: 100, MinutesOver100: 50},
		{HPATarget: 0.6, ReplicaHours: 150, MinutesOver100: 20},
		{HPATarget: 0.5, ReplicaHours: 160, MinutesOver100: 25}, // dominated: costlier and more overloads
		{HPATarget: 0.3, ReplicaHours: 300, MinutesOver100: 0},
		{HPATarget: 0.2, ReplicaHours: 450, MinutesOver100: 0}, // dominated: costlier for the same
	}
	front := frontier(hpa)
	if len(front) != 3 || front[0].HPATarget != 0.9 || front[1].HPATarget != 0.6 || front[2].HPATarget != 0.3 {
		t.Fatalf("frontier %+v, want the 90%%, 60%% and 30%% targets", front)
	}
	for _, tc := range []struct {
		over100   float64
		want      float64
		wantBound string
	}{
		{50, 100, ""},
		{35, 125, ""}, // halfway between 50 and 20 minutes: halfway between 100 and 150 replica-hours
		{10, 225, ""},
		{0, 300, ""},
		{80, 100, "at-most"}, // more overloads than the cheapest swept HPA: a higher target might be cheaper
	} {
		got, bound := tunedHPA(front, tc.over100)
		if math.Abs(got-tc.want) > 1e-9 || bound != tc.wantBound {
			t.Errorf("tuned HPA at %v min over 100%%: %v (%q), want %v (%q)", tc.over100, got, bound, tc.want, tc.wantBound)
		}
	}
	// No swept HPA reaches fewer overloads than its most careful point: the true cost is higher.
	if got, bound := tunedHPA(frontier(hpa[:2]), 5); got != 150 || bound != "at-least" {
		t.Errorf("below the sweep: %v (%q), want 150 (at-least)", got, bound)
	}
	within := 0.2
	pts := []ParetoPoint{
		{Policy: "a", SavingVsTunedHPA: 0.4, OverTargetVsHPA: of(0.5)},
		{Policy: "b", SavingVsTunedHPA: 0.3, OverTargetVsHPA: &within},
		{Policy: "c", SavingVsTunedHPA: 0.1, OverTargetVsHPA: of(0.1)},
	}
	if b := best(pts); b == nil || b.Policy != "b" {
		t.Errorf("best %+v, want b: the largest saving within the violation goal", b)
	}
}
