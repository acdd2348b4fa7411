package ihpa

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// brokenIHPA has a Static fallback of 3 replicas, a Cron provider of higher priority whose start
// expression cannot be parsed (stored before admission checked it, or while the webhook was down),
// and a Dynamic provider whose HorizontalPortrait belongs to someone else.
func brokenIHPA() *v1alpha1.IntelligentHorizontalPodAutoscaler {
	a := grayIHPA()
	a.Spec.PortraitProviders = []v1alpha1.HorizontalPortraitProvider{
		{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 0, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 3}},
		{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 5, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
			{Name: "tokyo", Start: "CRON_TZ=Asia/Tokyo", End: "0 9 * * *", Replicas: 8},
		}}},
		{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 9, Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{
			PortraitType: v1alpha1.PredictivePortraitType,
			Algorithm:    v1alpha1.PortraitAlgorithm{Type: "Prophet"},
		}}},
	}
	return a
}

// One broken provider must not stop the others: the working ones are merged (here the Static
// fallback wins), and a condition and an event name each broken provider.
func TestBrokenProvidersDoNotStopTheMerge(t *testing.T) {
	foreign := &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Name: "gray-predictive", Namespace: "ns"}}
	e := newEnv(t, brokenIHPA(), foreign)
	res, err := e.r.Reconcile(context.Background(), requestFor("gray"))
	if err != nil {
		t.Fatalf("reconcile failed: %v", err)
	}
	if got := counts(e.profile(t, "gray")); got != [3]int32{3, 0, 0} {
		t.Errorf("profile %v, want the Static fallback's 3 online", got)
	}
	a := e.ihpa(t, "gray")
	if v := a.Status.CurrentPortraitValue; v == nil || v.Provider != "Static" || v.Replicas != 3 {
		t.Errorf("current value %+v, want Static 3", v)
	}
	active := meta.FindStatusCondition(a.Status.Conditions, string(v1alpha1.ScalingActive))
	if active == nil || active.Status != metav1.ConditionTrue {
		t.Errorf("ScalingActive = %+v, want True: the merge of the working providers is applied", active)
	}
	healthy := meta.FindStatusCondition(a.Status.Conditions, string(ConditionProvidersHealthy))
	if healthy == nil || healthy.Status != metav1.ConditionFalse || healthy.Reason != ReasonFailedFetchPortrait {
		t.Fatalf("%s = %+v, want False/%s", ConditionProvidersHealthy, healthy, ReasonFailedFetchPortrait)
	}
	for _, want := range []string{
		`spec.portraitProviders[1] (Cron): cron "tokyo": start "CRON_TZ=Asia/Tokyo"`,
		"spec.portraitProviders[2] (Dynamic-Predictive): HorizontalPortrait gray-predictive exists and is not controlled by this autoscaler",
	} {
		if !strings.Contains(healthy.Message, want) {
			t.Errorf("condition message %q lacks %q", healthy.Message, want)
		}
	}
	var warned bool
	for _, ev := range e.events() {
		if strings.HasPrefix(ev, "Warning "+ReasonFailedFetchPortrait) && strings.Contains(ev, "spec.portraitProviders[1] (Cron)") &&
			strings.Contains(ev, "spec.portraitProviders[2] (Dynamic-Predictive)") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning event naming both broken providers")
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > providerRetryInterval {
		t.Errorf("requeue after %v, want a retry within %v", res.RequeueAfter, providerRetryInterval)
	}

	// Once the providers are fixed, the condition clears.
	a.Spec.PortraitProviders = a.Spec.PortraitProviders[:1]
	if err := e.c.Update(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, "gray")
	healthy = meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(ConditionProvidersHealthy))
	if healthy == nil || healthy.Status != metav1.ConditionTrue {
		t.Errorf("%s = %+v after the fix, want True", ConditionProvidersHealthy, healthy)
	}
}

// With every provider broken there is no value: the workload keeps its replicas (no profile is
// written) and ScalingActive says why.
func TestAllProvidersBroken(t *testing.T) {
	a := brokenIHPA()
	a.Spec.PortraitProviders = a.Spec.PortraitProviders[1:2]
	e := newEnv(t, a)
	e.now = t0.Add(time.Minute)
	if _, err := e.r.Reconcile(context.Background(), requestFor("gray")); err != nil {
		t.Fatalf("reconcile failed: %v", err)
	}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gray"}, &v1alpha1.ReplicaProfile{}); err == nil {
		t.Error("a profile was written without a value")
	}
	active := meta.FindStatusCondition(e.ihpa(t, "gray").Status.Conditions, string(v1alpha1.ScalingActive))
	if active == nil || active.Status != metav1.ConditionFalse || active.Reason != ReasonFailedFetchPortrait ||
		!strings.Contains(active.Message, "spec.portraitProviders[0] (Cron)") {
		t.Errorf("ScalingActive = %+v, want False/%s naming the broken provider", active, ReasonFailedFetchPortrait)
	}
}

func requestFor(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}}
}
