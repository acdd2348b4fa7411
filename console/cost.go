package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/replay"
)

// CostWindows are the spans the cost page offers, with the resolution of their history.
var CostWindows = map[string]struct {
	Span, Step time.Duration
}{
	"1h": {time.Hour, time.Minute},
	"1d": {24 * time.Hour, 5 * time.Minute},
	"7d": {7 * 24 * time.Hour, 30 * time.Minute},
}

// Assumptions of the counterfactual when the IHPA does not say.
const (
	defaultCPUTarget    = 0.6
	assumedStartupDelay = 30 * time.Second
	minCoverage         = 0.9
)

// Cost is the cost page: what the IHPA's workload cost against what a native HPA would have cost
// on the same measured demand.
type Cost struct {
	Window      string        `json:"window"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	Step        time.Duration `json:"step"`
	Assumptions []string      `json:"assumptions"`
	// Coverage is the share of steps with a measurement; replica-hours count measured steps only.
	Coverage float64 `json:"coverage"`
	// ActualReplicaHours are the pods that existed (any state), measured by the history API.
	ActualReplicaHours float64 `json:"actualReplicaHours"`
	// HPAReplicaHours is the native HPA replayed on the measured CPU demand; OracleReplicaHours the
	// fewest pods meeting the target at every step, knowing the future (the physical limit).
	HPAReplicaHours    float64 `json:"hpaReplicaHours"`
	OracleReplicaHours float64 `json:"oracleReplicaHours"`
	// Saved is HPAReplicaHours − ActualReplicaHours (negative: the IHPA cost more).
	Saved        float64 `json:"savedReplicaHours"`
	SavedPercent float64 `json:"savedPercent"`
	// MinutesOverTarget are the minutes the measured pods ran above the CPU target, and the
	// replayed HPA's.
	MinutesOverTarget    float64          `json:"minutesOverTarget"`
	HPAMinutesOverTarget float64          `json:"hpaMinutesOverTarget"`
	Series               []Series         `json:"series"`
	Forecasts            []ForecastError  `json:"forecasts"`
	Warnings             []string         `json:"warnings"`
	Workload             *replay.Workload `json:"workload,omitempty"`
}

// ForecastError compares a TimeSeries portrait's points that are now in the past with the
// replicas the measured demand needed at the target.
type ForecastError struct {
	Portrait string  `json:"portrait"`
	Points   int     `json:"points"`
	MAE      float64 `json:"meanAbsoluteError"`
	Bias     float64 `json:"meanError"`
	Note     string  `json:"note"`
}

// ComputeCost measures the IHPA's replica-hours over the window and replays the native HPA on
// the measured CPU demand of the same span.
func (c *Cluster) ComputeCost(ctx context.Context, o *Objects, window string, now time.Time) (*Cost, error) {
	w, ok := CostWindows[window]
	if !ok {
		return nil, fmt.Errorf("window %q: choose 1h, 1d or 7d", window)
	}
	ihpa := o.IHPA.DeepCopy()
	ihpa.Spec.Default()
	to := now.Truncate(historyEndRounding)
	cost := &Cost{Window: window, From: to.Add(-w.Span), To: to, Step: w.Step}
	if o.Workload == nil {
		return nil, fmt.Errorf("the workload cannot be read: %s", o.Errors[PartWorkload])
	}
	hist, err := c.podHistory(ctx, ihpa.Namespace, o.Workload.Selector, cost.From, to, w.Step)
	if err != nil {
		return nil, err
	}
	target, how := cpuTarget(ihpa)
	cost.Assumptions = append(cost.Assumptions, how)
	request := float64(o.Workload.CPURequestMilliPerPod) / 1000
	if request <= 0 {
		return nil, errors.New("the workload's pods have no CPU request on every container: the counterfactual HPA needs one to turn CPU usage into replicas")
	}
	cost.Assumptions = append(cost.Assumptions,
		fmt.Sprintf("demand is the CPU the pods used (measured, in cores); one pod serves %.3g cores at 100%% of its request", request),
		fmt.Sprintf("a new pod serves %s after it is created; min %d and max %d replicas bound the HPA, as they bind the IHPA", assumedStartupDelay, max(1, ihpa.Spec.MinReplicas), ihpa.Spec.MaxReplicas),
		"the HPA is kube-controller-manager's default: 10% tolerance, 15 s sync, 5-minute scale-down stabilization",
		"while pods were overloaded their CPU was capped by their limits, so the demand (and the HPA's cost) can be underestimated")

	// Compare over the span the history covers, from its first measurement to its last: the
	// replay must not invent demand where nothing was measured.
	first, last := -1, -1
	for i := range hist.Times {
		if !math.IsNaN(hist.CPU[i]) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("the history API has no CPU sample of %s/%s's pods from %s to %s", ihpa.Namespace, o.Workload.Name,
			cost.From.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if last == first {
		return nil, fmt.Errorf("one measurement so far (at %s): the comparison needs two, wait %s", hist.Times[first].UTC().Format(time.RFC3339), w.Step)
	}
	if first > 0 {
		cost.Warnings = append(cost.Warnings, fmt.Sprintf("the history starts at %s, %s into the window (the workload is younger, or the metrics backend keeps less): both figures cover %s to %s only",
			hist.Times[first].UTC().Format(time.RFC3339), hist.Times[first].Sub(cost.From).Round(time.Minute), hist.Times[first].UTC().Format(time.RFC3339), hist.Times[last].UTC().Format(time.RFC3339)))
	}
	cost.From, cost.To = hist.Times[first], hist.Times[last]
	values := make([]float64, 0, last-first+1)
	measured := 0
	stepHours := w.Step.Hours()
	for i := first; i <= last; i++ {
		v := hist.CPU[i]
		if math.IsNaN(v) {
			v = values[len(values)-1] // a gap holds the last measured demand
		}
		values = append(values, v)
		// The replay scores the steps after the first; so does the measurement.
		if i == first || math.IsNaN(hist.Pods[i]) {
			continue
		}
		measured++
		cost.ActualReplicaHours += hist.Pods[i] * stepHours
		if hist.CPU[i]/(hist.Pods[i]*request) > target {
			cost.MinutesOverTarget += w.Step.Minutes()
		}
	}
	cost.Coverage = float64(measured) / float64(last-first)
	if cost.Coverage < minCoverage {
		cost.Warnings = append(cost.Warnings, fmt.Sprintf("only %.0f%% of the steps between the first and the last measurement have one: the measured replica-hours miss the gaps, the HPA's hold the last demand through them", 100*cost.Coverage))
	}
	wl := replay.Workload{PodCapacity: request, CPUTarget: target, StartupDelay: assumedStartupDelay,
		MinReplicas: int(max(1, ihpa.Spec.MinReplicas)), MaxReplicas: int(max(1, ihpa.Spec.MaxReplicas, ihpa.Spec.MinReplicas))}
	cost.Workload = &wl
	cfg := replay.Config{Workload: wl, HPA: replay.DefaultHPAConfig(), Policies: []string{replay.PolicyHPA}}
	rep, err := replay.Run(ctx, replay.Trace{Name: ihpa.Namespace + "/" + ihpa.Name, Start: hist.Times[first], Step: w.Step, Values: values}, cfg)
	if err != nil {
		return nil, fmt.Errorf("replaying the native HPA: %w", err)
	}
	if p := rep.Policy(replay.PolicyHPA); p != nil && p.Error == "" {
		cost.HPAReplicaHours, cost.HPAMinutesOverTarget = p.ReplicaHours, p.MinutesOverTarget
	}
	if p := rep.Policy(replay.PolicyOracle); p != nil && p.Error == "" {
		cost.OracleReplicaHours = p.ReplicaHours
	}
	cost.Saved = cost.HPAReplicaHours - cost.ActualReplicaHours
	if cost.HPAReplicaHours > 0 {
		cost.SavedPercent = 100 * cost.Saved / cost.HPAReplicaHours
	}
	measuredPods := hist.series("actual pods (measured)", "actual")
	measuredPods.Points = measuredPods.Points[first : last+1]
	cost.Series = append(cost.Series, measuredPods)
	for _, p := range rep.Chart.Policies {
		s := Series{Name: p.Name + " (replayed)", Class: p.Name, Steps: true}
		for i, t := range rep.Chart.Times {
			s.Points = append(s.Points, Point{T: t, V: p.Pods[i]})
		}
		cost.Series = append(cost.Series, s)
	}
	cost.Forecasts = forecastErrors(ihpa, o.Portraits, hist, w.Step, request*target, now)
	return cost, nil
}

// cpuTarget is the CPU utilisation target the counterfactual HPA aims for: the IHPA's Reactive
// portrait's (what a native HPA of this workload would have), else the Predictive portrait's
// resource target, else the replay's default.
func cpuTarget(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) (float64, string) {
	for _, want := range []v1alpha1.PortraitType{v1alpha1.ReactivePortraitType, v1alpha1.PredictivePortraitType} {
		for i := range ihpa.Spec.PortraitProviders {
			p := &ihpa.Spec.PortraitProviders[i]
			if p.Dynamic == nil || p.Dynamic.PortraitType != want {
				continue
			}
			for _, m := range p.Dynamic.Metrics {
				if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
					m.Resource.Target.AverageUtilization != nil && *m.Resource.Target.AverageUtilization > 0 && *m.Resource.Target.AverageUtilization <= 100 {
					u := *m.Resource.Target.AverageUtilization
					return float64(u) / 100, fmt.Sprintf("the HPA targets %d%% CPU utilisation, the %s portrait's target", u, want)
				}
			}
		}
	}
	return defaultCPUTarget, fmt.Sprintf("the HPA targets %.0f%% CPU utilisation (assumed: no Reactive or Predictive portrait of this IHPA has a CPU utilisation target)", 100*defaultCPUTarget)
}

// forecastErrors compares each TimeSeries portrait's past points with the replicas the measured
// demand needed (ceil(CPU / (request × target))).
func forecastErrors(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, portraits map[string]*v1alpha1.HorizontalPortrait, hist *PodHistory, step time.Duration, perPod float64, now time.Time) []ForecastError {
	var out []ForecastError
	for i := range ihpa.Spec.PortraitProviders {
		hp := portraitOf(ihpa, &ihpa.Spec.PortraitProviders[i], portraits)
		if hp == nil || hp.Status.PortraitData == nil || hp.Status.PortraitData.TimeSeries == nil {
			continue
		}
		fe := ForecastError{Portrait: hp.Name}
		var sumAbs, sum float64
		for _, p := range hp.Status.PortraitData.TimeSeries.TimeSeries {
			t := time.Unix(p.Timestamp, 0)
			if t.After(now) || len(hist.Times) == 0 || t.Before(hist.Times[0]) {
				continue
			}
			j := int(t.Sub(hist.Times[0]) / step)
			if j < 0 || j >= len(hist.Times) || math.IsNaN(hist.CPU[j]) {
				continue
			}
			needed := math.Ceil(hist.CPU[j]/perPod - 1e-9)
			e := float64(p.Replicas) - needed
			sumAbs += math.Abs(e)
			sum += e
			fe.Points++
		}
		if fe.Points > 0 {
			fe.MAE, fe.Bias = sumAbs/float64(fe.Points), sum/float64(fe.Points)
			fe.Note = "predicted replicas minus the replicas the measured CPU needed at the target, over the current forecast's points that are past"
		} else {
			fe.Note = "no point of the current forecast is in the past yet: each job run replaces the result, earlier forecasts are not kept"
		}
		out = append(out, fe)
	}
	return out
}
