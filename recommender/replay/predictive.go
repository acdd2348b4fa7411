package replay

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kapacitystack/kapacity/recommender/burst"
	"github.com/kapacitystack/kapacity/recommender/estimator"
	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// PredictiveConfig is Kapacity's predictive portrait as the quick-start runs it.
type PredictiveConfig struct {
	// TrainFraction of the trace trains the forecaster and the estimator; the rest is replayed.
	TrainFraction float64
	// Forecast is the forecaster's training configuration; Freq must be the trace's step.
	Forecast forecast.Config
	// Estimator is the replica estimator's options (--re-* flags).
	Estimator estimator.Options
	// JobInterval is the CronJob's schedule period (the sample runs every 30 minutes); each run replaces
	// the portrait.
	JobInterval time.Duration
	// ScalingFreq is --scaling-freq: the replica series is resampled to it, keeping each bucket's max.
	ScalingFreq time.Duration
	// ScaleUpAhead is --scale-up-ahead-seconds.
	ScaleUpAhead time.Duration
	// ForecastQuantile, when in (0, 1), sizes the portrait for this quantile of the forecast traffic
	// (the network's quantile heads, or the chosen baseline's validation errors); 0 uses the point
	// forecast, as Kapacity does.
	ForecastQuantile float64
	// BandQuantile is the forecast quantile the burst policy compares the traffic with (its upper band).
	BandQuantile float64
}

// DefaultForecastConfig sizes the forecaster for a trace step: 12 steps ahead from six hours of context
// (one day at steps of 20 minutes or more); the calendar embeddings carry the longer cycles.
func DefaultForecastConfig(step time.Duration, seed uint64) forecast.Config {
	c := forecast.DefaultConfig()
	c.Freq = freqString(step)
	c.PredictionLength = 12
	c.ContextLength = int(6 * time.Hour / step)
	if step >= 20*time.Minute {
		c.ContextLength = int(24 * time.Hour / step)
	}
	c.ContextLength = min(max(c.ContextLength, 8), 288)
	c.Epochs, c.Patience, c.SamplesPerEpoch = 40, 6, 4096
	c.Seed = seed
	return c
}

// freqString writes step in the forecaster's pandas-like syntax.
func freqString(step time.Duration) string {
	switch {
	case step%(24*time.Hour) == 0:
		return fmt.Sprintf("%dD", step/(24*time.Hour))
	case step%time.Hour == 0:
		return fmt.Sprintf("%dH", step/time.Hour)
	case step%time.Minute == 0:
		return fmt.Sprintf("%dmin", step/time.Minute)
	}
	return fmt.Sprintf("%ds", step/time.Second)
}

// portraitRun is one job's result: a replica time series, valid until expire, and the forecast's upper
// band (in pods' worth of CPU) for the burst policy.
type portraitRun struct {
	at     time.Time
	points []estimator.Point
	band   []burst.BandPoint
	expire time.Time
}

// predictivePortrait is every job run of the replayed span, computed up front: the forecasts depend on
// the trace only, never on what a policy did.
type predictivePortrait struct {
	runs []portraitRun
	// Failed counts the runs whose estimation failed (the previous portrait then stays in effect).
	failed int
}

// fitEstimator fits the replica estimator on the training part as a cluster would have recorded it:
// the traffic, the ready replicas the native HPA kept and the CPU they used, per trace step.
func fitEstimator(tr Trace, trainEnd int, samples []estimator.Sample, opts estimator.Options) (*estimator.Estimator, error) {
	if len(samples) == 0 {
		return nil, errors.New("no training samples")
	}
	est, err := estimator.Fit(samples, opts)
	if err != nil {
		return nil, fmt.Errorf("replica estimator on the first %d points of %q: %w", trainEnd, tr.Name, err)
	}
	return est, nil
}

// jobQueries are the forecasts the job makes at every JobInterval from start to the end of the trace.
func jobQueries(tr Trace, start time.Time, m *forecast.Model, cfg PredictiveConfig) (qs []forecast.Query, runAt []time.Time) {
	first := start.Truncate(cfg.JobInterval)
	if first.Before(start) {
		first = first.Add(cfg.JobInterval)
	}
	for at := first; at.Before(tr.End()); at = at.Add(cfg.JobInterval) {
		last := int(at.Sub(tr.Start)/tr.Step) - 1 // the last step complete at `at`
		if last < m.Config.ContextLength {
			continue
		}
		qs = append(qs, forecast.Query{ID: tr.Name, History: tr.Values[:last+1], Last: tr.TimeAt(last)})
		runAt = append(runAt, at)
	}
	return qs, runAt
}

// buildPortrait runs the job at every JobInterval from start to the end of the trace, sizing each
// portrait for quantile q of the forecast (0: the point forecast).
func buildPortrait(tr Trace, start time.Time, m *forecast.Model, est *estimator.Estimator, w Workload, cfg PredictiveConfig, q float64) (*predictivePortrait, error) {
	qs, runAt := jobQueries(tr, start, m, cfg)
	preds, err := m.PredictBatchQuantile(qs, q)
	if err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	var bands [][]float64
	if cfg.BandQuantile > 0 {
		if bands, err = m.PredictBatchQuantile(qs, cfg.BandQuantile); err != nil {
			return nil, fmt.Errorf("forecast band: %w", err)
		}
	}
	p := &predictivePortrait{}
	target := w.CPUTarget // per pod, in pods' worth of CPU: a request is 1
	for k, pred := range preds {
		points := make([]estimator.Point, 0, len(pred))
		var band []burst.BandPoint
		ok := true
		for i, v := range pred {
			t := qs[k].Last.Add(time.Duration(i+1) * tr.Step)
			n, err := est.Solve(t, []float64{max(v, 0)}, target)
			if err != nil {
				ok = false
				break
			}
			points = append(points, estimator.Point{Time: t, Replicas: n})
			if bands != nil {
				band = append(band, burst.BandPoint{Time: t, Upper: w.Demand(t, bands[k][i])})
			}
		}
		if !ok {
			p.failed++
			continue
		}
		points = estimator.ShiftScaleUp(estimator.ResampleMax(points, cfg.ScalingFreq), cfg.ScaleUpAhead)
		if len(points) == 0 {
			continue
		}
		p.runs = append(p.runs, portraitRun{at: runAt[k], points: points, band: band,
			expire: points[len(points)-1].Time.Add(cfg.ScalingFreq)})
	}
	return p, nil
}

// band is the forecast band of the newest run at now (nil when none is in force).
func (p *predictivePortrait) bandAt(now time.Time) []burst.BandPoint {
	if p == nil {
		return nil
	}
	k := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].at.After(now) }) - 1
	if k < 0 || !now.Before(p.runs[k].expire) {
		return nil
	}
	return p.runs[k].band
}

// source looks the portrait up as the executor does: the latest point at or before now of the newest run,
// none before its first point or after its expiry.
func (p *predictivePortrait) source() portraitSource {
	return func(now time.Time, _ observation) (int, bool) {
		k := sort.Search(len(p.runs), func(i int) bool { return p.runs[i].at.After(now) }) - 1
		if k < 0 || !now.Before(p.runs[k].expire) {
			return 0, false
		}
		pts := p.runs[k].points
		i := sort.Search(len(pts), func(i int) bool { return pts[i].Time.After(now) }) - 1
		if i < 0 || pts[i].Replicas == 0 {
			return 0, false
		}
		return pts[i].Replicas, true
	}
}

// reactiveSource is the Reactive portrait: the HPA algorithm's replicas, held for the HPA's scale-down
// stabilization window (the largest recommendation of the window wins), as the HPA holds them: without
// it the portrait drops with every dip of the metric and the pods are missing when it comes back.
func reactiveSource(w Workload, hpa HPAConfig) portraitSource {
	var recs []recommendation
	return func(now time.Time, o observation) (int, bool) {
		r, ok := hpaReplicas(o.total, o, w.CPUTarget, hpa.Tolerance)
		if !ok {
			return 0, false
		}
		r = min(max(r, w.MinReplicas), w.MaxReplicas)
		cut := now.Add(-hpa.ScaleDownStabilization)
		kept := recs[:0]
		held := r
		for _, rc := range recs {
			if rc.at.After(cut) {
				kept = append(kept, rc)
				held = max(held, rc.replicas)
			}
		}
		recs = append(kept, recommendation{now, r}) // the raw recommendation: the window's max moves on
		return held, true
	}
}

// burstSource is the burst portrait: package burst run at every sync on the traffic the pods saw over
// the HPA's metric window (the last few syncs), against the forecast band when band gives one.
func burstSource(w Workload, band func(now time.Time) []burst.BandPoint) portraitSource {
	const keep = 5
	var samples []burst.Sample
	cfg := burst.Config{PodCapacity: 1, Target: w.CPUTarget, StartupDelay: w.StartupDelay,
		MinReplicas: w.MinReplicas, MaxReplicas: w.MaxReplicas}
	return func(now time.Time, o observation) (int, bool) {
		samples = append(samples, burst.Sample{Time: now, Value: o.traffic})
		if len(samples) > keep {
			samples = samples[len(samples)-keep:]
		}
		var b []burst.BandPoint
		if band != nil {
			b = band(now)
		}
		d, err := burst.Decide(burst.Input{Samples: samples, Band: b, Current: o.serving}, cfg)
		if err != nil || d.Replicas == 0 {
			return 0, false
		}
		return d.Replicas, true
	}
}

// maxOf merges portraits as the IHPA does when they share a priority: the largest value in force wins.
func maxOf(srcs ...portraitSource) portraitSource {
	return func(now time.Time, o observation) (int, bool) {
		best, found := 0, false
		for _, s := range srcs {
			// Every source sees every sync (the burst detector keeps its own samples).
			if r, ok := s(now, o); ok {
				best, found = max(best, r), true
			}
		}
		return best, found
	}
}
