// Package burst decides, from the last few samples of a workload's traffic, whether a burst is under
// way that the forecast did not expect and the running pods will not absorb, and how many replicas to
// scale to at once: the traffic projected one pod start-up ahead, at the target utilisation. It is a
// pure function of its input (no clock, no state), so a caller runs it at every sync and merges its
// answer with the other portraits (the larger wins); as the burst decays, so does the answer, and once
// the traffic is back inside the band it answers nothing.
//
// Robustness. The traffic level is the median of the last three samples and the growth rate the
// Theil–Sen slope (the median of the pairwise slopes) of the last few: one wild sample moves neither,
// so a lone spike triggers nothing, while a burst shows in two samples.
package burst

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Sample is one traffic observation.
type Sample struct {
	Time  time.Time
	Value float64
}

// BandPoint is the forecast's upper bound (e.g. its 0.9 quantile) from Time until the next point.
type BandPoint struct {
	Time  time.Time
	Upper float64
}

// Config describes the workload.
type Config struct {
	// PodCapacity is the traffic one pod serves at 100 % of its CPU request.
	PodCapacity float64
	// Target is the utilisation to scale to, in (0, 1].
	Target float64
	// StartupDelay is the time a new pod takes to serve: the projection's horizon.
	StartupDelay time.Duration
	// Margin is how far above the forecast band (a fraction of it) the level must be to count as a
	// burst; default 0.1.
	Margin float64
	// SlopeSamples is how many of the last samples the growth rate is measured on; default 5.
	SlopeSamples int
	// MinReplicas and MaxReplicas bound the answer (MaxReplicas 0: at most math.MaxInt32).
	MinReplicas, MaxReplicas int
}

// Input is what the caller observed.
type Input struct {
	// Samples are the recent traffic samples, oldest first (at least 3).
	Samples []Sample
	// Band is the forecast's upper bound over time, oldest first; empty when there is no forecast.
	Band []BandPoint
	// Current is the replicas serving now.
	Current int
}

// Decision is the outcome. Replicas is 0 when there is no burst.
type Decision struct {
	Replicas int
	// Burst tells whether a burst was detected; Reason says why (or why not) in words.
	Burst  bool
	Reason string
	// Level is the robust current traffic, Slope its growth per second, Projected the traffic one
	// start-up ahead.
	Level, Slope, Projected float64
}

const (
	defaultMargin       = 0.1
	defaultSlopeSamples = 5
	levelSamples        = 3
)

func (c Config) validate() error {
	switch {
	case !(c.PodCapacity > 0) || math.IsInf(c.PodCapacity, 0):
		return fmt.Errorf("burst: pod capacity must be a positive number, got %v", c.PodCapacity)
	case !(c.Target > 0 && c.Target <= 1):
		return fmt.Errorf("burst: target must be in (0, 1], got %v", c.Target)
	case c.StartupDelay < 0:
		return fmt.Errorf("burst: start-up delay must not be negative, got %v", c.StartupDelay)
	case c.Margin < 0 || math.IsNaN(c.Margin):
		return fmt.Errorf("burst: margin must not be negative, got %v", c.Margin)
	case c.SlopeSamples < 0 || c.SlopeSamples == 1 || c.SlopeSamples == 2:
		return fmt.Errorf("burst: slope samples must be at least 3 (or 0 for %d), got %d", defaultSlopeSamples, c.SlopeSamples)
	case c.MinReplicas < 0 || (c.MaxReplicas > 0 && c.MaxReplicas < c.MinReplicas):
		return fmt.Errorf("burst: replicas bounds %d..%d are invalid", c.MinReplicas, c.MaxReplicas)
	}
	return nil
}

// Decide returns the replicas a burst needs now, or a Decision with Replicas 0 and the reason there is
// none.
func Decide(in Input, cfg Config) (Decision, error) {
	if err := cfg.validate(); err != nil {
		return Decision{}, err
	}
	margin := cfg.Margin
	if margin == 0 {
		margin = defaultMargin
	}
	k := cfg.SlopeSamples
	if k == 0 {
		k = defaultSlopeSamples
	}
	n := len(in.Samples)
	if n < levelSamples {
		return Decision{Reason: fmt.Sprintf("%d samples, need %d", n, levelSamples)}, nil
	}
	for i, s := range in.Samples {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Value < 0 {
			return Decision{}, fmt.Errorf("burst: sample %d is %v; traffic must be a finite number ≥ 0", i, s.Value)
		}
		if i > 0 && !s.Time.After(in.Samples[i-1].Time) {
			return Decision{}, errors.New("burst: samples must be in strictly increasing time order")
		}
	}
	last := in.Samples[n-1]
	d := Decision{Level: median(values(in.Samples[n-levelSamples:]))}
	d.Slope = theilSen(in.Samples[max(0, n-k):])
	d.Projected = d.Level
	if d.Slope > 0 {
		d.Projected += d.Slope * cfg.StartupDelay.Seconds()
	}
	capacity := float64(in.Current) * cfg.PodCapacity
	upper, hasBand := bandAt(in.Band, last.Time)
	switch {
	case hasBand && d.Level > upper*(1+margin):
		d.Burst = true
		d.Reason = fmt.Sprintf("traffic %.4g is %.0f%% above the forecast's upper band %.4g", d.Level, 100*(d.Level/upper-1), upper)
	case d.Projected > capacity:
		d.Burst = true
		d.Reason = fmt.Sprintf("traffic %.4g growing %.3g/s reaches %.4g in %v, over the %d serving pods' capacity %.4g",
			d.Level, d.Slope, d.Projected, cfg.StartupDelay, in.Current, capacity)
	case hasBand:
		d.Reason = fmt.Sprintf("traffic %.4g is within the forecast band (upper %.4g) and the capacity %.4g", d.Level, upper, capacity)
	default:
		d.Reason = fmt.Sprintf("traffic %.4g, projected %.4g in %v, fits the capacity %.4g", d.Level, d.Projected, cfg.StartupDelay, capacity)
	}
	if !d.Burst {
		return d, nil
	}
	// The need is capped before it becomes an int: converting a float beyond the int range gives an
	// undefined (in practice the most negative) value, which would ask for the fewest pods.
	limit := float64(math.MaxInt32)
	if cfg.MaxReplicas > 0 {
		limit = min(limit, float64(cfg.MaxReplicas))
	}
	need := min(d.Projected/(cfg.PodCapacity*cfg.Target), limit)
	r := int(math.Ceil(need - 1e-9))
	r = max(r, cfg.MinReplicas, 1)
	if cfg.MaxReplicas > 0 {
		r = min(r, cfg.MaxReplicas)
	}
	d.Replicas = r
	return d, nil
}

// bandAt is the band's upper bound in force at t: the latest point at or before t.
func bandAt(band []BandPoint, t time.Time) (float64, bool) {
	i, found := slices.BinarySearchFunc(band, t, func(p BandPoint, t time.Time) int { return p.Time.Compare(t) })
	if !found {
		i--
	}
	if i < 0 || math.IsNaN(band[i].Upper) {
		return 0, false
	}
	return band[i].Upper, true
}

func values(s []Sample) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = v.Value
	}
	return out
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// theilSen is the median of the slopes (per second) between every pair of samples.
func theilSen(s []Sample) float64 {
	var slopes []float64
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			dt := s[j].Time.Sub(s[i].Time).Seconds()
			slopes = append(slopes, (s[j].Value-s[i].Value)/dt)
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}
