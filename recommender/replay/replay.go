package replay

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/estimator"
	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// Policy names, in report order.
const (
	PolicyOracle             = "oracle"
	PolicyHPA                = "hpa"
	PolicyCron               = "cron"
	PolicyBurst              = "burst"
	PolicyPredictive         = "predictive"
	PolicyPredictiveReactive = "predictive+reactive"
	PolicyPredictiveBurst    = "predictive+burst"
)

// AllPolicies is every policy replay knows, in report order.
var AllPolicies = []string{PolicyOracle, PolicyHPA, PolicyCron, PolicyBurst, PolicyPredictive, PolicyPredictiveReactive, PolicyPredictiveBurst}

// predictivePolicies need the trained forecaster.
var predictivePolicies = []string{PolicyPredictive, PolicyPredictiveReactive, PolicyPredictiveBurst}

// Config is one replay.
type Config struct {
	Workload   Workload
	HPA        HPAConfig
	Predictive PredictiveConfig
	// GrayScaleDown is the IHPA policies' behavior.scaleDown.grayStrategy; nil scales down at once.
	GrayScaleDown *v1alpha1.GrayStrategy
	// Policies to replay (AllPolicies when empty). The oracle always runs: every ratio needs it.
	Policies []string
	// Progress, when set, is told how far each stage is (done of total).
	Progress func(stage string, done, total int)
	// OnEpoch, when set, receives the forecaster's training progress.
	OnEpoch func(forecast.EpochStats)
	// Sweep, when set, also replays the HPA at every target and the policies at every forecast
	// quantile of the sweep, for the cost/violation frontiers (Report.Pareto).
	Sweep *Sweep
}

// DefaultConfig is a replay of a trace with the given step under the quick-start settings: gray
// scale-down in Cutoff batches of 50 % every 30 s with 60 s of observation, the predictive job every
// 30 minutes with the scaling frequency of the trace step and scale-up one pod start-up and one sync
// ahead. The workload still needs its capacity (see AutoCapacity).
func DefaultConfig(step time.Duration, w Workload, seed uint64) Config {
	hpa := DefaultHPAConfig()
	return Config{
		Workload: w,
		HPA:      hpa,
		Predictive: PredictiveConfig{
			TrainFraction:    0.5,
			Forecast:         DefaultForecastConfig(step, seed),
			Estimator:        estimator.DefaultOptions(),
			JobInterval:      30 * time.Minute,
			ScalingFreq:      step,
			ScaleUpAhead:     w.StartupDelay + hpa.SyncPeriod,
			ForecastQuantile: 0.9,
			BandQuantile:     0.9,
		},
		GrayScaleDown: &v1alpha1.GrayStrategy{GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: 30,
			ChangePercent: 50, ObservationSeconds: 60},
	}
}

// AutoCapacity is the per-pod capacity at which the trace's 99th percentile needs peakReplicas pods at
// the CPU target: a workload sized like the trace, whatever its units.
func AutoCapacity(tr Trace, cpuTarget float64, peakReplicas int) float64 {
	p99 := quantile(slices.Clone(tr.Values), 0.99)
	if p99 <= 0 {
		return 1
	}
	return p99 / (cpuTarget * float64(peakReplicas))
}

func (c Config) validate(tr Trace) error {
	if err := tr.validate(); err != nil {
		return err
	}
	if err := c.Workload.Validate(); err != nil {
		return err
	}
	h := c.HPA
	switch {
	case h.SyncPeriod <= 0:
		return fmt.Errorf("hpa: sync period must be positive, got %v", h.SyncPeriod)
	case h.Tolerance < 0:
		return fmt.Errorf("hpa: tolerance must not be negative, got %v", h.Tolerance)
	case h.MetricWindow < h.SyncPeriod:
		return fmt.Errorf("hpa: metric window (%v) must be at least the sync period (%v)", h.MetricWindow, h.SyncPeriod)
	}
	for _, p := range c.Policies {
		if !slices.Contains(AllPolicies, p) {
			return fmt.Errorf("unknown policy %q: choose from %v", p, AllPolicies)
		}
	}
	if c.needsModel() {
		p := c.Predictive
		switch {
		case !(p.TrainFraction > 0 && p.TrainFraction < 1):
			return fmt.Errorf("predictive: train fraction must be in (0, 1), got %v", p.TrainFraction)
		case p.JobInterval <= 0:
			return fmt.Errorf("predictive: job interval must be positive, got %v", p.JobInterval)
		case p.ScalingFreq < tr.Step:
			return fmt.Errorf("predictive: scaling frequency (%v) must not be shorter than the trace step (%v)", p.ScalingFreq, tr.Step)
		case p.ForecastQuantile < 0 || p.ForecastQuantile >= 1:
			return fmt.Errorf("predictive: forecast quantile must be in [0, 1) (0: the forecast as it is), got %v", p.ForecastQuantile)
		case p.BandQuantile < 0 || p.BandQuantile >= 1:
			return fmt.Errorf("predictive: band quantile must be in [0, 1) (0: no band), got %v", p.BandQuantile)
		case p.ScaleUpAhead < 0:
			return fmt.Errorf("predictive: scale-up ahead must not be negative, got %v", p.ScaleUpAhead)
		}
		if f, err := forecast.ParseFreq(p.Forecast.Freq); err != nil || f != tr.Step {
			return fmt.Errorf("predictive: the forecaster's freq %q must be the trace step %v", p.Forecast.Freq, tr.Step)
		}
		horizon := time.Duration(p.Forecast.PredictionLength) * tr.Step
		if horizon < p.JobInterval+p.ScaleUpAhead {
			return fmt.Errorf("predictive: the forecast horizon (%d steps = %v) must cover the job interval plus scale-up ahead (%v); raise the prediction length",
				p.Forecast.PredictionLength, horizon, p.JobInterval+p.ScaleUpAhead)
		}
	}
	if c.Sweep != nil {
		if err := c.Sweep.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) policies() []string {
	if len(c.Policies) == 0 {
		return AllPolicies
	}
	ps := []string{PolicyOracle}
	for _, p := range AllPolicies[1:] {
		if slices.Contains(c.Policies, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

func (c Config) needsModel() bool {
	for _, p := range c.policies() {
		if slices.Contains(predictivePolicies, p) {
			return true
		}
	}
	return false
}

// Run replays the part of the trace after the training fraction under every policy.
func Run(ctx context.Context, tr Trace, cfg Config) (*Report, error) {
	if err := cfg.validate(tr); err != nil {
		return nil, err
	}
	w := cfg.Workload
	trainEnd := int(math.Round(cfg.Predictive.TrainFraction * float64(len(tr.Values))))
	trainEnd = min(max(trainEnd, 1), len(tr.Values)-1)
	start := tr.TimeAt(trainEnd)
	dt := cfg.HPA.SyncPeriod
	ticks := int(tr.End().Sub(start) / dt)
	if ticks < 1 {
		return nil, fmt.Errorf("trace %q: nothing left to replay after the training part", tr.Name)
	}
	eval := newDemand(tr, w, start, dt, ticks)
	rep := &Report{Trace: tr.Name, Step: tr.Step, TrainStart: tr.Start, Start: start, End: tr.End(), Workload: w,
		TickSeconds: dt.Seconds()}
	rep.Chart = newChartData(tr, trainEnd)
	rep.Chart.Target = w.CPUTarget
	for _, v := range eval.values {
		need := int(math.Ceil(v/w.CPUTarget - 1e-9))
		rep.PeakRequired = max(rep.PeakRequired, need, w.MinReplicas)
		if need > w.MaxReplicas {
			rep.OracleCappedMinutes += dt.Minutes()
		}
	}

	r := &runner{tr: tr, cfg: cfg, eval: eval, trainEnd: trainEnd, ticks: ticks}
	if cfg.needsModel() {
		r.model, r.est, r.modelErr = trainPredictive(ctx, tr, trainEnd, cfg)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, name := range cfg.policies() {
		res, tl, err := r.run(ctx, name, cfg.HPA, w.CPUTarget, cfg.Predictive.ForecastQuantile, true)
		if err != nil {
			return nil, err
		}
		if name == PolicyPredictive && r.portraits[cfg.Predictive.ForecastQuantile] != nil {
			pp := r.portraits[cfg.Predictive.ForecastQuantile]
			rep.FailedJobRuns, rep.JobRuns = pp.failed, pp.failed+len(pp.runs)
		}
		rep.Policies = append(rep.Policies, res)
		if res.Error == "" {
			rep.Chart.Policies = append(rep.Chart.Policies, ChartPolicy{Name: name, Pods: tl.Pods, Utilisation: tl.Utilisation})
		}
	}
	rep.ratios()
	if cfg.Sweep != nil {
		p, err := r.pareto(ctx, *cfg.Sweep, rep)
		if err != nil {
			return nil, err
		}
		rep.Pareto = p
	}
	return rep, nil
}

// runner replays policies over one evaluation span, training the forecaster once and building the
// predictive portrait once per forecast quantile.
type runner struct {
	tr        Trace
	cfg       Config
	eval      *demand
	trainEnd  int
	ticks     int
	model     *forecast.Model
	est       *estimator.Estimator
	modelErr  error
	portraits map[float64]*predictivePortrait
}

// portrait is the predictive portrait sized for forecast quantile q.
func (r *runner) portrait(q float64) (*predictivePortrait, error) {
	if r.modelErr != nil {
		return nil, r.modelErr
	}
	if p, ok := r.portraits[q]; ok {
		return p, nil
	}
	p, err := buildPortrait(r.tr, r.tr.TimeAt(r.trainEnd), r.model, r.est, r.cfg.Workload, r.cfg.Predictive, q)
	if err != nil {
		return nil, err
	}
	if r.portraits == nil {
		r.portraits = map[float64]*predictivePortrait{}
	}
	r.portraits[q] = p
	return p, nil
}

// run replays one policy: the HPA with hpa at CPU target hpaTarget, or an IHPA policy whose portraits
// scale to the workload's target (predictive ones for forecast quantile q). A policy that cannot run
// (the forecaster failed) comes back with its Error set.
func (r *runner) run(ctx context.Context, name string, hpa HPAConfig, hpaTarget, q float64, progress bool) (PolicyResult, timeline, error) {
	w := r.cfg.Workload
	dt := r.cfg.HPA.SyncPeriod
	lead := w.StartupDelay + dt
	res := PolicyResult{Name: name}
	var p policy
	switch name {
	case PolicyOracle:
		p = newOracle(r.eval, w, dt)
	case PolicyHPA:
		hw := w
		hw.CPUTarget = hpaTarget
		p = hpaAdapter{newHPAPolicy(hw, hpa)}
	case PolicyCron:
		p = ihpaAdapter{newIHPAPolicy("Cron", w, r.cfg.GrayScaleDown, newCronTable(r.tr, r.trainEnd, w).source(lead))}
	case PolicyBurst:
		src := maxOf(reactiveSource(w, hpa), burstSource(w, nil))
		p = ihpaAdapter{newIHPAPolicy("Dynamic-Burst", w, r.cfg.GrayScaleDown, src)}
	case PolicyPredictive, PolicyPredictiveReactive, PolicyPredictiveBurst:
		pp, err := r.portrait(q)
		if err != nil {
			res.Error = err.Error()
			return res, timeline{}, nil
		}
		src := pp.source()
		switch name {
		case PolicyPredictiveReactive:
			src = maxOf(src, reactiveSource(w, hpa))
		case PolicyPredictiveBurst:
			src = maxOf(src, reactiveSource(w, hpa), burstSource(w, pp.bandAt))
		}
		p = ihpaAdapter{newIHPAPolicy("Dynamic-Predictive", w, r.cfg.GrayScaleDown, src)}
	}
	var report func(int)
	if progress && r.cfg.Progress != nil {
		report = func(done int) { r.cfg.Progress("replay "+name, done, r.ticks) }
	}
	sc, tl, err := simulate(ctx, r.eval, p, r.cfg, report)
	if err != nil {
		return res, tl, err
	}
	res.fill(sc)
	return res, tl, nil
}

// trainPredictive trains the forecaster on the training part and fits the estimator on a native-HPA
// replay of it.
func trainPredictive(ctx context.Context, tr Trace, trainEnd int, cfg Config) (*forecast.Model, *estimator.Estimator, error) {
	p := cfg.Predictive
	series := forecast.Series{ID: tr.Name, Start: tr.Start, Step: tr.Step, Values: tr.Values[:trainEnd]}
	if cfg.Progress != nil {
		cfg.Progress("train forecaster", 0, p.Forecast.Epochs)
	}
	m, err := forecast.Train([]forecast.Series{series}, p.Forecast, forecast.TrainOptions{OnEpoch: cfg.OnEpoch})
	if err != nil {
		return nil, nil, fmt.Errorf("forecaster on the first %d points of %q: %w", trainEnd, tr.Name, err)
	}
	if cfg.Progress != nil {
		cfg.Progress("train forecaster", p.Forecast.Epochs, p.Forecast.Epochs)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	samples, err := trainingHistory(ctx, tr, trainEnd, cfg)
	if err != nil {
		return nil, nil, err
	}
	est, err := fitEstimator(tr, trainEnd, samples, p.Estimator)
	if err != nil {
		return nil, nil, err
	}
	return m, est, nil
}

// trainingHistory is what Prometheus would hold for the training part had the native HPA scaled the
// workload: per trace step, the traffic, the mean ready replicas and their total CPU usage.
func trainingHistory(ctx context.Context, tr Trace, trainEnd int, cfg Config) ([]estimator.Sample, error) {
	dt := cfg.HPA.SyncPeriod
	ticks := int(tr.TimeAt(trainEnd).Sub(tr.Start) / dt)
	d := newDemand(tr, cfg.Workload, tr.Start, dt, ticks)
	perStep := int(tr.Step / dt)
	if perStep < 1 {
		perStep = 1
	}
	samples := make([]estimator.Sample, 0, trainEnd)
	var replicas, usage float64
	var n int
	rec := func(k int, st state) {
		if k%perStep == 0 && n > 0 {
			i := tr.index(d.time(k - 1))
			samples = append(samples, estimator.Sample{Time: tr.TimeAt(i), Resource: usage / float64(n),
				Replicas: replicas / float64(n), Traffic: []float64{tr.Values[i]}})
			replicas, usage, n = 0, 0, 0
		}
		replicas += float64(st.serving)
		usage += d.values[k]
		n++
	}
	if _, _, err := simulateWith(ctx, d, hpaAdapter{newHPAPolicy(cfg.Workload, cfg.HPA)}, cfg, nil, rec); err != nil {
		return nil, err
	}
	return samples, nil
}

// demand is the load per tick of a span, in pods' worth of CPU, with prefix sums for window means.
type demand struct {
	start  time.Time
	dt     time.Duration
	values []float64
	prefix []float64 // prefix[k] = sum of values[:k]
	// bucket maps a tick to its trace step (for the chart)
	bucketOf func(k int) int
}

func newDemand(tr Trace, w Workload, start time.Time, dt time.Duration, ticks int) *demand {
	d := &demand{start: start, dt: dt, values: make([]float64, ticks), prefix: make([]float64, ticks+1)}
	for k := range d.values {
		t := d.time(k)
		d.values[k] = w.Demand(t, tr.At(t))
		d.prefix[k+1] = d.prefix[k] + d.values[k]
	}
	d.bucketOf = func(k int) int { return tr.index(d.time(k)) }
	return d
}

func (d *demand) time(k int) time.Time { return d.start.Add(time.Duration(k) * d.dt) }

// windowMean is the mean demand of the n ticks before tick k (the metric the HPA sees at k); at the
// start of the span the first tick stands in for the unseen past.
func (d *demand) windowMean(k, n int) float64 {
	if k == 0 {
		return d.values[0]
	}
	lo := max(k-n, 0)
	return (d.prefix[k] - d.prefix[lo]) / float64(k-lo)
}

// policy decides the pods at each tick.
type policy interface {
	decide(k int, now time.Time, o observation) (total, online int, err error)
}

type hpaAdapter struct{ p *hpaPolicy }

func (a hpaAdapter) decide(_ int, now time.Time, o observation) (int, int, error) {
	t, on := a.p.decide(now, o)
	return t, on, nil
}

type ihpaAdapter struct{ p *ihpaPolicy }

func (a ihpaAdapter) decide(_ int, now time.Time, o observation) (int, int, error) {
	return a.p.decide(now, o)
}

type oracleAdapter struct{ p *oraclePolicy }

func (a oracleAdapter) decide(k int, _ time.Time, _ observation) (int, int, error) {
	t, on := a.p.decideAt(k)
	return t, on, nil
}

func newOracle(d *demand, w Workload, dt time.Duration) policy {
	req := make([]int, len(d.values))
	for k, v := range d.values {
		req[k] = w.Required(v)
	}
	lead := int((w.StartupDelay + dt - 1) / dt)
	return oracleAdapter{&oraclePolicy{required: req, lead: lead}}
}

// trafficWindow is the syncs a traffic metric's rate spans (see observation.traffic).
const trafficWindow = 2

// simulate replays one policy over the span and scores it.
func simulate(ctx context.Context, d *demand, p policy, cfg Config, progress func(done int)) (*score, timeline, error) {
	return simulateWith(ctx, d, p, cfg, progress, nil)
}

func simulateWith(ctx context.Context, d *demand, p policy, cfg Config, progress func(done int), observe func(k int, st state)) (*score, timeline, error) {
	w := cfg.Workload
	// Every policy starts from the same warm workload: the pods the first start-up delay needs, ready.
	lead := int((w.StartupDelay + d.dt - 1) / d.dt)
	initial := 0
	for k := 0; k <= lead && k < len(d.values); k++ {
		initial = max(initial, w.Required(d.values[k]))
	}
	c := &cluster{startup: w.StartupDelay}
	c.apply(d.start.Add(-w.StartupDelay), initial, initial)
	sc := &score{target: w.CPUTarget}
	nBuckets := 0
	if len(d.values) > 0 {
		nBuckets = d.bucketOf(len(d.values)-1) - d.bucketOf(0) + 1
	}
	tl := newTimeline(nBuckets)
	first := d.bucketOf(0)
	window := int(cfg.HPA.MetricWindow / d.dt)
	const progressEvery = 1 << 14
	for k := range d.values {
		if k%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, tl, err
			}
			if progress != nil {
				progress(k)
			}
		}
		now := d.time(k)
		st := c.state(now)
		total, online, err := p.decide(k, now, observation{state: st, usage: d.windowMean(k, window), traffic: d.windowMean(k, trafficWindow)})
		if err != nil {
			return nil, tl, err
		}
		total = min(max(total, 0), w.MaxReplicas)
		if c.apply(now, total, online) {
			sc.events++
			st = c.state(now)
		}
		sc.add(st, d.values[k], d.dt)
		tl.add(d.bucketOf(k)-first, st, d.values[k])
		if observe != nil {
			observe(k, st)
		}
	}
	if progress != nil {
		progress(len(d.values))
	}
	return sc, tl, nil
}
