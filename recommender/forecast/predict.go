package forecast

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Step is the sampling step of the model's freq.
func (m *Model) Step() time.Duration { return m.step }

// NumParams is the number of weights of the network.
func (m *Model) NumParams() int { return m.net.numParams() }

// Quantiles are the network's quantile heads.
func (m *Model) Quantiles() []float64 {
	if q := m.net.arch.Quantiles; len(q) > 0 {
		return q
	}
	return []float64{0.5}
}

// SeriesInfo returns what the model chose for the series id (nil for an unknown series or a version-1
// model, where the network forecasts every series).
func (m *Model) SeriesInfo(id string) *SeriesInfo { return m.Info[id] }

// Predict forecasts the PredictionLength values after history for the series id. history holds the
// series at the model's step and its last value is at time last; the network reads only the last
// ContextLength values, the seasonal baselines up to a few seasons. The forecast for step i (1-based) is
// at last + i·Step. Unknown series are an error, as in the reference.
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

// PredictBatch forecasts several windows in one pass (much faster than one Predict per window), each
// with its series' chosen method: the point forecast (the median of the network).
func (m *Model) PredictBatch(qs []Query) ([][]float64, error) { return m.PredictBatchQuantile(qs, 0) }

// PredictBatchQuantile forecasts the q-quantile (q in (0, 1)) of every window, or the point forecast
// with q = 0. The network's quantiles come from its heads, linearly interpolated between them and
// clamped to the outermost; another method's from its validation errors (SeriesInfo.Spread). A
// non-negative series never gets a negative value.
func (m *Model) PredictBatchQuantile(qs []Query, q float64) ([][]float64, error) {
	if q < 0 || q >= 1 || math.IsNaN(q) {
		return nil, fmt.Errorf("quantile %v: must be in (0, 1), or 0 for the point forecast", q)
	}
	return m.predict(qs, "", q)
}

// PredictMethod forecasts every window with the given method whatever the series chose (for
// benchmarks and for comparing methods).
func (m *Model) PredictMethod(qs []Query, method string) ([][]float64, error) {
	if !containsString(Methods, method) {
		return nil, fmt.Errorf("method %q is not one of %v", method, Methods)
	}
	return m.predict(qs, method, 0)
}

func (m *Model) predict(qs []Query, method string, q float64) ([][]float64, error) {
	p := m.Config.PredictionLength
	var netQs []Query
	netIdx := make([]int, len(qs))
	for i, qu := range qs {
		netIdx[i] = -1
		meth := method
		if meth == "" {
			meth = m.methodOf(qu.ID)
		}
		if needsNetwork(meth) {
			netIdx[i] = len(netQs)
			netQs = append(netQs, qu)
		} else if _, ok := m.Series[qu.ID]; !ok {
			return nil, m.unknown(qu.ID)
		}
		for j, v := range qu.History {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("series %q: history value %d is %v; fill gaps first", qu.ID, j, v)
			}
		}
	}
	nets, err := m.networkBatch(netQs)
	if err != nil {
		return nil, err
	}
	heads := m.Quantiles()
	res := make([][]float64, len(qs))
	for i, qu := range qs {
		info := m.info(qu.ID)
		meth := method
		if meth == "" {
			meth = info.Method
		}
		var all []float64
		if netIdx[i] >= 0 {
			all = nets[netIdx[i]]
		}
		var median []float64
		if all != nil {
			median = all[m.medianHead()*p : (m.medianHead()+1)*p]
		}
		out := info.methodForecast(meth, qu.History, p, median)
		if q > 0 {
			for j := range out {
				if meth == MethodNetwork {
					vs := make([]float64, len(heads))
					for k := range heads {
						vs[k] = all[k*p+j]
					}
					out[j] = interpolate(heads, vs, q)
				} else if len(info.Spread) == len(heads) {
					out[j] += interpolate(heads, info.Spread, q) * spreadBase(out[j], info.Scale)
				}
			}
		}
		if info.NonNegative {
			for j, v := range out {
				out[j] = math.Max(v, 0)
			}
		}
		res[i] = out
	}
	return res, nil
}

func (m *Model) unknown(id string) error {
	return fmt.Errorf("series %q is not in the model (trained on %d series); retrain with it", id, len(m.Series))
}

// methodOf is the series' chosen method; the network for a version-1 model.
func (m *Model) methodOf(id string) string { return m.info(id).Method }

// info is the series' SeriesInfo, or the version-1 behaviour: the network, no scale floor.
func (m *Model) info(id string) *SeriesInfo {
	if in, ok := m.Info[id]; ok {
		return in
	}
	return &SeriesInfo{Method: MethodNetwork}
}

// medianHead is the index of the 0.5 head (0 for a version-1 model).
func (m *Model) medianHead() int {
	for k, q := range m.net.arch.Quantiles {
		if q == 0.5 {
			return k
		}
	}
	return 0
}

// networkBatch runs the network on every query and returns, per query, the unscaled outputs of every
// head (head k's forecast at [k·P, (k+1)·P)), sorted across heads at each step so that quantiles never
// cross.
func (m *Model) networkBatch(qs []Query) ([][]float64, error) {
	a := m.net.arch
	c, p, k := a.ContextLength, a.PredictionLength, a.numHeads()
	samples := make([]*sample, len(qs))
	for i, q := range qs {
		idx, ok := m.Series[q.ID]
		if !ok {
			return nil, m.unknown(q.ID)
		}
		if len(q.History) < c {
			return nil, fmt.Errorf("series %q: %d history points, the model needs the last %d", q.ID, len(q.History), c)
		}
		s := Series{ID: q.ID, Step: m.step, Values: q.History[len(q.History)-c:],
			Start: q.Last.Add(-time.Duration(c-1) * m.step)}
		// makeSample needs room for the targets' timestamps only, not their values.
		s.Values = append(append([]float64(nil), s.Values...), make([]float64, p)...)
		samples[i] = makeSample(a, m.Features, idx, s, 0, false, m.info(q.ID).Scale)
	}
	const chunk = 256
	res := make([][]float64, len(samples))
	if len(samples) == 0 {
		return res, nil
	}
	bt := newBatch(a, min(chunk, len(samples)))
	o := a.outputs()
	col := make([]float64, k)
	for lo := 0; lo < len(samples); lo += chunk {
		part := samples[lo:min(lo+chunk, len(samples))]
		m.net.forward(part, bt)
		for i, s := range part {
			out := make([]float64, o)
			for j := range out {
				out[j] = bt.out[i*o+j] * s.scale
			}
			for j := 0; j < p; j++ {
				for h := 0; h < k; h++ {
					col[h] = out[h*p+j]
				}
				sort.Float64s(col)
				for h := 0; h < k; h++ {
					out[h*p+j] = col[h]
				}
			}
			res[lo+i] = out
		}
	}
	return res, nil
}

// HiddenSize is the network's hidden width (chosen from the data when the config said 0).
func (m *Model) HiddenSize() int { return m.net.arch.HiddenSize }
