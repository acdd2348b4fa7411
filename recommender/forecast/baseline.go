package forecast

import (
	"time"

	"github.com/kapacitystack/kapacity/recommender/baseline"
)

// SeasonLength is baseline.SeasonLength: a week when the history holds two, else a day, else 1.
func SeasonLength(step time.Duration, n int) int { return baseline.SeasonLength(step, n) }

// SeasonalNaive is baseline.SeasonalNaive: repeat the last season.
func SeasonalNaive(history []float64, season, h int) []float64 {
	return baseline.SeasonalNaive(history, season, h)
}

// LastValue forecasts h copies of the last observation.
func LastValue(history []float64, h int) []float64 { return baseline.LastValue(history, h) }
