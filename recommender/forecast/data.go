package forecast

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Series is one regularly sampled series: Values[i] is the value at Start + i·Step.
type Series struct {
	// ID identifies the series in the model's series map. The reference concatenates the series columns
	// (workload, metric) without a separator; callers should build IDs with SeriesID to avoid collisions.
	ID     string
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// SeriesID joins the series columns (e.g. workload "ns/name" and metric name) into one key. Unlike the
// reference, which concatenates without a separator ("a"+"bc" == "ab"+"c"), it joins with a NUL byte.
func SeriesID(cols ...string) string {
	id := ""
	for i, c := range cols {
		if i > 0 {
			id += "\x00"
		}
		id += c
	}
	return id
}

// TimeAt is the timestamp of Values[i].
func (s Series) TimeAt(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }

// Regularize buckets irregular points onto the grid of step (aligned to the Unix epoch), averaging the
// points of a bucket and filling empty buckets with 0, as the reference does (resample(freq).mean().fillna(0)).
func Regularize(id string, times []time.Time, values []float64, step time.Duration) (Series, error) {
	if len(times) != len(values) {
		return Series{}, fmt.Errorf("regularize %q: %d timestamps but %d values", id, len(times), len(values))
	}
	if step <= 0 {
		return Series{}, fmt.Errorf("regularize %q: step must be positive, got %v", id, step)
	}
	if len(times) == 0 {
		return Series{ID: id, Step: step}, nil
	}
	idx := make([]int, len(times))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return times[idx[a]].Before(times[idx[b]]) })
	first := times[idx[0]].Truncate(step)
	last := times[idx[len(idx)-1]].Truncate(step)
	n := int(last.Sub(first)/step) + 1
	sum := make([]float64, n)
	cnt := make([]int, n)
	for _, i := range idx {
		if math.IsNaN(values[i]) {
			continue
		}
		b := int(times[i].Truncate(step).Sub(first) / step)
		sum[b] += values[i]
		cnt[b]++
	}
	for b := range sum {
		if cnt[b] > 0 {
			sum[b] /= float64(cnt[b])
		}
	}
	return Series{ID: id, Start: first, Step: step, Values: sum}, nil
}

// meanAbsScale is the reference's MeanScaler: mean |x| over the context, clamped to at least 1e-10.
func meanAbsScale(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += math.Abs(v)
	}
	s /= float64(len(x))
	return math.Max(s, 1e-10)
}

// makeSample builds the window of values[t : t+C] (and the P targets after it when withTarget).
func makeSample(a Arch, feats []TimeFeature, series int, s Series, t int, withTarget bool) *sample {
	c, p := a.ContextLength, a.PredictionLength
	ctx := s.Values[t : t+c]
	sc := meanAbsScale(ctx)
	smp := &sample{series: series, x: make([]float64, c), scale: sc}
	for i, v := range ctx {
		smp.x[i] = v / sc
	}
	if withTarget {
		smp.y = make([]float64, p)
		for i, v := range s.Values[t+c : t+c+p] {
			smp.y[i] = v / sc
		}
	}
	startT, endT := s.TimeAt(t+c), s.TimeAt(t+c+p-1)
	smp.start, smp.end = make([]int, len(feats)), make([]int, len(feats))
	for k, f := range feats {
		smp.start[k], smp.end[k] = f.index(startT), f.index(endT)
	}
	return smp
}
