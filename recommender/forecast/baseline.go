package forecast

import "time"

// SeasonLength picks the seasonal-naive period for n training points at step: one week when the history
// holds at least two full weeks (so the weekly pattern of traffic, e.g. weekends, is repeated from a like day),
// else one day when it holds two days, else 1 (last value). Traffic usually has both cycles and a weekly
// season is the stronger baseline when it can be used.
func SeasonLength(step time.Duration, n int) int {
	week, day := int(7*24*time.Hour/step), int(24*time.Hour/step)
	switch {
	case week >= 1 && n >= 2*week:
		return week
	case day >= 1 && n >= 2*day:
		return day
	}
	return 1
}

// SeasonalNaive forecasts h values after history by repeating the last season: ŷ_{T+i} = y_{T+i−m·⌈i/m⌉}.
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
