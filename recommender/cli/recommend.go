package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/recommender/estimator"
	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// PortraitGetter reads the HorizontalPortrait the job works for.
type PortraitGetter interface {
	GetHorizontalPortrait(ctx context.Context, namespace, name string) (*autoscalingv1alpha1.HorizontalPortrait, error)
}

// ResultWriter stores the job's result: the ConfigMap "<hp>-result" next to hp, owned by it.
type ResultWriter interface {
	WriteResult(ctx context.Context, hp *autoscalingv1alpha1.HorizontalPortrait, data map[string]string) error
}

// RequestsLookup sums the requests of resource (of one container when container is set) of the first
// pod of the workload, for Utilization targets.
type RequestsLookup interface {
	PodRequests(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, resource corev1.ResourceName, container string) (float64, error)
}

// RecommendOptions are the predictive job's flags (the reference's main.py, §5.3).
type RecommendOptions struct {
	TSFModelPath               string
	TSFDataloaderNumWorkers    int // accepted for compatibility, unused
	REHistoryLen               string
	RETimeDeltaHours           float64
	RETestDatasetSizeInSeconds int64
	REMinCorrelationAllowed    float64
	REMaxMSEAllowed            float64
	ScalingFreq                string
	ScaleUpAheadSeconds        int64
	HPName, HPNamespace        string
	// BandQuantile, when > 0, adds the traffic forecast to the result (portraitresult.Band): its
	// BandQuantile-quantile, the upper band a Burst portrait of the same autoscaler compares the
	// traffic with, and its median, which the console draws.
	BandQuantile float64
}

// RecommendDeps are the outside world of Recommend.
type RecommendDeps struct {
	History   HistorySource
	Portraits PortraitGetter
	Results   ResultWriter
	Requests  RequestsLookup // only needed for Utilization targets
	Now       time.Time
}

func (o *RecommendOptions) validate() (history, scaling time.Duration, err error) {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.TSFModelPath == "" {
		add("--tsf-model-path is required")
	}
	if o.REHistoryLen == "" {
		add("--re-history-len is required (e.g. 24H, 7D)")
	} else if history, err = forecast.ParseFreq(o.REHistoryLen); err != nil {
		add("--re-history-len: %w", err)
	}
	if o.ScalingFreq == "" {
		add("--scaling-freq is required (e.g. 10min, 1H)")
	} else if scaling, err = forecast.ParseFreq(o.ScalingFreq); err != nil {
		add("--scaling-freq: %w", err)
	}
	if math.IsNaN(o.RETimeDeltaHours) || math.Abs(o.RETimeDeltaHours) > 24 {
		add("--re-time-delta-hours %g: must be within ±24", o.RETimeDeltaHours)
	}
	if o.RETestDatasetSizeInSeconds <= 0 {
		add("--re-test-dataset-size-in-seconds %d: must be > 0", o.RETestDatasetSizeInSeconds)
	}
	if c := o.REMinCorrelationAllowed; c < 0 || c > 1 || math.IsNaN(c) {
		add("--re-min-correlation-allowed %g: must be in [0, 1]", c)
	}
	if m := o.REMaxMSEAllowed; m < 0 || math.IsNaN(m) {
		add("--re-max-mse-allowed %g: must be ≥ 0", m)
	}
	if q := o.BandQuantile; q < 0 || q >= 1 || math.IsNaN(q) {
		add("--burst-band-quantile %g: must be in (0, 1), or 0 for no band", q)
	}
	if o.ScaleUpAheadSeconds < 0 {
		add("--scale-up-ahead-seconds %d: must be ≥ 0", o.ScaleUpAheadSeconds)
	}
	if o.HPName == "" {
		add("--hp-name (or $HP_NAME) is required")
	}
	if o.HPNamespace == "" {
		add("--hp-namespace (or $HP_NAMESPACE) is required")
	}
	return history, scaling, errors.Join(errs...)
}

// Recommend runs the predictive portrait job: read the HorizontalPortrait, fetch the resource, replica
// and traffic history, forecast the traffic, fit the Linear-Residual estimator, solve the replicas, resample
// by --scaling-freq with max, shift scale-ups by --scale-up-ahead-seconds and write the result ConfigMap.
// It returns the ConfigMap data.
func Recommend(ctx context.Context, o RecommendOptions, d RecommendDeps) (map[string]string, error) {
	historyLen, scalingFreq, err := o.validate()
	if err != nil {
		return nil, err
	}
	hp, err := d.Portraits.GetHorizontalPortrait(ctx, o.HPNamespace, o.HPName)
	if err != nil {
		return nil, fmt.Errorf("get HorizontalPortrait %s/%s: %w", o.HPNamespace, o.HPName, err)
	}
	model, err := forecast.Load(o.TSFModelPath)
	if err != nil {
		return nil, fmt.Errorf("--tsf-model-path %s: %w", o.TSFModelPath, err)
	}
	if step := model.Step(); scalingFreq < step {
		return nil, fmt.Errorf("--scaling-freq %s is shorter than the model's freq %s", o.ScalingFreq, model.Config.Freq)
	}
	ns, ref := hp.Namespace, hp.Spec.ScaleTargetRef
	metrics := hp.Spec.Metrics
	if len(metrics) < 3 {
		return nil, fmt.Errorf("HorizontalPortrait %s/%s spec.metrics: %d metrics, want the resource, the ready replicas and at least one traffic metric",
			ns, hp.Name, len(metrics))
	}
	target, err := resourceTarget(ctx, ns, ref, metrics[0], d.Requests)
	if err != nil {
		return nil, fmt.Errorf("spec.metrics[0]: %w", err)
	}
	if metrics[1].Type != autoscalingv2.PodsMetricSourceType {
		return nil, fmt.Errorf("spec.metrics[1]: type %q, want Pods (the ready replicas)", metrics[1].Type)
	}
	now := d.Now
	fetch := func(i int) ([]Point, error) {
		m := metrics[i]
		q, err := metricQuery(ns, ref, m)
		if err != nil {
			return nil, fmt.Errorf("spec.metrics[%d]: %w", i, err)
		}
		pts, err := fetchPoints(ctx, d.History, q, now, historyLen)
		if err != nil {
			return nil, fmt.Errorf("spec.metrics[%d]: %w", i, err)
		}
		return pts, nil
	}
	resource, err := fetch(0)
	if err != nil {
		return nil, err
	}
	replicas, err := fetch(1)
	if err != nil {
		return nil, err
	}
	traffic := make([][]Point, 0, len(metrics)-2)
	var queries []forecast.Query
	for i := 2; i < len(metrics); i++ {
		m := metrics[i]
		if m.Name == "" {
			return nil, fmt.Errorf("spec.metrics[%d].name: required for traffic metrics (it names the forecast series)", i)
		}
		switch m.Type {
		case autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType, autoscalingv2.ExternalMetricSourceType:
		default:
			return nil, fmt.Errorf("spec.metrics[%d]: type %q, traffic metrics must be Pods, Object or External", i, m.Type)
		}
		pts, err := fetch(i)
		if err != nil {
			return nil, err
		}
		traffic = append(traffic, pts)
		id := forecast.SeriesID(workloadKey(ns, ref.Name), m.Name)
		s, err := regularize(id, dropNaN(pts), model.Step())
		if err != nil {
			return nil, fmt.Errorf("spec.metrics[%d] (%s): %w", i, m.Name, err)
		}
		if len(s.Values) < model.Config.ContextLength {
			return nil, fmt.Errorf("spec.metrics[%d] (%s): %d points at %s in --re-history-len %s, the model needs %d",
				i, m.Name, len(s.Values), model.Step(), o.REHistoryLen, model.Config.ContextLength)
		}
		queries = append(queries, forecast.Query{ID: id, History: s.Values, Last: s.TimeAt(len(s.Values) - 1)})
	}
	preds, err := model.PredictBatch(queries)
	if err != nil {
		return nil, fmt.Errorf("forecast traffic with --tsf-model-path %s: %w", o.TSFModelPath, err)
	}
	times, predTraffic := joinForecasts(queries, preds, model.Step())
	if len(times) == 0 {
		return nil, errors.New("the traffic forecasts share no timestamp (their histories end at different times)")
	}

	est, err := estimator.Fit(historySamples(resource, replicas, traffic), estimator.Options{
		TimeDeltaHours: o.RETimeDeltaHours,
		TestSize:       time.Duration(o.RETestDatasetSizeInSeconds) * time.Second,
		MinCorrelation: o.REMinCorrelationAllowed,
		MaxMSE:         o.REMaxMSEAllowed,
		BigErrorLimit:  estimator.DefaultOptions().BigErrorLimit,
	})
	if err != nil {
		return nil, fmt.Errorf("replicas estimation failed, this may be caused by insufficient or irregular history data: %w", err)
	}
	points := make([]estimator.Point, 0, len(times))
	for i, t := range times {
		n, err := est.Solve(t, predTraffic[i], target)
		if err != nil {
			return nil, fmt.Errorf("at %s (traffic %v, per-pod target %g): %w", t.Format(time.RFC3339), predTraffic[i], target, err)
		}
		points = append(points, estimator.Point{Time: t, Replicas: n})
	}
	points = estimator.ShiftScaleUp(estimator.ResampleMax(points, scalingFreq), time.Duration(o.ScaleUpAheadSeconds)*time.Second)
	result, err := replicaResult(points, scalingFreq)
	if err != nil {
		return nil, err
	}
	if o.BandQuantile > 0 {
		bands, err := model.PredictBatchQuantile(queries, o.BandQuantile)
		if err != nil {
			return nil, fmt.Errorf("forecast the %g quantile of the traffic (--burst-band-quantile): %w", o.BandQuantile, err)
		}
		names := make([]string, 0, len(metrics)-2)
		for i := 2; i < len(metrics); i++ {
			names = append(names, metrics[i].Name)
		}
		// The point forecast is the network's median (forecast.Model.PredictBatch).
		result.Band = forecastBand(o.BandQuantile, names, queries, bands, preds, model.Step())
	}
	data, err := portraitresult.Encode(result)
	if err != nil {
		return nil, fmt.Errorf("result ConfigMap %s/%s: %w", ns, portraitresult.ConfigMapName(hp.Name), err)
	}
	if err := d.Results.WriteResult(ctx, hp, data); err != nil {
		return nil, fmt.Errorf("write ConfigMap %s/%s: %w", ns, portraitresult.ConfigMapName(hp.Name), err)
	}
	return data, nil
}

// resourceTarget is the per-pod resource target of metrics[0] in the history's units.
func resourceTarget(ctx context.Context, ns string, ref autoscalingv2.CrossVersionObjectReference, m autoscalingv1alpha1.MetricSpec, req RequestsLookup) (float64, error) {
	var (
		t         autoscalingv2.MetricTarget
		name      corev1.ResourceName
		container string
	)
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource == nil {
			return 0, errors.New("type Resource needs the resource block")
		}
		t, name = m.Resource.Target, m.Resource.Name
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource == nil {
			return 0, errors.New("type ContainerResource needs the containerResource block")
		}
		t, name, container = m.ContainerResource.Target, m.ContainerResource.Name, m.ContainerResource.Container
	default:
		return 0, fmt.Errorf("type %q, want Resource or ContainerResource", m.Type)
	}
	switch t.Type {
	case autoscalingv2.AverageValueMetricType:
		if t.AverageValue == nil {
			return 0, errors.New("target.averageValue is required for AverageValue")
		}
		return t.AverageValue.AsApproximateFloat64(), nil
	case autoscalingv2.UtilizationMetricType:
		if t.AverageUtilization == nil {
			return 0, errors.New("target.averageUtilization is required for Utilization")
		}
		if req == nil {
			return 0, errors.New("utilization targets need the pods' requests, and no Kubernetes client is set")
		}
		sum, err := req.PodRequests(ctx, ns, ref, name, container)
		if err != nil {
			return 0, fmt.Errorf("requests of %s: %w", name, err)
		}
		if sum <= 0 {
			return 0, fmt.Errorf("the pods of %s %s/%s request no %s", ref.Kind, ns, ref.Name, name)
		}
		return float64(*t.AverageUtilization) / 100 * sum, nil
	default:
		return 0, fmt.Errorf("target.type %q is not supported, use AverageValue or Utilization", t.Type)
	}
}

// joinForecasts keeps the timestamps every traffic forecast has (an inner join, as the reference's merge),
// in time order, with the traffic vector in metric order.
func joinForecasts(qs []forecast.Query, preds [][]float64, step time.Duration) ([]time.Time, [][]float64) {
	count := map[int64]int{}
	for i, q := range qs {
		for k := range preds[i] {
			count[q.Last.Add(time.Duration(k+1)*step).Unix()]++
		}
	}
	var secs []int64
	for s, c := range count {
		if c == len(qs) {
			secs = append(secs, s)
		}
	}
	slices.Sort(secs)
	times := make([]time.Time, len(secs))
	traffic := make([][]float64, len(secs))
	for j, s := range secs {
		times[j] = time.Unix(s, 0).UTC()
		traffic[j] = make([]float64, len(qs))
		for i, q := range qs {
			k := int(times[j].Sub(q.Last)/step) - 1
			traffic[j][i] = preds[i][k]
		}
	}
	return times, traffic
}

// historySamples merges the resource, replica and traffic histories on timestamp; missing values are NaN
// (estimator.Fit drops such rows).
func historySamples(resource, replicas []Point, traffic [][]Point) []estimator.Sample {
	rows := map[int64]*estimator.Sample{}
	get := func(t time.Time) *estimator.Sample {
		k := t.Unix()
		s, ok := rows[k]
		if !ok {
			s = &estimator.Sample{Time: time.Unix(k, 0).UTC(), Resource: math.NaN(), Replicas: math.NaN(), Traffic: make([]float64, len(traffic))}
			for i := range s.Traffic {
				s.Traffic[i] = math.NaN()
			}
			rows[k] = s
		}
		return s
	}
	for _, p := range resource {
		get(p.Time).Resource = p.Value
	}
	for _, p := range replicas {
		get(p.Time).Replicas = p.Value
	}
	for i, ts := range traffic {
		for _, p := range ts {
			get(p.Time).Traffic[i] = p.Value
		}
	}
	keys := make([]int64, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]estimator.Sample, len(keys))
	for i, k := range keys {
		out[i] = *rows[k]
	}
	return out
}

// replicaResult is the reference's result: the replicas by Unix seconds, expiring one scaling
// period after the last point.
func replicaResult(points []estimator.Point, scalingFreq time.Duration) (portraitresult.Result, error) {
	if len(points) == 0 {
		return portraitresult.Result{}, errors.New("no replica points to write")
	}
	r := portraitresult.Result{Replicas: make([]autoscalingv1alpha1.ReplicaTimeSeriesPoint, len(points))}
	last := points[0].Time
	for i, p := range points {
		if p.Replicas > math.MaxInt32 {
			return portraitresult.Result{}, fmt.Errorf("%d replicas at %s: more than a result can hold", p.Replicas, p.Time.Format(time.RFC3339))
		}
		r.Replicas[i] = autoscalingv1alpha1.ReplicaTimeSeriesPoint{Timestamp: p.Time.Unix(), Replicas: int32(p.Replicas)}
		if p.Time.After(last) {
			last = p.Time
		}
	}
	r.ExpireTime = last.Add(scalingFreq)
	return r, nil
}

// forecastBand is each traffic metric's forecast q-quantile (uppers) and median (medians) by the
// forecast's times; negative forecasts are 0 traffic.
func forecastBand(q float64, names []string, qs []forecast.Query, uppers, medians [][]float64, step time.Duration) *portraitresult.Band {
	b := &portraitresult.Band{Quantile: q, Upper: map[string][]portraitresult.Point{}, Median: map[string][]portraitresult.Point{}}
	series := func(i int, values []float64) []portraitresult.Point {
		out := make([]portraitresult.Point, len(values))
		for k, v := range values {
			out[k] = portraitresult.Point{Time: qs[i].Last.Add(time.Duration(k+1) * step).UTC(), Value: max(v, 0)}
		}
		return out
	}
	for i, name := range names {
		b.Upper[name] = series(i, uppers[i])
		b.Median[name] = series(i, medians[i])
	}
	return b
}
