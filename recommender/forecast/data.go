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
// points of a bucket. A bucket without a point is NaN: a gap, which FillGaps reports and fills. (The
// reference fills gaps with 0, which turns a scrape outage into a traffic collapse the model learns.)
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
	if n > MaxSeriesPoints {
		return Series{}, fmt.Errorf("regularize %q: %s .. %s at %v is %d steps, more than the limit of %d; use a longer step or a shorter span",
			id, first.Format(time.RFC3339), last.Format(time.RFC3339), step, n, MaxSeriesPoints)
	}
	sum := make([]float64, n)
	cnt := make([]int, n)
	for _, i := range idx {
		if math.IsNaN(values[i]) || math.IsInf(values[i], 0) {
			continue
		}
		b := int(times[i].Truncate(step).Sub(first) / step)
		sum[b] += values[i]
		cnt[b]++
	}
	for b := range sum {
		if cnt[b] > 0 {
			sum[b] /= float64(cnt[b])
		} else {
			sum[b] = math.NaN()
		}
	}
	return Series{ID: id, Start: first, Step: step, Values: sum}, nil
}

// MaxSeriesPoints bounds a regularized series (10 years of 5-minute steps): a typo in the step or a stray
// timestamp must not allocate gigabytes.
const MaxSeriesPoints = 1_100_000

// FillRule says how FillGaps fills missing steps.
type FillRule string

// The fill rules. Interpolation suits traffic (a gap is a scrape outage, not a lull); zero is for counters
// that truly report nothing when idle, and only when asked for.
const (
	FillLinear  FillRule = "linear"
	FillForward FillRule = "forward"
	FillZero    FillRule = "zero"
)

// ParseFillRule reads a --fill value.
func ParseFillRule(s string) (FillRule, error) {
	switch r := FillRule(s); r {
	case FillLinear, FillForward, FillZero:
		return r, nil
	}
	return "", fmt.Errorf("fill rule %q: choose linear (interpolate), forward (repeat the last value) or zero", s)
}

// MaxGapFraction is the largest share of missing steps a series may have: beyond it the series is more
// invention than measurement, and it is refused.
const MaxGapFraction = 0.5

// Gaps describes the missing steps of a series.
type Gaps struct {
	Missing, Total int
	// Longest is the longest run of consecutive missing steps.
	Longest int
}

// Fraction is the share of missing steps.
func (g Gaps) Fraction() float64 {
	if g.Total == 0 {
		return 0
	}
	return float64(g.Missing) / float64(g.Total)
}

// FillGaps fills the NaN steps of values in place by rule and reports them. Leading gaps take the first
// observed value, trailing ones the last (whatever the rule, except zero). A series with no value at all,
// or with more than MaxGapFraction missing, is an error naming the figures.
func FillGaps(values []float64, rule FillRule) (Gaps, error) {
	g := Gaps{Total: len(values)}
	run := 0
	for _, v := range values {
		if math.IsNaN(v) {
			g.Missing++
			run++
			g.Longest = max(g.Longest, run)
		} else {
			run = 0
		}
	}
	if g.Missing == 0 {
		return g, nil
	}
	if g.Missing == g.Total {
		return g, fmt.Errorf("all %d steps are missing", g.Total)
	}
	if g.Fraction() > MaxGapFraction {
		return g, fmt.Errorf("%d of %d steps (%.0f%%) are missing, more than the %.0f%% allowed (longest gap %d steps); check the step or the source, or give a span with data",
			g.Missing, g.Total, 100*g.Fraction(), 100*MaxGapFraction, g.Longest)
	}
	prev := -1 // index of the last observed value
	for i := 0; i <= len(values); i++ {
		if i < len(values) && math.IsNaN(values[i]) {
			continue
		}
		// values[prev+1 .. i-1] are missing, between observations prev and i (either may be absent).
		for j := prev + 1; j < i; j++ {
			switch {
			case rule == FillZero:
				values[j] = 0
			case prev < 0:
				values[j] = values[i]
			case i == len(values) || rule == FillForward:
				values[j] = values[prev]
			default:
				f := float64(j-prev) / float64(i-prev)
				values[j] = values[prev] + f*(values[i]-values[prev])
			}
		}
		prev = i
	}
	return g, nil
}

// scaleFloorFraction of a series' mean |value| is the smallest scale a window gets: a window of zeros
// (a quiet night, an outage) otherwise divides its targets by ~0 and blows the loss up.
const scaleFloorFraction = 0.1

// meanAbs is the mean |x|.
func meanAbs(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += math.Abs(v)
	}
	return s / float64(max(len(x), 1))
}

// windowScale is the reference's MeanScaler (mean |x| over the context) with a floor of a fraction of the
// series' own mean |value| (DeepAR-style robust scaling), and 1e-10 when even that is 0.
func windowScale(ctx []float64, seriesScale float64) float64 {
	return math.Max(math.Max(meanAbs(ctx), scaleFloorFraction*seriesScale), 1e-10)
}

// makeSample builds the window of values[t : t+C] (and the P targets after it when withTarget), scaled
// by windowScale with the series' scale seriesScale.
func makeSample(a Arch, feats []TimeFeature, series int, s Series, t int, withTarget bool, seriesScale float64) *sample {
	c, p := a.ContextLength, a.PredictionLength
	ctx := s.Values[t : t+c]
	sc := windowScale(ctx, seriesScale)
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
