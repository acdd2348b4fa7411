package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	ScaleUpAhead  time.Duration
	Epochs        int
	Quantile      float64
	Seed          uint64

	GrayState          string
	GrayChangePercent  int32
	GrayChangeInterval time.Duration
	GrayObservation    time.Duration

	HPATolerance      float64
	HPAMetricWindow   time.Duration
	HPADownStabilizer time.Duration

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
--auto-peak-replicas pods at the CPU target.`,
		Example: `  kapacity replay --trace traffic.csv
  kapacity replay --trace traffic.csv --pod-capacity 50 --startup-delay 2m --extra-load every=24h,start=02:00,for=1h,cpu=4 \
      --chart replay.png --json replay.json`,
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
	f.DurationVar(&o.ScaleUpAhead, "scale-up-ahead", -1, "predictive --scale-up-ahead-seconds (default: --startup-delay plus the 15s sync)")
	f.Float64Var(&o.Quantile, "forecast-quantile", 0.9, "scale each forecast step up to this quantile of the actual traffic, measured on the training tail; 0 uses the forecast as it is (as Kapacity)")
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

// RunReplay loads the trace, replays it and writes the outputs. hist and portraits are used with
// --history-portrait only.
func RunReplay(ctx context.Context, o ReplayOptions, hist HistorySource, portraits PortraitGetter, now time.Time, out, progress io.Writer) error {
	if o.Quiet {
		progress = io.Discard
	}
	tr, err := loadReplayTrace(ctx, o, hist, portraits, now)
	if err != nil {
		return err
	}
	cfg, err := o.config(tr)
	if err != nil {
		return err
	}
	last := ""
	cfg.Progress = func(stage string, done, total int) {
		if stage != last {
			if last != "" {
				fmt.Fprintln(progress)
			}
			last = stage
		}
		fmt.Fprintf(progress, "\r%-28s %3d%%", stage, 100*done/max(total, 1))
	}
	cfg.OnEpoch = func(e forecast.EpochStats) {
		fmt.Fprintf(progress, "\r%-28s %s", "train forecaster", epochLine(e, cfg.Predictive.Forecast.Epochs))
	}
	t0 := time.Now()
	rep, err := replay.Run(ctx, tr, cfg)
	if last != "" {
		fmt.Fprintf(progress, "\n")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "replayed in %s\n", time.Since(t0).Round(time.Millisecond))
	if err := rep.WriteTable(out); err != nil {
		return err
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
	return nil
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
	if o.ScaleUpAhead >= 0 {
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

// loadReplayTrace reads --trace, or the history of --history-portrait's traffic metric.
func loadReplayTrace(ctx context.Context, o ReplayOptions, hist HistorySource, portraits PortraitGetter, now time.Time) (replay.Trace, error) {
	var pts []Point
	var name string
	var step time.Duration
	switch {
	case o.Trace != "" && o.HistoryPortrait != "":
		return replay.Trace{}, errors.New("--trace and --history-portrait are exclusive: give one")
	case o.Trace != "":
		tr, err := ReadTrace(o.Trace)
		if err != nil {
			return replay.Trace{}, fmt.Errorf("--trace: %w", err)
		}
		return tr, nil
	case o.HistoryPortrait != "":
		ns, hpName, ok := strings.Cut(o.HistoryPortrait, "/")
		if !ok || ns == "" || hpName == "" {
			return replay.Trace{}, fmt.Errorf("--history-portrait %q: want NAMESPACE/NAME", o.HistoryPortrait)
		}
		if o.Step < time.Minute {
			return replay.Trace{}, fmt.Errorf("--history-step %v: must be at least 1m (the history's resolution)", o.Step)
		}
		hp, err := portraits.GetHorizontalPortrait(ctx, ns, hpName)
		if err != nil {
			return replay.Trace{}, fmt.Errorf("--history-portrait: %w", err)
		}
		if len(hp.Spec.Metrics) < 3 {
			return replay.Trace{}, fmt.Errorf("--history-portrait %s: spec.metrics has %d metrics; the traffic metric is the third (after the resource and the ready replicas)",
				o.HistoryPortrait, len(hp.Spec.Metrics))
		}
		q, err := metricQuery(ns, hp.Spec.ScaleTargetRef, hp.Spec.Metrics[2])
		if err != nil {
			return replay.Trace{}, fmt.Errorf("--history-portrait %s: spec.metrics[2]: %w", o.HistoryPortrait, err)
		}
		if pts, err = fetchPoints(ctx, hist, q, now, o.HistoryLength); err != nil {
			return replay.Trace{}, fmt.Errorf("--history-portrait %s: %w", o.HistoryPortrait, err)
		}
		pts = dropNaN(pts)
		step, name = o.Step, ns+"/"+hpName
	default:
		return replay.Trace{}, errors.New("give the traffic: --trace FILE (timestamp,value CSV) or --history-portrait NAMESPACE/NAME")
	}
	s, err := regularize(name, pts, step)
	if err != nil {
		return replay.Trace{}, fmt.Errorf("traffic %s: %w", name, err)
	}
	return replay.Trace{Name: name, Start: s.Start, Step: s.Step, Values: s.Values}, nil
}

// ReadTrace reads a timestamp,value CSV (such as the NAB traces) into a trace on its most common step,
// averaging points that share a step and filling missing steps with 0.
func ReadTrace(path string) (replay.Trace, error) {
	pts, err := readPointsFile(path)
	if err != nil {
		return replay.Trace{}, err
	}
	step, err := commonStep(pts)
	if err != nil {
		return replay.Trace{}, fmt.Errorf("%s: %w", path, err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s, err := regularize(name, pts, step)
	if err != nil {
		return replay.Trace{}, fmt.Errorf("%s: %w", path, err)
	}
	return replay.Trace{Name: name, Start: s.Start, Step: s.Step, Values: s.Values}, nil
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
