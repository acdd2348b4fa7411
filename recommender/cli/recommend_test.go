package cli

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// Synthetic workload: traffic follows a daily sine, the replicas cycle 2..5 by hour, and the total CPU is
// 0.01 core per request plus 0.05 core per pod.
func trafficAt(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 100 + 40*math.Sin(2*math.Pi*h/24)
}
func replicasAt(t time.Time) float64 { return float64(2 + t.Hour()%4) }
func cpuAt(t time.Time) float64      { return 0.01*trafficAt(t) + 0.05*replicasAt(t) }

type fakeHistory struct {
	queries []historyv1alpha1.Query
	fail    error
}

func (f *fakeHistory) Range(_ context.Context, q historyv1alpha1.Query, r historyv1alpha1.Range) ([]historyv1alpha1.Series, error) {
	f.queries = append(f.queries, q)
	if f.fail != nil {
		return nil, f.fail
	}
	var fn func(time.Time) float64
	switch {
	case q.Kind == historyv1alpha1.WorkloadResource && q.Resource == "cpu":
		fn = cpuAt
	case q.Kind == historyv1alpha1.WorkloadExternal && q.Metric == "kube_pod_status_ready":
		fn = replicasAt
	case q.Kind == historyv1alpha1.WorkloadExternal && q.Metric == "http_requests":
		fn = trafficAt
	default:
		return nil, nil
	}
	s := historyv1alpha1.Series{Labels: map[string]string{}}
	for t := r.Start.Truncate(r.Step); !t.After(r.End); t = t.Add(r.Step) {
		if t.Before(r.Start) {
			continue
		}
		s.Points = append(s.Points, historyv1alpha1.Point{Timestamp: t.UnixMilli(), Value: historyv1alpha1.Value(fn(t))})
	}
	return []historyv1alpha1.Series{s}, nil
}

type fakeCluster struct {
	hp       *autoscalingv1alpha1.HorizontalPortrait
	written  map[string]string
	requests float64
}

func (f *fakeCluster) GetHorizontalPortrait(_ context.Context, ns, name string) (*autoscalingv1alpha1.HorizontalPortrait, error) {
	if f.hp == nil || f.hp.Namespace != ns || f.hp.Name != name {
		return nil, errors.New("not found")
	}
	return f.hp, nil
}

func (f *fakeCluster) WriteResult(_ context.Context, _ *autoscalingv1alpha1.HorizontalPortrait, data map[string]string) error {
	f.written = data
	return nil
}

func (f *fakeCluster) PodRequests(context.Context, string, autoscalingv2.CrossVersionObjectReference, corev1.ResourceName, string) (float64, error) {
	return f.requests, nil
}

func podsMetric(name, metric string) autoscalingv1alpha1.MetricSpec {
	return autoscalingv1alpha1.MetricSpec{Name: name, MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: metric},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(1, resource.DecimalSI)}}}}
}

func cpuMetric(target autoscalingv2.MetricTarget) autoscalingv1alpha1.MetricSpec {
	return autoscalingv1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: target}}}
}

func testPortrait(metrics ...autoscalingv1alpha1.MetricSpec) *autoscalingv1alpha1.HorizontalPortrait {
	return &autoscalingv1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-predictive"},
		Spec: autoscalingv1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			PortraitSpec:   autoscalingv1alpha1.PortraitSpec{PortraitType: autoscalingv1alpha1.PredictivePortraitType, Metrics: metrics},
		},
	}
}

// trainTrafficModel trains an hourly model of the synthetic traffic under the series the job looks up.
func trainTrafficModel(t *testing.T) string {
	t.Helper()
	s := forecast.Series{ID: forecast.SeriesID("default/web", "qps"), Start: t0, Step: time.Hour, Values: make([]float64, 24*14)}
	for i := range s.Values {
		s.Values[i] = trafficAt(s.TimeAt(i))
	}
	c := forecast.DefaultConfig()
	c.Freq, c.ContextLength, c.PredictionLength, c.HiddenSize, c.Epochs, c.LearningRate = "1H", 24, 6, 16, 30, 3e-3
	m, err := forecast.Train([]forecast.Series{s}, c, forecast.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func baseOptions(model string) RecommendOptions {
	return RecommendOptions{
		TSFModelPath: model, REHistoryLen: "7D", RETimeDeltaHours: 8, RETestDatasetSizeInSeconds: 86400,
		REMinCorrelationAllowed: 0.9, REMaxMSEAllowed: 10, ScalingFreq: "1H", HPName: "web-predictive", HPNamespace: "default",
	}
}

func TestRecommend(t *testing.T) {
	model := trainTrafficModel(t)
	now := t0.Add(14*24*time.Hour + 30*time.Second)
	avg := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewMilliQuantity(500, resource.DecimalSI)}
	util := autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}
	tests := []struct {
		name     string
		target   autoscalingv2.MetricTarget
		requests float64
		ahead    int64
	}{
		{"average value", avg, 0, 0},
		{"utilization of requests", util, 1, 0}, // 50% of 1 core = the same 0.5 core target
		{"scale up ahead", avg, 0, 1800},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := &fakeCluster{hp: testPortrait(cpuMetric(tc.target), podsMetric("ready", "kube_pod_status_ready"), podsMetric("qps", "http_requests")), requests: tc.requests}
			hist := &fakeHistory{}
			o := baseOptions(model)
			o.ScaleUpAheadSeconds = tc.ahead
			data, err := Recommend(context.Background(), o, RecommendDeps{History: hist, Portraits: cl, Results: cl, Requests: cl, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if cl.written == nil || cl.written["type"] != "TimeSeries" {
				t.Fatalf("written %v", cl.written)
			}
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\dZ$`).MatchString(data["expireTime"]) {
				t.Errorf("expireTime %q not in the reference format", data["expireTime"])
			}
			var ts map[string]int
			if err := json.Unmarshal([]byte(data["timeSeries"]), &ts); err != nil {
				t.Fatalf("timeSeries %q: %v", data["timeSeries"], err)
			}
			if len(ts) == 0 {
				t.Fatal("empty timeSeries")
			}
			var secs []int64
			for k, n := range ts {
				s, err := strconv.ParseInt(k, 10, 64)
				if err != nil {
					t.Fatalf("key %q is not integer seconds", k)
				}
				secs = append(secs, s)
				// Need: 0.01·traffic + 0.05·n ≤ 0.5·n, traffic in [60, 140] → n in [2, 4] (one more for forecast error).
				if n < 2 || n > 5 {
					t.Errorf("replicas %d at %d outside [2, 5]", n, s)
				}
			}
			slices.Sort(secs)
			last := time.Unix(secs[len(secs)-1], 0).UTC()
			if got, want := data["expireTime"], last.Add(time.Hour).Format(portraitresult.ExpireTimeLayout); got != want {
				t.Errorf("expireTime %s, want %s", got, want)
			}
			if first := time.Unix(secs[0], 0); tc.ahead == 0 && (first.Before(now.Add(-time.Hour)) || first.Unix()%3600 != 0) {
				t.Errorf("first point %s: want hour-aligned, after now %s", first.UTC(), now)
			}
			if len(hist.queries) != 3 || !hist.queries[0].ReadyPodsOnly || hist.queries[0].Workload.Kind != "Deployment" {
				t.Errorf("queries %+v", hist.queries)
			}
		})
	}
}

// TestRecommendWritesTheBand: with --burst-band-quantile the result carries each traffic metric's
// forecast quantile and median over the horizon, in the format the manager's Burst generator and
// the console read; a higher quantile is an upper band above a lower one, the median between them.
func TestRecommendWritesTheBand(t *testing.T) {
	model := trainTrafficModel(t)
	now := t0.Add(14*24*time.Hour + 30*time.Second)
	avg := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewMilliQuantity(500, resource.DecimalSI)}
	band := func(q float64) (upper, median []portraitresult.Point) {
		t.Helper()
		cl := &fakeCluster{hp: testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("qps", "http_requests"))}
		o := baseOptions(model)
		o.BandQuantile = q
		data, err := Recommend(context.Background(), o, RecommendDeps{History: &fakeHistory{}, Portraits: cl, Results: cl, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		b, err := portraitresult.DecodeBand(data)
		if err != nil || b.Quantile != q {
			t.Fatalf("band %s: %v (quantile %v, want %v)", data[portraitresult.KeyTrafficBand], err, b.Quantile, q)
		}
		if upper, err = b.UpperOf("qps"); err != nil {
			t.Fatal(err)
		}
		return upper, b.Median["qps"]
	}
	upper, median := band(0.9)
	lower, median2 := band(0.1)
	if len(upper) != 6 || len(lower) != 6 || len(median) != 6 {
		t.Fatalf("%d, %d and %d band points, want the 6 of the forecast horizon", len(upper), len(lower), len(median))
	}
	for i := range upper {
		if !upper[i].Time.After(now.Add(-time.Hour)) || upper[i].Time.Unix()%3600 != 0 || !upper[i].Time.Equal(lower[i].Time) || !upper[i].Time.Equal(median[i].Time) {
			t.Errorf("point %d at %s (and %s, %s): want the forecast's hours after now", i, upper[i].Time, lower[i].Time, median[i].Time)
		}
		if upper[i].Value < median[i].Value || median[i].Value < lower[i].Value || upper[i].Value < 60 || upper[i].Value > 200 {
			t.Errorf("point %d: 0.9 quantile %.1f, median %.1f, 0.1 quantile %.1f; want ordered, around the traffic of 60..140", i, upper[i].Value, median[i].Value, lower[i].Value)
		}
		if median[i] != median2[i] {
			t.Errorf("point %d: median %v with the 0.9 band, %v with the 0.1 band: the median does not depend on the band", i, median[i], median2[i])
		}
	}
	cl := &fakeCluster{hp: testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("qps", "http_requests"))}
	if data, err := Recommend(context.Background(), baseOptions(model), RecommendDeps{History: &fakeHistory{}, Portraits: cl, Results: cl, Now: now}); err != nil || data[portraitresult.KeyTrafficBand] != "" {
		t.Errorf("without --burst-band-quantile: %v, band %q, want none", err, data[portraitresult.KeyTrafficBand])
	}
}

func TestRecommendErrors(t *testing.T) {
	model := trainTrafficModel(t)
	now := t0.Add(14 * 24 * time.Hour)
	avg := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewMilliQuantity(500, resource.DecimalSI)}
	good := testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("qps", "http_requests"))
	tests := []struct {
		name    string
		mutate  func(*RecommendOptions)
		hp      *autoscalingv1alpha1.HorizontalPortrait
		histErr error
		want    string
	}{
		{"missing model flag", func(o *RecommendOptions) { o.TSFModelPath = "" }, good, nil, "--tsf-model-path is required"},
		{"bad history len", func(o *RecommendOptions) { o.REHistoryLen = "7X" }, good, nil, "--re-history-len"},
		{"bad scaling freq", func(o *RecommendOptions) { o.ScalingFreq = "" }, good, nil, "--scaling-freq is required"},
		{"scaling freq below model freq", func(o *RecommendOptions) { o.ScalingFreq = "10min" }, good, nil, "shorter than the model's freq"},
		{"correlation out of range", func(o *RecommendOptions) { o.REMinCorrelationAllowed = 2 }, good, nil, "--re-min-correlation-allowed"},
		{"band quantile out of range", func(o *RecommendOptions) { o.BandQuantile = 1 }, good, nil, "--burst-band-quantile 1: must be in (0, 1)"},
		{"missing hp", func(o *RecommendOptions) { o.HPName = "other" }, good, nil, "get HorizontalPortrait default/other"},
		{"too few metrics", nil, testPortrait(cpuMetric(avg)), nil, "spec.metrics: 1 metrics"},
		{"first metric not a resource", nil, testPortrait(podsMetric("a", "b"), podsMetric("ready", "r"), podsMetric("qps", "q")), nil, "spec.metrics[0]: type \"Pods\""},
		{"value target", nil, testPortrait(cpuMetric(autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType}), podsMetric("ready", "r"), podsMetric("qps", "q")), nil, "target.type \"Value\""},
		{"traffic without name", nil, testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("", "http_requests")), nil, "spec.metrics[2].name: required"},
		{"history error", nil, good, errors.New("boom"), "spec.metrics[0]: query WorkloadResource"},
		{"no traffic data", nil, testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("qps", "unknown")), nil, "spec.metrics[2]: query WorkloadExternal default/web metric unknown: no data"},
		{"unknown series", nil, testPortrait(cpuMetric(avg), podsMetric("ready", "kube_pod_status_ready"), podsMetric("rps", "http_requests")), nil, "forecast traffic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(model)
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			cl := &fakeCluster{hp: tc.hp}
			_, err := Recommend(context.Background(), o, RecommendDeps{History: &fakeHistory{fail: tc.histErr}, Portraits: cl, Results: cl, Now: now})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
			if cl.written != nil {
				t.Error("a result was written despite the error")
			}
		})
	}
}
