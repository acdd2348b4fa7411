package ihpa

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
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
