package forecast

import (
	"fmt"
	"time"
)

// Step is the sampling step of the model's freq.
func (m *Model) Step() time.Duration { return m.step }

// NumParams is the number of weights.
func (m *Model) NumParams() int { return m.net.numParams() }

// Predict forecasts the PredictionLength values after history for the series id. history holds the
// series at the model's step and its last value is at time last; only the last ContextLength values are used.
// The forecast for step i (1-based) is at last + i·Step. Unknown series are an error, as in the reference.
func (m *Model) Predict(id string, history []float64, last time.Time) ([]float64, error) {
	out, err := m.PredictBatch([]Query{{ID: id, History: history, Last: last}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Query is one forecast request of PredictBatch.
type Query struct {
	ID      string
	History []float64
	Last    time.Time
}

// PredictBatch forecasts several windows in one pass (much faster than one Predict per window).
func (m *Model) PredictBatch(qs []Query) ([][]float64, error) {
	a := m.net.arch
	c, p := a.ContextLength, a.PredictionLength
	samples := make([]*sample, len(qs))
	for i, q := range qs {
		idx, ok := m.Series[q.ID]
		if !ok {
			return nil, fmt.Errorf("series %q is not in the model (trained on %d series); retrain with it", q.ID, len(m.Series))
		}
		if len(q.History) < c {
			return nil, fmt.Errorf("series %q: %d history points, the model needs the last %d", q.ID, len(q.History), c)
		}
		s := Series{ID: q.ID, Step: m.step, Values: q.History[len(q.History)-c:],
			Start: q.Last.Add(-time.Duration(c-1) * m.step)}
		// makeSample needs room for the targets' timestamps only, not their values.
		s.Values = append(append([]float64(nil), s.Values...), make([]float64, p)...)
		samples[i] = makeSample(a, m.Features, idx, s, 0, false)
	}
	const chunk = 256
	bt := newBatch(a, min(chunk, len(samples)))
	res := make([][]float64, len(samples))
	for lo := 0; lo < len(samples); lo += chunk {
		part := samples[lo:min(lo+chunk, len(samples))]
		m.net.forward(part, bt)
		for i, s := range part {
			out := make([]float64, p)
			for j := range out {
				out[j] = bt.out[i*p+j] * s.scale
			}
			res[lo+i] = out
		}
	}
	return res, nil
}
