// Package baseline holds the simple forecasters every learned model must beat, and that the forecaster
// falls back to, per series, when they did better on its validation window: seasonal-naive (repeat the
// last season), seasonal mean (the mean of the last few seasons at the same phase) and the Theta method
// (seasonally adjusted simple exponential smoothing with half the linear drift, the M3 competition's
// winner and a standard benchmark since). They are pure functions of the history: nothing is trained
// ahead of time, so a series can be forecast from any history that holds a season or two.
package baseline

import (
	"math"
	"time"
)

// SeasonLength picks the seasonal period for n points at step: one week when the history holds at least
// two full weeks (so the weekly pattern of traffic, e.g. weekends, is repeated from a like day), else one
// day when it holds two days, else 1 (last value). Traffic usually has both cycles and a weekly season is
// the stronger baseline when it can be used.
func SeasonLength(step time.Duration, n int) int {
	if step <= 0 {
		return 1
	}
	week, day := int(7*24*time.Hour/step), int(24*time.Hour/step)
	switch {
	case week >= 1 && n >= 2*week:
		return week
	case day >= 1 && n >= 2*day:
		return day
	}
	return 1
}

// DayLength is the number of steps in a day (at least 1).
func DayLength(step time.Duration) int {
	if step <= 0 {
		return 1
	}
	return max(1, int(24*time.Hour/step))
}

// SeasonalNaive forecasts h values after history by repeating the last season: ŷ_{T+i} = y_{T+i−m·⌈i/m⌉}.
// A season longer than the history falls back to the last value.
func SeasonalNaive(history []float64, season, h int) []float64 {
	out := make([]float64, h)
	n := len(history)
	if n == 0 {
		return out
	}
	if season < 1 || season > n {
		season = 1
	}
	for i := 1; i <= h; i++ {
		k := (i + season - 1) / season
		out[i-1] = history[n+i-1-season*k]
	}
	return out
}

// LastValue forecasts h copies of the last observation.
func LastValue(history []float64, h int) []float64 { return SeasonalNaive(history, 1, h) }

// SeasonalMean forecasts each step as the mean of the same phase over the last k seasons the history
// holds (at least one): seasonal-naive with the noise of a single season averaged out.
func SeasonalMean(history []float64, season, k, h int) []float64 {
	n := len(history)
	if n == 0 {
		return make([]float64, h)
	}
	if season < 1 || season > n {
		season = 1
	}
	k = max(1, min(k, n/season))
	out := make([]float64, h)
	for i := 1; i <= h; i++ {
		// The phase of step T+i, seen in the last season of the history.
		base := n + i - 1 - season*((i+season-1)/season)
		s, c := 0.0, 0
		for j := 0; j < k; j++ {
			if idx := base - j*season; idx >= 0 {
				s += history[idx]
				c++
			}
		}
		out[i-1] = s / float64(c)
	}
	return out
}

// Theta forecasts h values after history with the standard Theta method (Assimakopoulos & Nikolopoulos
// 2000, as R's forecast::thetaf): the history is seasonally adjusted by classical decomposition with
// period season (multiplicative when every value is positive, additive otherwise; skipped when the history
// holds fewer than two seasons), smoothed by simple exponential smoothing with the α that minimises the
// in-sample one-step error, extended with half the slope of its linear trend, and re-seasonalized.
// Only the last maxSeasons seasons (at least 200 points) are used: older history adapts more slowly to
// level shifts and costs time.
func Theta(history []float64, season, h int) []float64 {
	const maxSeasons = 6
	y := history
	if keep := max(maxSeasons*season, 200); len(y) > keep {
		y = y[len(y)-keep:]
	}
	n := len(y)
	out := make([]float64, h)
	if n == 0 {
		return out
	}
	if n < 3 {
		for i := range out {
			out[i] = y[n-1]
		}
		return out
	}
	idx, mult := seasonalIndices(y, season)
	des := make([]float64, n)
	for i, v := range y {
		des[i] = deseason(v, idx, i, mult)
	}
	alpha, level := sesFit(des)
	slope := olsSlope(des)
	drift := 1/alpha - math.Pow(1-alpha, float64(n))/alpha
	for i := 1; i <= h; i++ {
		v := level + 0.5*slope*(float64(i-1)+drift)
		out[i-1] = reseason(v, idx, n+i-1, mult)
	}
	return out
}

func deseason(v float64, idx []float64, i int, mult bool) float64 {
	if idx == nil {
		return v
	}
	if mult {
		return v / idx[i%len(idx)]
	}
	return v - idx[i%len(idx)]
}

func reseason(v float64, idx []float64, i int, mult bool) float64 {
	if idx == nil {
		return v
	}
	if mult {
		return v * idx[i%len(idx)]
	}
	return v + idx[i%len(idx)]
}

// seasonalIndices is the classical decomposition's seasonal component of y with period m, indexed by
// position mod m: the mean ratio (or difference) of y to its centred moving average at each phase,
// normalised to mean 1 (or 0). nil when m < 2 or y holds fewer than two seasons.
func seasonalIndices(y []float64, m int) (idx []float64, mult bool) {
	n := len(y)
	if m < 2 || n < 2*m {
		return nil, false
	}
	mult = true
	for _, v := range y {
		if !(v > 0) {
			mult = false
			break
		}
	}
	// Centred moving average of order m (2×m when m is even), by prefix sums.
	prefix := make([]float64, n+1)
	for i, v := range y {
		prefix[i+1] = prefix[i] + v
	}
	half := m / 2
	sum := make([]float64, m)
	cnt := make([]int, m)
	for t := half; t+half < n; t++ {
		var ma float64
		if m%2 == 1 {
			ma = (prefix[t+half+1] - prefix[t-half]) / float64(m)
		} else {
			a := prefix[t+half] - prefix[t-half]     // y[t-half .. t+half-1]
			b := prefix[t+half+1] - prefix[t-half+1] // y[t-half+1 .. t+half]
			ma = (a + b) / float64(2*m)
		}
		if mult {
			if ma <= 0 {
				continue
			}
			sum[t%m] += y[t] / ma
		} else {
			sum[t%m] += y[t] - ma
		}
		cnt[t%m]++
	}
	idx = make([]float64, m)
	mean := 0.0
	for p := range idx {
		switch {
		case cnt[p] > 0:
			idx[p] = sum[p] / float64(cnt[p])
		case mult:
			idx[p] = 1
		}
		mean += idx[p]
	}
	mean /= float64(m)
	for p := range idx {
		if mult {
			if mean > 0 {
				idx[p] /= mean
			}
			// A phase index near 0 would blow the de-seasonalized series up; bound it.
			idx[p] = math.Max(idx[p], 0.05)
		} else {
			idx[p] -= mean
		}
	}
	return idx, mult
}

// sesFit fits simple exponential smoothing (level only, starting at y[0]) by a grid search over α for the
// smallest sum of squared one-step errors, refined once around the best; it returns α and the final level.
func sesFit(y []float64) (alpha, level float64) {
	sse := func(a float64) (float64, float64) {
		l, s := y[0], 0.0
		for _, v := range y[1:] {
			e := v - l
			s += e * e
			l += a * e
		}
		return s, l
	}
	best, bestSSE := 0.5, math.Inf(1)
	for a := 0.05; a <= 1.0001; a += 0.05 {
		if s, _ := sse(a); s < bestSSE {
			best, bestSSE = a, s
		}
	}
	for a := math.Max(best-0.045, 0.01); a <= math.Min(best+0.045, 1); a += 0.005 {
		if s, _ := sse(a); s < bestSSE {
			best, bestSSE = a, s
		}
	}
	_, level = sse(best)
	return best, level
}

// olsSlope is the least-squares slope of y against its index.
func olsSlope(y []float64) float64 {
	n := float64(len(y))
	mt := (n - 1) / 2
	my := 0.0
	for _, v := range y {
		my += v
	}
	my /= n
	var sty, stt float64
	for i, v := range y {
		d := float64(i) - mt
		sty += d * (v - my)
		stt += d * d
	}
	if stt == 0 {
		return 0
	}
	return sty / stt
}
