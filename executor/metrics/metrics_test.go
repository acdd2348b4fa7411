package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newExporter(t *testing.T) (*Exporter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return now }
	return e, reg
}

func ihpaWith(status v1alpha1.IntelligentHorizontalPodAutoscalerStatus) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	return &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       v1alpha1.IntelligentHorizontalPodAutoscalerSpec{MinReplicas: 2, MaxReplicas: 8},
		Status:     status,
	}
}

func TestObserveIHPA(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status v1alpha1.IntelligentHorizontalPodAutoscalerStatus
		want   string
	}{
		{
			name: "gray scale-down paused by a checker, value capped to max",
			status: v1alpha1.IntelligentHorizontalPodAutoscalerStatus{
				CurrentPortraitValue: &v1alpha1.HorizontalPortraitValue{Provider: "Cron", Replicas: 12},
				Gray:                 &v1alpha1.GrayStatus{GrayPercent: 50, LastUpdateTime: metav1.NewTime(now.Add(-time.Minute))},
				OnlineReplicas:       5, CutoffReplicas: 3,
				Conditions: []metav1.Condition{
					{Type: "Stable", Status: metav1.ConditionFalse, Reason: "AnomalyPaused"},
					{Type: string(v1alpha1.ScalingActive), Status: metav1.ConditionTrue},
				},
			},
			want: `
kapacity_ihpa_desired_replicas{name="web",namespace="shop"} 8
kapacity_ihpa_gray_last_update_timestamp_seconds{name="web",namespace="shop"} 1772366340
kapacity_ihpa_gray_percent{name="web",namespace="shop"} 50
kapacity_ihpa_portrait_replicas{name="web",namespace="shop"} 12
kapacity_ihpa_replicas{name="web",namespace="shop",state="cutoff"} 3
kapacity_ihpa_replicas{name="web",namespace="shop",state="online"} 5
kapacity_ihpa_replicas{name="web",namespace="shop",state="standby"} 0
kapacity_ihpa_scaling_active{name="web",namespace="shop"} 1
kapacity_ihpa_stability_state{name="web",namespace="shop",state="paused"} 1
kapacity_ihpa_stability_state{name="web",namespace="shop",state="rolled_back"} 0
kapacity_ihpa_stability_state{name="web",namespace="shop",state="stable"} 0
`,
		},
		{
			name: "no valid portrait value: no desired replicas, no gray, no checker verdict",
			status: v1alpha1.IntelligentHorizontalPodAutoscalerStatus{
				OnlineReplicas: 1,
				Conditions:     []metav1.Condition{{Type: string(v1alpha1.ScalingActive), Status: metav1.ConditionFalse}},
			},
			want: `
kapacity_ihpa_replicas{name="web",namespace="shop",state="cutoff"} 0
kapacity_ihpa_replicas{name="web",namespace="shop",state="online"} 1
kapacity_ihpa_replicas{name="web",namespace="shop",state="standby"} 0
kapacity_ihpa_scaling_active{name="web",namespace="shop"} 0
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, reg := newExporter(t)
			// A previous reconcile saw a gray change and a checker; this one must not keep them.
			e.ObserveIHPA(ihpaWith(v1alpha1.IntelligentHorizontalPodAutoscalerStatus{
				CurrentPortraitValue: &v1alpha1.HorizontalPortraitValue{Replicas: 3},
				Gray:                 &v1alpha1.GrayStatus{GrayPercent: 10},
				Conditions:           []metav1.Condition{{Type: "Stable", Status: metav1.ConditionTrue}},
			}))
			e.ObserveIHPA(ihpaWith(tc.status))
			if got := samples(t, reg, ihpaMetricNames...); got != strings.TrimSpace(tc.want) {
				t.Errorf("got\n%s\nwant\n%s", got, strings.TrimSpace(tc.want))
			}
		})
	}
}

var ihpaMetricNames = []string{"kapacity_ihpa_desired_replicas", "kapacity_ihpa_gray_last_update_timestamp_seconds",
	"kapacity_ihpa_gray_percent", "kapacity_ihpa_portrait_replicas", "kapacity_ihpa_replicas", "kapacity_ihpa_scaling_active",
	"kapacity_ihpa_stability_state", "kapacity_ihpa_provider_replicas"}

// samples formats the series of the named metrics as "name{labels} value" lines, sorted.
func samples(t *testing.T, reg *prometheus.Registry, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			lines = append(lines, fmt.Sprintf("%s{%s} %s", mf.GetName(), strings.Join(ls, ","), strconv.FormatFloat(v, 'f', -1, 64)))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestProvidersAndForget(t *testing.T) {
	e, reg := newExporter(t)
	ihpa := ihpaWith(v1alpha1.IntelligentHorizontalPodAutoscalerStatus{CurrentPortraitValue: &v1alpha1.HorizontalPortraitValue{Replicas: 4}})
	expired := metav1.NewTime(now.Add(-time.Second))
	e.ObserveProviders(ihpa, []portrait.Candidate{
		{Priority: 1, Evaluation: portrait.Evaluation{Value: &v1alpha1.HorizontalPortraitValue{Provider: "Static", Replicas: 2}}},
		{Priority: 2, Evaluation: portrait.Evaluation{}}, // a cron outside its windows
		{Priority: 3, Evaluation: portrait.Evaluation{Value: &v1alpha1.HorizontalPortraitValue{Provider: "Dynamic-Predictive", Replicas: 9, ExpireTime: &expired}}},
		{Priority: 0, Evaluation: portrait.Evaluation{Value: &v1alpha1.HorizontalPortraitValue{Provider: "Dynamic-Reactive", Replicas: 4}}},
	})
	e.ObserveIHPA(ihpa)
	want := `
kapacity_ihpa_provider_replicas{name="web",namespace="shop",priority="0",provider="Dynamic-Reactive"} 4
kapacity_ihpa_provider_replicas{name="web",namespace="shop",priority="1",provider="Static"} 2
`
	if got := samples(t, reg, "kapacity_ihpa_provider_replicas"); got != strings.TrimSpace(want) {
		t.Errorf("got\n%s\nwant\n%s", got, strings.TrimSpace(want))
	}
	// Another IHPA's series stay when this one goes.
	other := ihpa.DeepCopy()
	other.Name = "api"
	e.ObserveIHPA(other)
	e.ForgetIHPA(types.NamespacedName{Namespace: "shop", Name: "web"})
	if n := testutil.CollectAndCount(e.replicas); n != 3 {
		t.Errorf("after ForgetIHPA: %d kapacity_ihpa_replicas series, want the 3 of shop/api", n)
	}
	if s := dump(t, reg); strings.Contains(s, `value:"web"`) {
		t.Errorf("series of the deleted IHPA remain after ForgetIHPA:\n%s", s)
	}
}

func dump(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.String())
	}
	return b.String()
}

func TestObservePortrait(t *testing.T) {
	e, reg := newExporter(t)
	expire := metav1.NewTime(now.Add(time.Hour))
	hp := &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-predictive"},
		Spec: v1alpha1.HorizontalPortraitSpec{PortraitSpec: v1alpha1.PortraitSpec{
			PortraitType: v1alpha1.PredictivePortraitType,
			Algorithm:    v1alpha1.PortraitAlgorithm{Type: v1alpha1.ExternalJobPortraitAlgorithmType},
		}},
		Status: v1alpha1.HorizontalPortraitStatus{
			PortraitData: &v1alpha1.HorizontalPortraitData{
				Type:       v1alpha1.TimeSeriesHorizontalPortraitDataType,
				ExpireTime: &expire,
				TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: []v1alpha1.ReplicaTimeSeriesPoint{
					{Timestamp: now.Add(-10 * time.Minute).Unix(), Replicas: 3},
					{Timestamp: now.Add(-time.Minute).Unix(), Replicas: 5},
					{Timestamp: now.Add(10 * time.Minute).Unix(), Replicas: 7},
				}},
			},
			Conditions: []metav1.Condition{{Type: string(v1alpha1.PortraitGenerated), Status: metav1.ConditionTrue}},
		},
	}
	e.ObservePortrait(hp)
	failed := hp.DeepCopy()
	failed.Status.Conditions[0].Status = metav1.ConditionFalse
	e.ObservePortrait(failed)
	e.ObservePortrait(failed)
	want := `
kapacity_portrait_expire_timestamp_seconds{name="web-predictive",namespace="shop"} 1772370000
kapacity_portrait_generated{algorithm="ExternalJob",name="web-predictive",namespace="shop"} 0
kapacity_portrait_generations_total{algorithm="ExternalJob",name="web-predictive",namespace="shop",outcome="failed"} 2
kapacity_portrait_generations_total{algorithm="ExternalJob",name="web-predictive",namespace="shop",outcome="succeeded"} 1
kapacity_portrait_last_success_timestamp_seconds{name="web-predictive",namespace="shop"} 1772366400
kapacity_portrait_replicas{name="web-predictive",namespace="shop",type="Predictive"} 5
`
	names := []string{"kapacity_portrait_expire_timestamp_seconds", "kapacity_portrait_generated", "kapacity_portrait_generations_total",
		"kapacity_portrait_last_success_timestamp_seconds", "kapacity_portrait_replicas"}
	if got := samples(t, reg, names...); got != strings.TrimSpace(want) {
		t.Errorf("got\n%s\nwant\n%s", got, strings.TrimSpace(want))
	}
	e.ForgetPortrait(types.NamespacedName{Namespace: "shop", Name: "web-predictive"})
	if s := dump(t, reg); strings.Contains(s, "web-predictive") {
		t.Errorf("series of the deleted portrait remain:\n%s", s)
	}
}

func TestNewTwiceSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(reg)
	if err != nil {
		t.Fatalf("a second manager in the same process: %v", err)
	}
	b.ObserveIHPA(ihpaWith(v1alpha1.IntelligentHorizontalPodAutoscalerStatus{OnlineReplicas: 2}))
	if got := testutil.ToFloat64(a.replicas.WithLabelValues("shop", "web", "online")); got != 2 {
		t.Errorf("the first exporter sees %v online replicas, want 2", got)
	}
	var none *Exporter
	none.ObserveIHPA(ihpaWith(v1alpha1.IntelligentHorizontalPodAutoscalerStatus{}))
	none.ForgetPortrait(types.NamespacedName{})
}
