package replay

import (
	"fmt"
	"math"

	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// calibration scales the forecast of each horizon step up to a chosen quantile of what actually came.
// The forecaster minimises absolute error, so it forecasts the median; traffic is right-skewed, so the
// median sits under the mean and a portrait built on it is short of pods about half the time. The
// factors are measured on the held-out tail of the training part (the forecaster's own validation split).
type calibration []float64

// maxCalibration bounds a factor: a forecaster that far off needs retraining, not a multiplier.
const maxCalibration = 5

func calibrate(m *forecast.Model, tr Trace, trainEnd int, q float64) (calibration, error) {
	p, c := m.Config.PredictionLength, m.Config.ContextLength
	from := trainEnd - max(int(m.Config.ValidationFraction*float64(trainEnd)), 4*p)
	from = max(from, c)
	var qs []forecast.Query
	var origins []int
	for o := from; o+p <= trainEnd; o += max(p/4, 1) {
		qs = append(qs, forecast.Query{ID: tr.Name, History: tr.Values[:o], Last: tr.TimeAt(o - 1)})
		origins = append(origins, o)
	}
	if len(qs) < 10 {
		return nil, fmt.Errorf("calibration: only %d forecast windows in the training tail; give a longer trace or a larger --train-fraction", len(qs))
	}
	preds, err := m.PredictBatch(qs)
	if err != nil {
		return nil, fmt.Errorf("calibration forecasts: %w", err)
	}
	mean := 0.0
	for _, v := range tr.Values[:trainEnd] {
		mean += v
	}
	mean /= float64(trainEnd)
	factors := make(calibration, p)
	for h := range p {
		var ratios []float64
		for k, pred := range preds {
			if f := pred[h]; f > 0.01*mean {
				ratios = append(ratios, tr.Values[origins[k]+h]/f)
			}
		}
		factors[h] = 1
		if len(ratios) > 0 {
			factors[h] = math.Min(math.Max(quantile(ratios, q), 0), maxCalibration)
		}
	}
	return factors, nil
}

func (c calibration) apply(h int, v float64) float64 {
	if h < len(c) {
		return v * c[h]
	}
	return v
}
