package ihpa

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/replicacalc"
)

var t0 = time.Date(2025, 1, 1, 10, 5, 0, 0, time.UTC)

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func grayIHPA() *v1alpha1.IntelligentHorizontalPodAutoscaler {
	return &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "gray", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			MinReplicas:    1, MaxReplicas: 10,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 1, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 1}},
				{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 2, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
					{Name: "cron-1", Start: "0 * * * *", End: "10 * * * *", Replicas: 5, TimeZone: "UTC"},
				}}},
			},
			Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{ScaleDown: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
				GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: 30, ChangePercent: 50, ObservationSeconds: 60,
			}}},
		},
	}
}

type env struct {
	c        client.Client
	r        *Reconciler
	recorder *events.FakeRecorder
	now      time.Time
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	e := &env{now: t0, recorder: events.NewFakeRecorder(100)}
	e.c = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.IntelligentHorizontalPodAutoscaler{}, &v1alpha1.ReplicaProfile{}, &v1alpha1.HorizontalPortrait{}).Build()
	e.r = &Reconciler{Client: e.c, Reader: e.c, Recorder: e.recorder, Now: func() time.Time { return e.now }}
	return e
}

func (e *env) reconcile(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) profile(t *testing.T, name string) *v1alpha1.ReplicaProfile {
	t.Helper()
	rp := &v1alpha1.ReplicaProfile{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, rp); err != nil {
		t.Fatal(err)
	}
	return rp
}

func (e *env) ihpa(t *testing.T, name string) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	t.Helper()
	a := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.recorder.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func counts(rp *v1alpha1.ReplicaProfile) [3]int32 {
	return [3]int32{rp.Spec.OnlineReplicas, rp.Spec.CutoffReplicas, rp.Spec.StandbyReplicas}
}

// TestGrayTimeline walks the quick-start's gray scale-down: the cron window gives 5, then the
// static 1 takes over and the profile goes 3+2, 1+4, then 1 after the observation.
func TestGrayTimeline(t *testing.T) {
	e := newEnv(t, grayIHPA())
	res := e.reconcile(t, "gray")
	rp := e.profile(t, "gray")
	if counts(rp) != [3]int32{5, 0, 0} || !metav1.IsControlledBy(rp, e.ihpa(t, "gray")) {
		t.Fatalf("created profile %v (owner %v), want 5 online and owned", counts(rp), rp.OwnerReferences)
	}
	if want := 5 * time.Minute; res.RequeueAfter < want || res.RequeueAfter > want+time.Second {
		t.Errorf("requeue after %s, want the window's end in %s", res.RequeueAfter, want)
	}
	if ev := e.events(); len(ev) != 1 || !strings.Contains(ev[0], "create ReplicaProfile with onlineReplicas: 5, cutoffReplicas: 0, standbyReplicas: 0") {
		t.Errorf("events %q", ev)
	}

	steps := []struct {
		at     time.Duration // after the window closed
		want   [3]int32
		gray   int32 // -1: no gray status
		requeu time.Duration
		event  string
	}{
		{0, [3]int32{3, 2, 0}, 50, 30 * time.Second, "update ReplicaProfile with onlineReplicas: 5 -> 3, cutoffReplicas: 0 -> 2, standbyReplicas: 0 -> 0"},
		{10 * time.Second, [3]int32{3, 2, 0}, 50, 20 * time.Second, ""},
		{30 * time.Second, [3]int32{1, 4, 0}, 100, 60 * time.Second, "update ReplicaProfile with onlineReplicas: 3 -> 1, cutoffReplicas: 2 -> 4, standbyReplicas: 0 -> 0"},
		{90 * time.Second, [3]int32{1, 0, 0}, -1, 0, "update ReplicaProfile with onlineReplicas: 1 -> 1, cutoffReplicas: 4 -> 0, standbyReplicas: 0 -> 0"},
	}
	closed := time.Date(2025, 1, 1, 10, 10, 0, 0, time.UTC)
	for _, s := range steps {
		e.now = closed.Add(s.at)
		res := e.reconcile(t, "gray")
		got := counts(e.profile(t, "gray"))
		if got != s.want {
			t.Errorf("at +%s: profile %v, want %v", s.at, got, s.want)
		}
		st := e.ihpa(t, "gray").Status
		switch {
		case s.gray < 0 && st.Gray != nil:
			t.Errorf("at +%s: gray %+v, want none", s.at, st.Gray)
		case s.gray >= 0 && (st.Gray == nil || st.Gray.GrayPercent != s.gray):
			t.Errorf("at +%s: gray %+v, want %d%%", s.at, st.Gray, s.gray)
		}
		if s.requeu > 0 && res.RequeueAfter != s.requeu {
			t.Errorf("at +%s: requeue after %s, want %s", s.at, res.RequeueAfter, s.requeu)
		}
		ev := e.events()
		if s.event != "" && (len(ev) != 1 || !strings.Contains(ev[0], s.event)) {
			t.Errorf("at +%s: events %q, want %q", s.at, ev, s.event)
		}
	}
	c := meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(v1alpha1.GrayProgressing))
	if c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("GrayProgressing = %+v, want False at the end", c)
	}
}

func TestNoValidPortraitValue(t *testing.T) {
	a := grayIHPA()
	a.Spec.PortraitProviders = a.Spec.PortraitProviders[1:] // cron only
	e := newEnv(t, a)
	e.now = time.Date(2025, 1, 1, 10, 20, 0, 0, time.UTC)
	res := e.reconcile(t, "gray")
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gray"}, &v1alpha1.ReplicaProfile{}); err == nil {
		t.Error("a profile was created without a value")
	}
	c := meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(v1alpha1.ScalingActive))
	if c == nil || c.Reason != ReasonNoValidPortraitValue || c.Status != metav1.ConditionFalse {
		t.Errorf("ScalingActive = %+v", c)
	}
	if want := 40 * time.Minute; res.RequeueAfter < want || res.RequeueAfter > want+time.Second {
		t.Errorf("requeue after %s, want the next window in %s", res.RequeueAfter, want)
	}
	if ev := e.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning NoValidPortraitValue no valid portrait value for now") {
		t.Errorf("events %q", ev)
	}
}

func TestPreviewDeletesTheProfile(t *testing.T) {
	a := grayIHPA()
	e := newEnv(t, a)
	e.reconcile(t, "gray")
	a = e.ihpa(t, "gray")
	a.Spec.ScaleMode = v1alpha1.ScaleModePreview
	if err := e.c.Update(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, "gray")
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gray"}, &v1alpha1.ReplicaProfile{}); err == nil {
		t.Error("the profile survived Preview")
	}
	if v := e.ihpa(t, "gray").Status.CurrentPortraitValue; v == nil || v.Replicas != 5 {
		t.Errorf("current value %+v, want 5 (preview still computes)", v)
	}
}

func TestPausePausesTheProfile(t *testing.T) {
	e := newEnv(t, grayIHPA())
	e.reconcile(t, "gray")
	a := e.ihpa(t, "gray")
	a.Spec.Paused = true
	if err := e.c.Update(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, "gray")
	if !e.profile(t, "gray").Spec.Paused {
		t.Error("profile not paused")
	}
	c := meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(v1alpha1.ScalingActive))
	if c == nil || c.Reason != ReasonScalingPaused {
		t.Errorf("ScalingActive = %+v", c)
	}
}

func TestDynamicProviderOwnsItsPortrait(t *testing.T) {
	a := grayIHPA()
	a.Spec.PortraitProviders = []v1alpha1.HorizontalPortraitProvider{{
		Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 1,
		Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{
			PortraitType: v1alpha1.ReactivePortraitType,
			Algorithm:    v1alpha1.PortraitAlgorithm{Type: v1alpha1.KubeHPAPortraitAlgorithmType},
		}},
	}}
	stale := &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Name: "gray-predictive", Namespace: "ns"}}
	e := newEnv(t, a)
	if err := controllerutil.SetControllerReference(e.ihpa(t, "gray"), stale, e.c.Scheme()); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, "gray")
	hp := &v1alpha1.HorizontalPortrait{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gray-reactive"}, hp); err != nil {
		t.Fatalf("portrait not created: %v", err)
	}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gray-predictive"}, &v1alpha1.HorizontalPortrait{}); err == nil {
		t.Error("the portrait of a removed provider was kept")
	}
	// The portrait generates 4 replicas.
	hp.Status.PortraitData = &v1alpha1.HorizontalPortraitData{Type: v1alpha1.StaticHorizontalPortraitDataType, Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 4}}
	if err := e.c.Status().Update(context.Background(), hp); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, "gray")
	if got := counts(e.profile(t, "gray")); got != [3]int32{4, 0, 0} {
		t.Errorf("profile %v, want 4 online", got)
	}
}

// fakeScaler reports the StatefulSet's selector.
type fakeScaler struct{}

func (fakeScaler) GetScale(context.Context, string, autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error) {
	return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Status: autoscalingv1.ScaleStatus{Replicas: 5, Selector: "app=nginx"}},
		schema.GroupResource{Group: "apps", Resource: "statefulsets"}, nil
}

func (fakeScaler) UpdateScale(_ context.Context, _ string, _ schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return s, nil
}

// rateMetrics serves a Pods metric: the total traffic shared by the pods without a state label.
type rateMetrics struct {
	c     client.Client
	total int64 // milli
}

func (m *rateMetrics) PodMetric(ctx context.Context, ns string, sel labels.Selector, _ string, _ labels.Selector) (replicacalc.Samples, error) {
	var list corev1.PodList
	if err := m.c.List(ctx, &list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	var online []string
	for _, p := range list.Items {
		if p.Labels[v1alpha1.PodStateLabelKey] == "" {
			online = append(online, p.Name)
		}
	}
	out := replicacalc.Samples{}
	for _, p := range list.Items {
		out[p.Name] = replicacalc.Sample{}
	}
	for _, n := range online {
		out[n] = replicacalc.Sample{Value: m.total / int64(len(online))}
	}
	return out, nil
}

func (m *rateMetrics) PodResource(context.Context, string, labels.Selector, corev1.ResourceName, string) (replicacalc.Samples, error) {
	return nil, errors.New("not served")
}

func (m *rateMetrics) ObjectMetric(context.Context, string, autoscalingv2.CrossVersionObjectReference, string, labels.Selector) (int64, error) {
	return 0, errors.New("not served")
}

func (m *rateMetrics) ExternalMetric(context.Context, string, string, labels.Selector) (int64, error) {
	return 0, errors.New("not served")
}

// applyProfile plays the ReplicaProfile controller: it labels the pods as the profile says
// (cutoff pods from the highest ordinal down).
func applyProfile(t *testing.T, e *env) {
	t.Helper()
	rp := e.profile(t, "gray")
	for i := range int(rp.Spec.OnlineReplicas + rp.Spec.CutoffReplicas) {
		p := &corev1.Pod{}
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: fmt.Sprintf("nginx-%d", i)}, p); err != nil {
			t.Fatal(err)
		}
		delete(p.Labels, v1alpha1.PodStateLabelKey)
		if int32(i) >= rp.Spec.OnlineReplicas {
			p.Labels[v1alpha1.PodStateLabelKey] = string(v1alpha1.PodStateCutoff)
		}
		if err := e.c.Update(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStabilityCheckers walks a gray scale-down 5 → 1 (50% batches every 30 s, Cutoff) watched by a
// checker on the per-pod rate (40 req/s in total, anomaly above 10 per online pod): the first
// batch leaves 3 pods at 13.3 each. Rollback returns the 2 cutoff pods online and restarts the
// change after the cool-down; Pause holds 3+2 until the cool-down, then the change goes on.
func TestStabilityCheckers(t *testing.T) {
	tests := []struct {
		action v1alpha1.StabilizationActionType
		steps  []stabilityStep
	}{
		{v1alpha1.StabilizationActionRollback, []stabilityStep{
			{at: 0, want: [3]int32{3, 2, 0}, stable: metav1.ConditionTrue},
			{at: 5 * time.Second, want: [3]int32{5, 0, 0}, stable: metav1.ConditionFalse, reason: ReasonAnomalyRolledBack, event: "stability anomaly: qps"},
			// Pods back online are fine, but the cool-down (60 s from the last sighting) holds.
			{at: 40 * time.Second, want: [3]int32{5, 0, 0}, stable: metav1.ConditionFalse, reason: ReasonAnomalyRolledBack},
			{at: 65 * time.Second, want: [3]int32{3, 2, 0}, stable: metav1.ConditionTrue, reason: ReasonNoAnomaly, event: "no anomaly for 1m0s"},
		}},
		{v1alpha1.StabilizationActionPause, []stabilityStep{
			{at: 0, want: [3]int32{3, 2, 0}, stable: metav1.ConditionTrue},
			{at: 5 * time.Second, want: [3]int32{3, 2, 0}, stable: metav1.ConditionFalse, reason: ReasonAnomalyPaused, event: "stability anomaly: qps"},
			// The second batch was due at +30 s; the anomaly, seen again, extends the pause.
			{at: 35 * time.Second, want: [3]int32{3, 2, 0}, stable: metav1.ConditionFalse, reason: ReasonAnomalyPaused},
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.action), func(t *testing.T) {
			a := grayIHPA()
			a.Spec.PortraitProviders = a.Spec.PortraitProviders[:1]
			a.Spec.PortraitProviders[0].Static.Replicas = 5
			target := resource.MustParse("10")
			a.Spec.Behavior.ScaleDown.GrayStrategy.StabilityCheckers = []v1alpha1.StabilityChecker{{
				Type: v1alpha1.MetricsStabilityCheckerType, StabilizationAction: tt.action, CoolDownSeconds: 60,
				Metrics: &v1alpha1.MetricsStabilityChecker{Metrics: []v1alpha1.MetricSpec{{Name: "qps", MetricSpec: autoscalingv2.MetricSpec{
					Type: autoscalingv2.PodsMetricSourceType,
					Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &target}},
				}}}},
			}}
			objs := []client.Object{a}
			for i := range 5 {
				objs = append(objs, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("nginx-%d", i), Namespace: "ns", Labels: map[string]string{"app": "nginx"}},
					// Only pods with the readiness gate can be cut off (and counted so).
					Spec:   corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: v1alpha1.PodOnlineConditionType}}},
					Status: corev1.PodStatus{Phase: corev1.PodRunning},
				})
			}
			e := newEnv(t, objs...)
			e.r.Scaler, e.r.Metrics = fakeScaler{}, &rateMetrics{c: e.c, total: 40000}
			e.reconcile(t, "gray")
			applyProfile(t, e)
			// Scale down to 1.
			cur := e.ihpa(t, "gray")
			cur.Spec.PortraitProviders[0].Static.Replicas = 1
			if err := e.c.Update(context.Background(), cur); err != nil {
				t.Fatal(err)
			}
			e.events()
			start := e.now
			for _, s := range tt.steps {
				e.now = start.Add(s.at)
				res := e.reconcile(t, "gray")
				applyProfile(t, e)
				if got := counts(e.profile(t, "gray")); got != s.want {
					t.Errorf("at +%s: profile %v, want %v", s.at, got, s.want)
				}
				c := meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(ConditionStable))
				if c == nil || c.Status != s.stable || (s.reason != "" && c.Reason != s.reason) {
					t.Errorf("at +%s: Stable = %+v, want %s %s", s.at, c, s.stable, s.reason)
				}
				if res.RequeueAfter <= 0 || res.RequeueAfter > stabilityCheckPeriod {
					t.Errorf("at +%s: requeue after %s, want a check within %s", s.at, res.RequeueAfter, stabilityCheckPeriod)
				}
				ev := strings.Join(e.events(), "\n")
				if s.event != "" && !strings.Contains(ev, s.event) {
					t.Errorf("at +%s: events %q, want %q", s.at, ev, s.event)
				}
			}
		})
	}
}

type stabilityStep struct {
	at     time.Duration
	want   [3]int32
	stable metav1.ConditionStatus
	reason string
	event  string
}
