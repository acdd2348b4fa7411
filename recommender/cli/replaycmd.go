package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/forecast"
	"github.com/kapacitystack/kapacity/recommender/replay"
)

// ReplayOptions are the flags of `kapacity replay`.
type ReplayOptions struct {
	Trace string
	// HistoryPortrait (namespace/name) replays the first traffic metric of a HorizontalPortrait
	// (spec.metrics[2]) read from the history API instead of a trace file.
	HistoryPortrait string
	HistoryLength   time.Duration
	Step            time.Duration

	PodCapacity      float64
	AutoPeakReplicas int
	CPUTarget        float64
	StartupDelay     time.Duration
	MinReplicas      int
	MaxReplicas      int
	ExtraLoads       []string

	Policies      []string
	TrainFraction float64
	JobInterval   time.Duration
	ScalingFreq   time.Duration
	// ScaleUpAhead is used when ScaleUpAheadSet (the flag was given); else the start-up delay plus a sync.
	ScaleUpAhead    time.Duration
	ScaleUpAheadSet bool
	Epochs          int
	Quantile        float64
	Seed            uint64

	GrayState          string
	GrayChangePercent  int32
	GrayChangeInterval time.Duration
	GrayObservation    time.Duration

	HPATolerance      float64
	HPAMetricWindow   time.Duration
	HPADownStabilizer time.Duration

	// Fill is the rule that fills missing trace steps (forecast.FillRule); empty is linear.
	Fill string

	// Pareto sweeps the HPA target and the forecast quantile (replay.DefaultSweep).
	Pareto      bool
	ParetoChart string

	JSON  string
	Chart string
	Quiet bool
}

// NewReplayCommand returns `kapacity replay`.
func NewReplayCommand() *cobra.Command {
	hpa := replay.DefaultHPAConfig()
	o := ReplayOptions{AutoPeakReplicas: 20, CPUTarget: 0.6, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: 100,
		TrainFraction: 0.5, JobInterval: 30 * time.Minute, Seed: 1, HistoryLength: 28 * 24 * time.Hour, Step: 5 * time.Minute,
		GrayState: string(v1alpha1.PodStateCutoff), GrayChangePercent: 50, GrayChangeInterval: 30 * time.Second, GrayObservation: time.Minute,
		HPATolerance: hpa.Tolerance, HPAMetricWindow: hpa.MetricWindow, HPADownStabilizer: hpa.ScaleDownStabilization}
	var kube KubeOptions
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Compare autoscaling policies (native HPA, cron, predictive, oracle) on a traffic trace, offline",
		Long: `replay simulates one workload driven by a traffic trace under several autoscaling policies and prints,
per policy, the replica-hours (cost), the minutes over the CPU target and over 100 % (SLO violations), the
scaling events and the peak replicas, with ratios to the oracle (the physical limit) and to the native HPA.

The first --train-fraction of the trace trains the predictive policy and sizes the cron table; the rest is
replayed. With only --trace, the per-pod capacity is chosen so that the trace's 99th percentile needs
--auto-peak-replicas pods at the CPU target. Missing steps of the trace are reported and filled (--fill).

--pareto also replays the HPA at CPU targets from 90 % down to 15 % and the predictive policies at
forecast quantiles from the median to 0.95, and prints, for each policy, the replica-hours an HPA tuned
to the same minutes over 100 % CPU would need (the user's real alternative to predictive scaling);
--pareto-chart draws both frontiers.

With --json -, the JSON report alone goes to standard output (the table goes to standard error), so it
can be piped to jq.`,
		Example: `  kapacity replay --trace traffic.csv
  kapacity replay --trace traffic.csv --pod-capacity 50 --startup-delay 2m --extra-load every=24h,start=02:00,for=1h,cpu=4 \
      --chart replay.png --json replay.json
  kapacity replay --trace traffic.csv --pareto --pareto-chart frontier.png
  kapacity replay --trace traffic.csv --quiet --json - | jq '.policies[] | {name, replicaHours}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hist HistorySource
			var portraits PortraitGetter
			if o.Trace != "" && o.HistoryPortrait != "" {
				return errors.New("--trace and --history-portrait are exclusive: give one")
			}
			if o.HistoryPortrait != "" {
				cfg, err := kube.RestConfig()
				if err != nil {
					return err
				}
				if hist, err = kube.HistorySource(); err != nil {
					return err
				}
				k, err := NewKubeClients(cfg)
				if err != nil {
					return err
				}
				portraits = k
			}
			o.ScaleUpAheadSet = cmd.Flags().Changed("scale-up-ahead")
			return RunReplay(cmd.Context(), o, hist, portraits, time.Now(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Trace, "trace", "", "traffic trace: a timestamp,value CSV (Unix seconds, RFC 3339 or \"YYYY-MM-DD HH:MM:SS\" UTC)")
	f.StringVar(&o.HistoryPortrait, "history-portrait", "", "instead of --trace: NAMESPACE/NAME of a HorizontalPortrait whose first traffic metric (spec.metrics[2]) is read from the history API")
	f.DurationVar(&o.HistoryLength, "history-length", o.HistoryLength, "with --history-portrait: how much history to read, ending now")
	f.DurationVar(&o.Step, "history-step", o.Step, "with --history-portrait: the trace step (the history is averaged into it)")
	kube.AddFlags(f)
	f.Float64Var(&o.PodCapacity, "pod-capacity", 0, "traffic one pod serves at 100% of its CPU request, in the trace's units; 0 sizes it from the trace (see --auto-peak-replicas)")
	f.IntVar(&o.AutoPeakReplicas, "auto-peak-replicas", o.AutoPeakReplicas, "with --pod-capacity 0: the pods the trace's 99th percentile needs at the CPU target")
	f.Float64Var(&o.CPUTarget, "cpu-target", o.CPUTarget, "target CPU utilisation of the pods' requests, in (0, 1]")
	f.DurationVar(&o.StartupDelay, "startup-delay", o.StartupDelay, "time from a pod's creation to its readiness")
	f.IntVar(&o.MinReplicas, "min-replicas", o.MinReplicas, "minimum replicas of every policy")
	f.IntVar(&o.MaxReplicas, "max-replicas", o.MaxReplicas, "maximum replicas of every policy")
	f.StringArrayVar(&o.ExtraLoads, "extra-load", nil, "periodic load outside the trace, repeatable: every=24h,start=02:00,for=1h,cpu=4 (cpu in pods' worth at 100%)")
	f.StringSliceVar(&o.Policies, "policies", nil, "policies to replay (default all): "+strings.Join(replay.AllPolicies, ","))
	f.Float64Var(&o.TrainFraction, "train-fraction", o.TrainFraction, "leading fraction of the trace that trains the predictive policy and sizes the cron table")
	f.DurationVar(&o.JobInterval, "job-interval", o.JobInterval, "predictive job period (the CronJob's schedule)")
	f.DurationVar(&o.ScalingFreq, "scaling-freq", 0, "predictive --scaling-freq (default: the trace step)")
	f.DurationVar(&o.ScaleUpAhead, "scale-up-ahead", 0, "predictive --scale-up-ahead-seconds (default: --startup-delay plus the 15s sync)")
	f.Float64Var(&o.Quantile, "forecast-quantile", 0.9, "size the predictive portrait for this quantile of the forecast traffic (the forecaster's quantile heads); 0 uses the point forecast (as Kapacity)")
	f.StringVar(&o.Fill, "fill", string(forecast.FillLinear), "how missing trace steps are filled: linear, forward or zero")
	f.BoolVar(&o.Pareto, "pareto", false, "also sweep the HPA target and the forecast quantile and compare every policy with an HPA tuned to the same minutes over 100%")
	f.StringVar(&o.ParetoChart, "pareto-chart", "", "with --pareto: draw the cost/violation frontiers into this PNG file")
	f.IntVar(&o.Epochs, "epochs", 0, "forecaster training epochs (default 40, with early stopping)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the forecaster's training; equal seeds give equal reports")
	f.StringVar(&o.GrayState, "gray-state", o.GrayState, "IHPA gray scale-down state: Cutoff, Standby, or Deleted (no gray: scale down at once)")
	f.Int32Var(&o.GrayChangePercent, "gray-change-percent", o.GrayChangePercent, "IHPA gray scale-down: percent of the change per batch")
	f.DurationVar(&o.GrayChangeInterval, "gray-change-interval", o.GrayChangeInterval, "IHPA gray scale-down: time between batches")
	f.DurationVar(&o.GrayObservation, "gray-observation", o.GrayObservation, "IHPA gray scale-down: observation after the last batch")
	f.Float64Var(&o.HPATolerance, "hpa-tolerance", o.HPATolerance, "HPA tolerance (--horizontal-pod-autoscaler-tolerance)")
	f.DurationVar(&o.HPAMetricWindow, "hpa-metric-window", o.HPAMetricWindow, "the HPA sees the mean CPU of this window (metrics-server window plus scrape delay)")
	f.DurationVar(&o.HPADownStabilizer, "hpa-scale-down-stabilization", o.HPADownStabilizer, "HPA behavior.scaleDown.stabilizationWindowSeconds")
	f.StringVar(&o.JSON, "json", "", "also write the report as JSON to this file (- for standard output)")
	f.StringVar(&o.Chart, "chart", "", "also draw traffic, replicas and utilisation per policy into this PNG file")
	f.BoolVar(&o.Quiet, "quiet", false, "no progress on standard error")
	return cmd
}

// RunReplay loads the trace, replays it and writes the outputs: the table to out (to progress when the
// JSON report goes to out, so that out holds the JSON alone), progress to progress. hist and portraits
// are used with --history-portrait only.
func RunReplay(ctx context.Context, o ReplayOptions, hist HistorySource, portraits PortraitGetter, now time.Time, out, progress io.Writer) error {
	if o.Quiet {
		progress = io.Discard
	}
	if o.ParetoChart != "" && !o.Pareto {
		return errors.New("--pareto-chart needs --pareto")
	}
	tr, gaps, err := loadReplayTrace(ctx, o, hist, portraits, now)
	if err != nil {
		return err
	}
	if gaps != "" {
		fmt.Fprintln(progress, gaps)
	}
	cfg, err := o.config(tr)
	if err != nil {
		return err
	}
	if o.Pareto {
		s := replay.DefaultSweep()
		cfg.Sweep = &s
	}
	pr := newProgress(progress)
	cfg.Progress = pr.stage
	cfg.OnEpoch = func(e forecast.EpochStats) {
		pr.line("train forecaster", epochLine(e, cfg.Predictive.Forecast.Epochs))
	}
	t0 := time.Now()
	rep, err := replay.Run(ctx, tr, cfg)
	pr.end()
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "replayed in %s\n", time.Since(t0).Round(time.Millisecond))
	table := out
	if o.JSON == "-" {
		table = progress
	}
	if err := rep.WriteTable(table); err != nil {
		return err
	}
	if rep.Pareto != nil {
		if err := rep.Pareto.WriteTable(table); err != nil {
			return err
		}
	}
	if o.JSON == "-" {
		if err := rep.WriteJSON(out); err != nil {
			return err
		}
	} else if o.JSON != "" {
		if err := writeFile(o.JSON, rep.WriteJSON); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if o.Chart != "" {
		if err := writeFile(o.Chart, func(w io.Writer) error { return writeReplayChartPNG(w, rep) }); err != nil {
			return fmt.Errorf("--chart: %w", err)
		}
	}
	if o.ParetoChart != "" {
		if err := writeFile(o.ParetoChart, func(w io.Writer) error { return writeParetoChartPNG(w, rep) }); err != nil {
			return fmt.Errorf("--pareto-chart: %w", err)
		}
	}
	return nil
}

// progress shows the stages of a replay: one line rewritten with \r on a terminal, one line per
// finished stage otherwise (a log or a pipe gets no control characters).
type progress struct {
	w        io.Writer
	terminal bool
	last     string
	lastLine string
}

func newProgress(w io.Writer) *progress { return &progress{w: w, terminal: isTerminal(w)} }

// isTerminal tells whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) stage(stage string, done, total int) {
	p.line(stage, fmt.Sprintf("%3d%%", 100*done/max(total, 1)))
}

func (p *progress) line(stage, text string) {
	if stage != p.last {
		p.finish()
		p.last = stage
	}
	p.lastLine = fmt.Sprintf("%-28s %s", stage, text)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s", p.lastLine)
	}
}

// finish closes the current stage: a newline on a terminal, its last state as a line elsewhere.
func (p *progress) finish() {
	if p.last == "" {
		return
	}
	if p.terminal {
		fmt.Fprintln(p.w)
	} else {
		fmt.Fprintln(p.w, p.lastLine)
	}
}

func (p *progress) end() {
	p.finish()
	p.last = ""
}

func (o ReplayOptions) config(tr replay.Trace) (replay.Config, error) {
	w := replay.Workload{PodCapacity: o.PodCapacity, CPUTarget: o.CPUTarget, StartupDelay: o.StartupDelay,
		MinReplicas: o.MinReplicas, MaxReplicas: o.MaxReplicas}
	if o.PodCapacity == 0 {
		if o.AutoPeakReplicas < 1 {
			return replay.Config{}, fmt.Errorf("--auto-peak-replicas %d: must be at least 1", o.AutoPeakReplicas)
		}
		if !(o.CPUTarget > 0 && o.CPUTarget <= 1) {
			return replay.Config{}, fmt.Errorf("--cpu-target %v: must be in (0, 1]", o.CPUTarget)
		}
		w.PodCapacity = replay.AutoCapacity(tr, o.CPUTarget, o.AutoPeakReplicas)
	} else if o.PodCapacity < 0 {
		return replay.Config{}, fmt.Errorf("--pod-capacity %v: must be positive (or 0 to size it from the trace)", o.PodCapacity)
	}
	for _, s := range o.ExtraLoads {
		e, err := replay.ParseExtraLoad(s)
		if err != nil {
			return replay.Config{}, fmt.Errorf("--extra-load: %w", err)
		}
		w.Extra = append(w.Extra, e)
	}
	cfg := replay.DefaultConfig(tr.Step, w, o.Seed)
	cfg.Policies = o.Policies
	cfg.HPA.Tolerance, cfg.HPA.MetricWindow, cfg.HPA.ScaleDownStabilization = o.HPATolerance, o.HPAMetricWindow, o.HPADownStabilizer
	p := &cfg.Predictive
	p.TrainFraction, p.JobInterval, p.ForecastQuantile = o.TrainFraction, o.JobInterval, o.Quantile
	if o.ScalingFreq != 0 {
		p.ScalingFreq = o.ScalingFreq
	}
	if o.ScaleUpAheadSet {
		if o.ScaleUpAhead < 0 {
			return cfg, fmt.Errorf("--scale-up-ahead %v: must not be negative", o.ScaleUpAhead)
		}
		p.ScaleUpAhead = o.ScaleUpAhead
	}
	if o.Epochs < 0 {
		return cfg, fmt.Errorf("--epochs %d: must be positive (or 0 for the default)", o.Epochs)
	} else if o.Epochs > 0 {
		p.Forecast.Epochs = o.Epochs
	}
	// The forecast must reach past the next job run and the scale-up lead.
	if need := p.JobInterval + p.ScaleUpAhead + tr.Step; time.Duration(p.Forecast.PredictionLength)*tr.Step < need {
		p.Forecast.PredictionLength = int((need + tr.Step - 1) / tr.Step)
	}
	switch v1alpha1.PodState(o.GrayState) {
	case v1alpha1.PodStateCutoff, v1alpha1.PodStateStandby:
		cfg.GrayScaleDown = &v1alpha1.GrayStrategy{GrayState: v1alpha1.PodState(o.GrayState),
			ChangeIntervalSeconds: int32(o.GrayChangeInterval / time.Second), ChangePercent: o.GrayChangePercent,
			ObservationSeconds: int32(o.GrayObservation / time.Second)}
		if cfg.GrayScaleDown.ChangeIntervalSeconds < 1 {
			return cfg, fmt.Errorf("--gray-change-interval %v: must be at least 1s", o.GrayChangeInterval)
		}
		if o.GrayChangePercent < 1 || o.GrayChangePercent > 100 {
			return cfg, fmt.Errorf("--gray-change-percent %d: must be in 1..100", o.GrayChangePercent)
		}
		if o.GrayObservation < 0 {
			return cfg, fmt.Errorf("--gray-observation %v: must not be negative", o.GrayObservation)
		}
	case v1alpha1.PodStateDeleted:
		cfg.GrayScaleDown = nil
	default:
		return cfg, fmt.Errorf("--gray-state %q: must be Cutoff, Standby or Deleted", o.GrayState)
	}
	return cfg, nil
}

// loadReplayTrace reads --trace, or the history of --history-portrait's traffic metric, and says which
// steps were missing (empty when none).
func loadReplayTrace(ctx context.Context, o ReplayOptions, hist HistorySource, portraits PortraitGetter, now time.Time) (replay.Trace, string, error) {
	rule, err := forecast.ParseFillRule(cmpOr(o.Fill, string(forecast.FillLinear)))
	if err != nil {
		return replay.Trace{}, "", fmt.Errorf("--fill: %w", err)
	}
	tr, gaps, err := loadReplayTraceFill(ctx, o, hist, portraits, now, rule)
	if err != nil {
		return tr, "", err
	}
	return tr, gapLine(tr.Name, gaps, tr.Step, rule), nil
}

func loadReplayTraceFill(ctx context.Context, o ReplayOptions, hist HistorySource, portraits PortraitGetter, now time.Time, rule forecast.FillRule) (replay.Trace, forecast.Gaps, error) {
	var pts []Point
	var name string
	var step time.Duration
	var none forecast.Gaps
	switch {
	case o.Trace != "" && o.HistoryPortrait != "":
		return replay.Trace{}, none, errors.New("--trace and --history-portrait are exclusive: give one")
	case o.Trace != "":
		tr, g, err := ReadTraceFill(o.Trace, rule)
		if err != nil {
			return replay.Trace{}, g, fmt.Errorf("--trace: %w", err)
		}
		return tr, g, nil
	case o.HistoryPortrait != "":
		ns, hpName, ok := strings.Cut(o.HistoryPortrait, "/")
		if !ok || ns == "" || hpName == "" {
			return replay.Trace{}, none, fmt.Errorf("--history-portrait %q: want NAMESPACE/NAME", o.HistoryPortrait)
		}
		if o.Step < time.Minute {
			return replay.Trace{}, none, fmt.Errorf("--history-step %v: must be at least 1m (the history's resolution)", o.Step)
		}
		hp, err := portraits.GetHorizontalPortrait(ctx, ns, hpName)
		if err != nil {
			return replay.Trace{}, none, fmt.Errorf("--history-portrait: %w", err)
		}
		if len(hp.Spec.Metrics) < 3 {
			return replay.Trace{}, none, fmt.Errorf("--history-portrait %s: spec.metrics has %d metrics; the traffic metric is the third (after the resource and the ready replicas)",
				o.HistoryPortrait, len(hp.Spec.Metrics))
		}
		q, err := metricQuery(ns, hp.Spec.ScaleTargetRef, hp.Spec.Metrics[2])
		if err != nil {
			return replay.Trace{}, none, fmt.Errorf("--history-portrait %s: spec.metrics[2]: %w", o.HistoryPortrait, err)
		}
		if pts, err = fetchPoints(ctx, hist, q, now, o.HistoryLength); err != nil {
			return replay.Trace{}, none, fmt.Errorf("--history-portrait %s: %w", o.HistoryPortrait, err)
		}
		pts = dropNaN(pts)
		step, name = o.Step, ns+"/"+hpName
	default:
		return replay.Trace{}, none, errors.New("give the traffic: --trace FILE (timestamp,value CSV) or --history-portrait NAMESPACE/NAME")
	}
	s, g, err := regularizeFill(name, pts, step, rule)
	if err != nil {
		return replay.Trace{}, g, fmt.Errorf("traffic %s: %w", name, err)
	}
	return replay.Trace{Name: name, Start: s.Start, Step: s.Step, Values: s.Values}, g, nil
}

// ReadTrace reads a timestamp,value CSV (such as the NAB traces) into a trace on its most common step,
// averaging points that share a step and interpolating missing steps.
func ReadTrace(path string) (replay.Trace, error) {
	tr, _, err := ReadTraceFill(path, forecast.FillLinear)
	return tr, err
}

// ReadTraceFill is ReadTrace with the fill rule of missing steps, which it reports.
func ReadTraceFill(path string, rule forecast.FillRule) (replay.Trace, forecast.Gaps, error) {
	var none forecast.Gaps
	pts, err := readPointsFile(path)
	if err != nil {
		return replay.Trace{}, none, err
	}
	step, err := commonStep(pts)
	if err != nil {
		return replay.Trace{}, none, fmt.Errorf("%s: %w", path, err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s, g, err := regularizeFill(name, pts, step, rule)
	if err != nil {
		return replay.Trace{}, g, fmt.Errorf("%s: %w", path, err)
	}
	return replay.Trace{Name: name, Start: s.Start, Step: s.Step, Values: s.Values}, g, nil
}

// commonStep is the most frequent spacing of the points: the trace's sampling step.
func commonStep(pts []Point) (time.Duration, error) {
	counts := map[time.Duration]int{}
	var best time.Duration
	for i := 1; i < len(pts); i++ {
		d := pts[i].Time.Sub(pts[i-1].Time)
		if d <= 0 {
			continue
		}
		counts[d]++
		if best == 0 || counts[d] > counts[best] || (counts[d] == counts[best] && d < best) {
			best = d
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("%d points give no sampling step; need at least 2 increasing timestamps", len(pts))
	}
	if best < time.Second {
		return 0, fmt.Errorf("sampling step %v is under a second", best)
	}
	return best, nil
}
