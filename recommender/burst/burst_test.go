package burst

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// every15s turns values into samples 15 s apart.
func every15s(vs ...float64) []Sample {
	out := make([]Sample, len(vs))
	for i, v := range vs {
		out[i] = Sample{Time: t0.Add(time.Duration(i) * 15 * time.Second), Value: v}
	}
	return out
}

// flatBand is a forecast band with the given upper bound over the samples' span.
func flatBand(upper float64) []BandPoint {
	return []BandPoint{{Time: t0.Add(-time.Hour), Upper: upper}}
}

func TestDecide(t *testing.T) {
	// 10 requests/s per pod at 100 % (6 at the target), a 60 % target and pods that take a minute to serve.
	cfg := Config{PodCapacity: 10, Target: 0.6, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: 100}
	tests := []struct {
		name      string
		samples   []Sample
		band      []BandPoint
		current   int
		want      int // replicas; 0: no burst
		reasonHas string
	}{
		{"burst above the forecast band scales to the projected traffic at once",
			every15s(100, 100, 100, 300, 320), flatBand(150), 17, 91, // 300 growing 4.06/s: 543 in a minute, at 6 per pod
			"above the forecast's upper band"},
		{"lone spike is ignored", every15s(100, 100, 100, 100, 900), flatBand(150), 17, 0, "within the forecast band"},
		{"lone spike in the middle is ignored", every15s(100, 100, 900, 100, 100), flatBand(150), 17, 0, "within the forecast band"},
		{"slow ramp inside the band and the capacity", every15s(100, 101, 102, 103, 104), flatBand(150), 17, 0, "within the forecast band"},
		{"ramp crossing the capacity within the start-up delay, no forecast",
			every15s(100, 130, 160, 190, 220), nil, 25, 52, // 190 + 2/s × 60 s = 310, at 6 per pod
			"over the 25 serving pods' capacity"},
		{"ramp that stays under the capacity, no forecast", every15s(100, 101, 102, 103, 104), nil, 17, 0, "fits the capacity"},
		{"decaying burst follows the traffic down", every15s(400, 380, 300, 250, 200), flatBand(150), 60, 42, "above the forecast's upper band"},
		{"burst over: back inside the band", every15s(200, 160, 140, 130, 120), flatBand(150), 60, 0, "within the forecast band"},
		{"too few samples", every15s(100, 500), flatBand(150), 1, 0, "need 3"},
		{"answer capped at max replicas", every15s(100, 100, 5000, 5000, 5000), flatBand(150), 10, 100, "above"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(Input{Samples: tc.samples, Band: tc.band, Current: tc.current}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if d.Replicas != tc.want || d.Burst != (tc.want > 0) {
				t.Errorf("replicas %d (burst %v), want %d; %+v", d.Replicas, d.Burst, tc.want, d)
			}
			if !strings.Contains(d.Reason, tc.reasonHas) {
				t.Errorf("reason %q, want it to mention %q", d.Reason, tc.reasonHas)
			}
		})
	}
}

// TestProjection pins the arithmetic: level = median of the last three samples, slope = Theil–Sen,
// projected = level + slope × start-up delay.
func TestProjection(t *testing.T) {
	cfg := Config{PodCapacity: 10, Target: 0.5, StartupDelay: time.Minute}
	d, err := Decide(Input{Samples: every15s(100, 130, 160, 190, 220), Current: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Level 190 (median of 160, 190, 220), slope 2/s, projected 190 + 120 = 310 → 62 pods at 5 per pod.
	if d.Level != 190 || d.Slope != 2 || d.Projected != 310 || d.Replicas != 62 {
		t.Fatalf("got %+v, want level 190, slope 2, projected 310, 62 replicas", d)
	}
}

func TestDecideRejectsBadInput(t *testing.T) {
	good := Config{PodCapacity: 10, Target: 0.6, StartupDelay: time.Minute}
	tests := []struct {
		name string
		cfg  Config
		in   Input
		want string
	}{
		{"capacity", Config{Target: 0.6}, Input{}, "pod capacity"},
		{"target", Config{PodCapacity: 1, Target: 2}, Input{}, "target must be in (0, 1]"},
		{"bounds", Config{PodCapacity: 1, Target: 1, MinReplicas: 5, MaxReplicas: 2}, Input{}, "bounds"},
		{"NaN sample", good, Input{Samples: every15s(1, 2, -1)}, "sample 2"},
		{"unordered", good, Input{Samples: []Sample{{t0, 1}, {t0, 2}, {t0.Add(time.Second), 3}}}, "increasing time order"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decide(tc.in, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestDecideHugeTrafficIsCapped: traffic so large that the pods it needs do not fit an int asks for
// the most replicas allowed, never for the fewest (the float-to-int conversion overflowed).
func TestDecideHugeTrafficIsCapped(t *testing.T) {
	tests := []struct {
		name string
		max  int
		want int
	}{
		{"max replicas", 100, 100},
		{"unbounded: the largest int32", 0, 1<<31 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{PodCapacity: 1e-300, Target: 0.5, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: tc.max}
			d, err := Decide(Input{Samples: every15s(1e300, 1e300, 1e300, 1e300, 1e300), Current: 1}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if d.Replicas != tc.want {
				t.Fatalf("replicas %d, want %d; %+v", d.Replicas, tc.want, d)
			}
		})
	}
}
