package baseline

import (
	"math"
	"testing"
	"time"
)

func TestSeasonalBaselines(t *testing.T) {
	hist := []float64{1, 2, 3, 4, 5, 6}
	tests := []struct {
		name string
		got  []float64
		want []float64
	}{
		{"last value", LastValue(hist, 3), []float64{6, 6, 6}},
		{"seasonal naive, season 3", SeasonalNaive(hist, 3, 4), []float64{4, 5, 6, 4}},
		{"season longer than history", SeasonalNaive(hist, 10, 2), []float64{6, 6}},
		{"seasonal mean of two seasons", SeasonalMean(hist, 3, 4, 4), []float64{2.5, 3.5, 4.5, 2.5}},
		{"seasonal mean of one season", SeasonalMean(hist, 3, 1, 2), []float64{4, 5}},
		{"empty history", SeasonalMean(nil, 3, 2, 2), []float64{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.got) != len(tc.want) {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
			for i := range tc.want {
				if math.Abs(tc.got[i]-tc.want[i]) > 1e-12 {
					t.Fatalf("got %v, want %v", tc.got, tc.want)
				}
			}
		})
	}
}

// TestThetaFollowsLevelTrendAndSeason checks the Theta method on series whose future is known: a
// seasonal series (multiplicative and, with zeros, additive) keeps its shape, a trend goes on (Theta
// extends half the fitted slope: the damped trend of the M3 benchmark), a level shift is followed.
func TestThetaFollowsLevelTrendAndSeason(t *testing.T) {
	const m, h = 24, 48
	shape := func(i int) float64 { return 1 + 0.5*math.Sin(2*math.Pi*float64(i)/m) }
	tests := []struct {
		name    string
		gen     func(i int) float64
		maxErr  float64 // the largest relative error allowed over the horizon
		wantUp  bool    // the forecast must rise over the horizon
		minLast float64 // the last forecast step must be at least this
	}{
		{"multiplicative season", func(i int) float64 { return 100 * shape(i) }, 0.01, false, 0},
		{"additive season with zeros", func(i int) float64 { return math.Max(0, 50*math.Sin(2*math.Pi*float64(i)/m)) }, 0.02, false, 0},
		{"linear trend", func(i int) float64 { return 100 + float64(i) }, 0.2, true, 100 + 7*m},
		{"level shift", func(i int) float64 {
			if i >= 6*m-10 {
				return 300
			}
			return 100
		}, 0.2, false, 270}, // the step also tilts the fitted slope: Theta overshoots a little
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 7 * m
			hist := make([]float64, n)
			for i := range hist {
				hist[i] = tc.gen(i)
			}
			f := Theta(hist, m, h)
			for i, v := range f {
				want := tc.gen(n + i)
				if tc.name == "linear trend" {
					continue
				}
				if math.Abs(v-want) > tc.maxErr*math.Max(math.Abs(want), 50) {
					t.Fatalf("step %d: forecast %v, want %v (±%g)", i+1, v, want, tc.maxErr)
				}
			}
			if tc.wantUp && !(f[h-1] > f[0] && f[0] > hist[n-1]-2) {
				t.Errorf("trend not extended: first %v, last %v, last observed %v", f[0], f[h-1], hist[n-1])
			}
			if f[h-1] < tc.minLast {
				t.Errorf("last step %v, want at least %v", f[h-1], tc.minLast)
			}
		})
	}
}

func TestSeasonLength(t *testing.T) {
	for _, tc := range []struct {
		step time.Duration
		n    int
		want int
	}{{time.Hour, 400, 168}, {time.Hour, 100, 24}, {time.Hour, 30, 1}, {5 * time.Minute, 4000, 288}, {0, 10, 1}} {
		if got := SeasonLength(tc.step, tc.n); got != tc.want {
			t.Errorf("SeasonLength(%v, %d) = %d, want %d", tc.step, tc.n, got, tc.want)
		}
	}
}
