package hportrait

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

var burstNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// fakeHistory answers every range query with its values, one per step ending at the range's end.
type fakeHistory struct {
	values  []float64
	err     error
	queries []historyv1alpha1.Query
	ranges  []historyv1alpha1.Range
}

func (h *fakeHistory) Range(_ context.Context, q historyv1alpha1.Query, r historyv1alpha1.Range) ([]historyv1alpha1.Series, error) {
	h.queries, h.ranges = append(h.queries, q), append(h.ranges, r)
	if h.err != nil {
		return nil, h.err
	}
	s := historyv1alpha1.Series{Labels: map[string]string{}}
	for i, v := range h.values {
		t := r.End.Add(-time.Duration(len(h.values)-1-i) * r.Step)
		s.Points = append(s.Points, historyv1alpha1.Point{Timestamp: t.UnixMilli(), Value: historyv1alpha1.Value(v)})
	}
	return []historyv1alpha1.Series{s}, nil
}

// webScaler reports Deployment web's selector.
type webScaler struct{}

func (webScaler) GetScale(context.Context, string, autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error) {
	return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Status: autoscalingv1.ScaleStatus{Selector: "app=web"}},
		schema.GroupResource{Group: "apps", Resource: "deployments"}, nil
}

func (webScaler) UpdateScale(_ context.Context, _ string, _ schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return s, nil
}

func burstIHPA() *v1alpha1.IntelligentHorizontalPodAutoscaler {
	return &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "ihpa-uid"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    1, MaxReplicas: 20,
		},
	}
}

func ownedBy(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "IntelligentHorizontalPodAutoscaler",
		Name: ihpa.Name, UID: ihpa.UID, Controller: ptr.To(true)}}
}

// burstHP is a Burst portrait of 10 requests/s per pod, checked every 5 s on samples 2 s apart,
// for pods that take 10 s to start.
func burstHP() *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Name: "web-burst", Namespace: "ns", Generation: 1, OwnerReferences: ownedBy(burstIHPA())},
		Spec: v1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: burstIHPA().Spec.ScaleTargetRef,
			PortraitSpec: v1alpha1.PortraitSpec{
				PortraitType: v1alpha1.BurstPortraitType,
				Metrics: []v1alpha1.MetricSpec{{Name: "qps", MetricSpec: autoscalingv2.MetricSpec{
					Type: autoscalingv2.ExternalMetricSourceType,
					External: &autoscalingv2.ExternalMetricSource{
						Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("10"))},
					},
				}}},
				Algorithm: v1alpha1.PortraitAlgorithm{Type: v1alpha1.BurstPortraitAlgorithmType, Burst: &v1alpha1.BurstPortraitAlgorithm{
					SyncPeriod: metav1.Duration{Duration: 5 * time.Second}, SampleInterval: metav1.Duration{Duration: 2 * time.Second},
					StartupDelay: metav1.Duration{Duration: 10 * time.Second},
				}},
			},
		},
	}
}

func readyPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

type burstEnv struct {
	c        client.Client
	r        *Reconciler
	history  *fakeHistory
	recorder *events.FakeRecorder
	now      time.Time
}

func newBurstEnv(t *testing.T, objs ...client.Object) *burstEnv {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	e := &burstEnv{history: &fakeHistory{}, recorder: events.NewFakeRecorder(100), now: burstNow}
	e.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&v1alpha1.HorizontalPortrait{}).Build()
	e.restart()
	return e
}

// restart replaces the reconciler, as a restarted manager would: nothing is kept in memory.
func (e *burstEnv) restart() {
	e.r = &Reconciler{Client: e.c, Reader: e.c, Scaler: webScaler{}, History: e.history, Recorder: e.recorder,
		Now: func() time.Time { return e.now }}
}

func (e *burstEnv) setPods(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	if err := e.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("ns")); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := e.c.Create(ctx, readyPod(fmt.Sprintf("web-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// sync runs one sync of web-burst on traffic samples and returns the portrait after it.
func (e *burstEnv) sync(t *testing.T, samples ...float64) (*v1alpha1.HorizontalPortrait, ctrl.Result) {
	t.Helper()
	e.history.values = samples
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "web-burst"}})
	if err != nil {
		t.Fatal(err)
	}
	hp := &v1alpha1.HorizontalPortrait{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "web-burst"}, hp); err != nil {
		t.Fatal(err)
	}
	return hp, res
}

func staticReplicas(hp *v1alpha1.HorizontalPortrait) int32 {
	if d := hp.Status.PortraitData; d != nil && d.Static != nil {
		return d.Static.Replicas
	}
	return -1
}

func generated(hp *v1alpha1.HorizontalPortrait) *metav1.Condition {
	return meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated))
}

// TestBurstPortraitLifecycle: quiet traffic gives no value; a burst asks at once for what the traffic
// projected one start-up ahead needs; the burst holds while the traffic is more than the pods that
// served before it can take (not just until the new pods serve it), ignores one wild sample,
// survives a restart, and ends when the traffic is back, which gives the other providers back.
func TestBurstPortraitLifecycle(t *testing.T) {
	e := newBurstEnv(t, burstIHPA(), burstHP())
	e.setPods(t, 1)

	// Quiet: 5 requests/s for one pod of 10.
	hp, res := e.sync(t, 5, 5, 5, 5, 5)
	if staticReplicas(hp) != 0 || hp.Status.Burst != nil || hp.Status.PortraitData.ExpireTime != nil || res.RequeueAfter != 5*time.Second {
		t.Fatalf("quiet: data %+v burst %+v requeue %v, want Static 0 replicas, no burst, a requeue after the 5s sync", hp.Status.PortraitData, hp.Status.Burst, res.RequeueAfter)
	}
	if c := generated(hp); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "no burst") {
		t.Errorf("quiet: condition %+v", c)
	}
	q, r := e.history.queries[0], e.history.ranges[0]
	if q.Kind != historyv1alpha1.External || q.Metric != "requests_per_second" || q.Namespace != "ns" ||
		r.Step != 2*time.Second || !r.End.Equal(burstNow) || !r.Start.Equal(burstNow.Add(-8*time.Second)) {
		t.Errorf("history query %+v range %+v, want the external metric's last five samples 2s apart", q, r)
	}

	// The burst: level 40 (median of 5, 40, 60), Theil–Sen slope 7.8125/s, so 118.1 requests/s
	// within the 10 s start-up: 12 pods of 10.
	hp, _ = e.sync(t, 5, 5, 5, 40, 60)
	want := metav1.NewTime(burstNow.Add(15 * time.Second))
	if staticReplicas(hp) != 12 || hp.Status.Burst == nil || hp.Status.Burst.BaselineReplicas != 1 ||
		hp.Status.PortraitData.ExpireTime == nil || !hp.Status.PortraitData.ExpireTime.Equal(&want) {
		t.Fatalf("burst: data %+v burst %+v, want 12 replicas expiring after three syncs, baseline 1", hp.Status.PortraitData, hp.Status.Burst)
	}
	if ev := drain(e.recorder); !strings.Contains(ev, ReasonBurstDetected) || !strings.Contains(ev, "asking for 12 replicas") {
		t.Errorf("events %q, want %s", ev, ReasonBurstDetected)
	}

	// The pods are up and serve the 60 requests/s at 86 %: measured against them there would be no
	// burst, and the portrait would drop to the other providers' value and come back next sync.
	// Against the one pod that served before, the burst goes on, at what the traffic needs.
	e.setPods(t, 7)
	e.now = e.now.Add(5 * time.Second)
	hp, _ = e.sync(t, 60, 60, 60, 60, 60)
	if staticReplicas(hp) != 6 || hp.Status.Burst == nil || hp.Status.Burst.BaselineReplicas != 1 {
		t.Fatalf("sustained: data %+v burst %+v, want 6 replicas, still against the baseline of 1", hp.Status.PortraitData, hp.Status.Burst)
	}

	// One wild sample moves nothing; nor does a restart.
	e.restart()
	e.now = e.now.Add(5 * time.Second)
	hp, _ = e.sync(t, 60, 60, 60, 60, 5)
	if staticReplicas(hp) != 6 || hp.Status.Burst == nil {
		t.Fatalf("glitch after a restart: data %+v burst %+v, want 6 replicas", hp.Status.PortraitData, hp.Status.Burst)
	}

	// The traffic is back: no value, the other providers decide.
	e.now = e.now.Add(5 * time.Second)
	hp, _ = e.sync(t, 60, 30, 5, 5, 5)
	if staticReplicas(hp) != 0 || hp.Status.Burst != nil || hp.Status.PortraitData.ExpireTime != nil {
		t.Fatalf("after: data %+v burst %+v, want Static 0, no burst", hp.Status.PortraitData, hp.Status.Burst)
	}
	if ev := drain(e.recorder); !strings.Contains(ev, ReasonBurstEnded) {
		t.Errorf("events %q, want %s", ev, ReasonBurstEnded)
	}
}

// TestBurstFailedReadKeepsTheValue: a traffic read that fails during a burst is reported and
// leaves the value (and the burst) alone: it expires by itself unless a later read renews it.
func TestBurstFailedReadKeepsTheValue(t *testing.T) {
	e := newBurstEnv(t, burstIHPA(), burstHP())
	e.setPods(t, 1)
	before, _ := e.sync(t, 5, 5, 5, 40, 60)
	e.history.err = errors.New("the server is currently unable to handle the request")
	e.now = e.now.Add(5 * time.Second)
	hp, res := e.sync(t)
	if staticReplicas(hp) != staticReplicas(before) || hp.Status.Burst == nil || !hp.Status.PortraitData.ExpireTime.Equal(before.Status.PortraitData.ExpireTime) {
		t.Errorf("data %+v burst %+v, want the burst's value kept as it was", hp.Status.PortraitData, hp.Status.Burst)
	}
	if c := generated(hp); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonFailedGenerate || !strings.Contains(c.Message, "history API") {
		t.Errorf("condition %+v", c)
	}
	if res.RequeueAfter != 5*time.Second {
		t.Errorf("requeue after %v, want the sync period", res.RequeueAfter)
	}
}

// predictiveSibling is the Predictive portrait of the same autoscaler, and its result with a band.
func predictiveSibling(band, expire string) (*v1alpha1.HorizontalPortrait, *corev1.ConfigMap) {
	hp := predictiveHP()
	hp.Name, hp.UID, hp.OwnerReferences = "web-predictive", "", ownedBy(burstIHPA())
	data := map[string]string{"type": "TimeSeries", "timeSeries": `{"1772452800": 3}`, "expireTime": expire}
	if band != "" {
		data[portraitresult.KeyTrafficBand] = band
	}
	return hp, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-predictive-result", Namespace: "ns"}, Data: data}
}

// TestBurstAgainstTheForecastBand: traffic the serving pods could take, but 20 % over the forecast's
// upper band, is a burst when the Predictive portrait's job wrote a band for the metric; with an
// expired forecast, one whose expiry cannot be read, or none, the capacity rule alone decides.
func TestBurstAgainstTheForecastBand(t *testing.T) {
	band := fmt.Sprintf(`{"quantile": 0.9, "metrics": {"qps": {"%d": 50}}}`, burstNow.Add(-time.Hour).Unix())
	withMedian := fmt.Sprintf(`{"quantile": 0.8, "metrics": {"qps": {"%[1]d": 50}}, "median": {"qps": {"%[1]d": 40}}}`, burstNow.Add(-time.Hour).Unix())
	in := func(d time.Duration) string { return burstNow.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name      string
		band      string
		expire    string
		want      int32
		reasonHas string
	}{
		{"band in force", band, in(time.Hour), 10, "forecast band: the 0.9 quantile"},
		{"band beside the median", withMedian, in(time.Hour), 10, "forecast band: the 0.8 quantile"},
		{"forecast expired", band, in(-time.Minute), 0, "expired"},
		{"expiry unreadable", band, "soon", 0, "expireTime: \"soon\" is not an RFC 3339 time"},
		{"no band written", "", in(time.Hour), 0, "has no trafficBand"},
		{"band of another metric", `{"quantile": 0.9, "metrics": {"rps": {"0": 50}}}`, in(time.Hour), 0, `no band for the metric "qps"`},
		{"band unreadable", `{"quantile": 0.9, "metrics": {"qps": {"0": -50}}}`, in(time.Hour), 0, `trafficBand: metrics of "qps" at 0 is -50`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sibling, result := predictiveSibling(tc.band, tc.expire)
			e := newBurstEnv(t, burstIHPA(), burstHP(), sibling, result)
			e.setPods(t, 10) // 100 requests/s of capacity
			hp, _ := e.sync(t, 60, 60, 60, 60, 60)
			if staticReplicas(hp) != tc.want {
				t.Errorf("replicas %d, want %d; %+v", staticReplicas(hp), tc.want, generated(hp))
			}
			if c := generated(hp); c == nil || !strings.Contains(c.Message, tc.reasonHas) {
				t.Errorf("condition %+v, want it to mention %q", c, tc.reasonHas)
			}
		})
	}
}

func TestBurstGeneratorChoice(t *testing.T) {
	hp := burstHP()
	hp.Spec.Algorithm = v1alpha1.PortraitAlgorithm{Type: v1alpha1.KubeHPAPortraitAlgorithmType}
	e := newBurstEnv(t, burstIHPA(), hp)
	got, _ := e.sync(t)
	if c := generated(got); c == nil || c.Reason != ReasonFailedGetGenerator || !strings.Contains(c.Message, "Burst with Burst") {
		t.Errorf("condition %+v, want %s naming the Burst algorithm", c, ReasonFailedGetGenerator)
	}
	if len(e.history.queries) != 0 {
		t.Errorf("the history was read for a portrait without a generator")
	}
}

// TestBurstSpecErrors: a Burst portrait it cannot run says which field to fix.
func TestBurstSpecErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(hp *v1alpha1.HorizontalPortrait)
		want   string
	}{
		{"no metric", func(hp *v1alpha1.HorizontalPortrait) { hp.Spec.Metrics = nil }, "spec.metrics: a Burst portrait needs its traffic metric"},
		{"value target", func(hp *v1alpha1.HorizontalPortrait) {
			hp.Spec.Metrics[0].External.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr.To(resource.MustParse("10"))}
		}, "spec.metrics[0]: external.target: Burst needs an averageValue target"},
		{"capacity below the target", func(hp *v1alpha1.HorizontalPortrait) {
			hp.Spec.Algorithm.Burst.PodCapacity = ptr.To(resource.MustParse("5"))
		}, "podCapacity 5 is below the target 10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hp := burstHP()
			tc.mutate(hp)
			e := newBurstEnv(t, burstIHPA(), hp)
			e.setPods(t, 1)
			got, _ := e.sync(t, 5, 5, 5, 5, 5)
			if c := generated(got); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, tc.want) {
				t.Errorf("condition %+v, want False mentioning %q", c, tc.want)
			}
		})
	}
}

func TestPodCapacity(t *testing.T) {
	avg := func(v string) autoscalingv2.MetricTarget {
		return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse(v))}
	}
	cpu := func(util int32) v1alpha1.MetricSpec {
		return v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(util)},
		}}}
	}
	object := v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		Metric:          autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"}, Target: avg("25"),
	}}}
	pods := []*corev1.Pod{readyPod("a"), readyPod("b")}
	tests := []struct {
		name             string
		m                v1alpha1.MetricSpec
		override         string
		capacity, target float64
		wantErr          string
	}{
		{name: "averageValue is the capacity", m: object, capacity: 25, target: 1},
		{name: "podCapacity sets the target", m: object, override: "50", capacity: 50, target: 0.5},
		{name: "cpu utilization of the request", m: cpu(60), capacity: 0.5, target: 0.6},
		{name: "utilization above 100 %", m: cpu(150), capacity: 0.75, target: 1},
		{name: "podCapacity below the target", m: object, override: "20", wantErr: "below the target 25"},
		{name: "pods metric without its block", m: v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType}}, wantErr: "no pods block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var override *resource.Quantity
			if tc.override != "" {
				override = ptr.To(resource.MustParse(tc.override))
			}
			c, tg, err := podCapacity(&tc.m, override, pods)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || math.Abs(c-tc.capacity) > 1e-9 || math.Abs(tg-tc.target) > 1e-9 {
				t.Fatalf("capacity %v target %v err %v, want %v and %v", c, tg, err, tc.capacity, tc.target)
			}
		})
	}
}

func TestTrafficQuery(t *testing.T) {
	ref := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	m := func(s autoscalingv2.MetricSpec) *v1alpha1.MetricSpec { return &v1alpha1.MetricSpec{MetricSpec: s} }
	id := autoscalingv2.MetricIdentifier{Name: "rps", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"route": "api"}}}
	tests := []struct {
		name string
		m    *v1alpha1.MetricSpec
		want historyv1alpha1.Query
	}{
		{"external", m(autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: id}}),
			historyv1alpha1.Query{Kind: historyv1alpha1.External, Namespace: "ns", Metric: "rps", MetricSelector: "route=api"}},
		{"object", m(autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{DescribedObject: ref, Metric: id}}),
			historyv1alpha1.Query{Kind: historyv1alpha1.Object, Namespace: "ns", Name: "web", Workload: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Metric: "rps", MetricSelector: "route=api"}},
		{"pods", m(autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: id}}),
			historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadExternal, Namespace: "ns", Name: "web", Workload: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Metric: "rps", MetricSelector: "route=api"}},
		{"cpu of the ready pods", m(autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU}}),
			historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadResource, Namespace: "ns", Name: "web", Workload: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Resource: "cpu", ReadyPodsOnly: true}},
		{"cpu of a container", m(autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: corev1.ResourceCPU, Container: "app"}}),
			historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadContainerResource, Namespace: "ns", Name: "web", Workload: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Resource: "cpu", Container: "app", ReadyPodsOnly: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trafficQuery("ns", ref, tc.m)
			if err != nil || got != tc.want {
				t.Fatalf("query %+v err %v, want %+v", got, err, tc.want)
			}
		})
	}
}

// TestSumSeries: series are added per timestamp; a timestamp with a sample that is not a number
// is left out rather than counted as less traffic.
func TestSumSeries(t *testing.T) {
	pt := func(sec int64, v float64) historyv1alpha1.Point {
		return historyv1alpha1.Point{Timestamp: sec * 1000, Value: historyv1alpha1.Value(v)}
	}
	got := sumSeries([]historyv1alpha1.Series{
		{Points: []historyv1alpha1.Point{pt(4, 1), pt(2, 1), pt(6, math.NaN())}},
		{Points: []historyv1alpha1.Point{pt(2, 2), pt(4, 3), pt(6, 5)}},
	})
	if len(got) != 2 || got[0].Time.Unix() != 2 || got[0].Value != 3 || got[1].Time.Unix() != 4 || got[1].Value != 4 {
		t.Fatalf("sums %+v, want 3 at 2s and 4 at 4s", got)
	}
}
