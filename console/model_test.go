package console

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

var t0 = time.Date(2026, 3, 2, 10, 3, 0, 0, time.UTC) // 10:03, inside the */10 window below

func cronIHPA() *v1alpha1.IntelligentHorizontalPodAutoscaler {
	return &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "batch"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "batch"},
			MinReplicas:    1, MaxReplicas: 4,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 1, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 1}},
				{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 2, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
					{Name: "every-10-minutes", Replicas: 5, Start: "*/10 * * * *", End: "4-59/10 * * * *"}}}},
			},
			Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{ScaleDown: v1alpha1.ScalingBehavior{
				GrayStrategy: &v1alpha1.GrayStrategy{GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: 30, ChangePercent: 50, ObservationSeconds: 60}}},
		},
	}
}

func TestBuildDetail(t *testing.T) {
	ihpa := cronIHPA()
	ihpa.Status = v1alpha1.IntelligentHorizontalPodAutoscalerStatus{
		PreviousPortraitValue: &v1alpha1.HorizontalPortraitValue{Provider: "Cron", Replicas: 5},
		CurrentPortraitValue:  &v1alpha1.HorizontalPortraitValue{Provider: "Static", Replicas: 1},
		Gray:                  &v1alpha1.GrayStatus{GrayPercent: 50, LastUpdateTime: metav1.NewTime(t0)},
		OnlineReplicas:        3, CutoffReplicas: 2,
	}
	pod := func(name string, state v1alpha1.PodState) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if state != "" {
			p.Labels[v1alpha1.PodStateLabelKey] = string(state)
		}
		return p
	}
	o := &Objects{IHPA: ihpa, Portraits: map[string]*v1alpha1.HorizontalPortrait{}, Errors: map[string]string{},
		Pods: []corev1.Pod{pod("a", ""), pod("b", v1alpha1.PodStateCutoff), pod("c", "")}}
	d := BuildDetail(o, t0, nil)

	if d.Providers[1].Replicas == nil || *d.Providers[1].Replicas != 5 || !d.Providers[1].Selected {
		t.Errorf("at 10:03 the cron window is open and wins: %+v", d.Providers[1])
	}
	if d.Gray.Batches != 2 || d.Gray.BatchesDone != 1 || d.Gray.From != 5 || d.Gray.To != 1 || !d.Gray.InProgress {
		t.Errorf("gray view %+v, want batch 1 of 2 from 5 to 1", d.Gray)
	}
	if d.PodCounts["Online"] != 2 || d.PodCounts["Cutoff"] != 1 {
		t.Errorf("pod counts %v, want 2 Online and 1 Cutoff", d.PodCounts)
	}
	merged := d.ReplicaSeries[len(d.ReplicaSeries)-1]
	at := func(s Series, t time.Time) float64 {
		for _, p := range s.Points {
			if p.T.Equal(t) {
				return p.V
			}
		}
		return math.NaN()
	}
	// The cron's 5 is capped to max 4; outside the window the static 1 wins.
	for _, tc := range []struct {
		at   time.Time
		want float64
	}{{t0, 4}, {t0.Add(2 * time.Minute), 1}, {t0.Add(7 * time.Minute), 4}, {t0.Add(-5 * time.Minute), 1}} {
		if got := at(merged, tc.at); got != tc.want {
			t.Errorf("merged at %s = %v, want %v", tc.at.Format("15:04"), got, tc.want)
		}
	}
	if !math.IsNaN(at(d.ReplicaSeries[1], t0.Add(2*time.Minute))) {
		t.Error("the cron provider offers nothing outside its window, the chart must show a gap")
	}
}

func TestSummarize(t *testing.T) {
	ihpa := cronIHPA()
	ihpa.Spec.Paused = true
	ihpa.Status.CurrentPortraitValue = &v1alpha1.HorizontalPortraitValue{Provider: "Cron", Replicas: 9}
	ihpa.Status.Conditions = []metav1.Condition{
		{Type: string(v1alpha1.ScalingActive), Status: metav1.ConditionFalse, Reason: "FailedGetReplicaProfile", Message: "boom"},
		{Type: conditionStable, Status: metav1.ConditionFalse, Reason: "AnomalyRolledBack"},
	}
	s := Summarize(ihpa)
	if s.Mode != "Paused" || *s.Desired != 4 || *s.Portrait != 9 || s.Stability != "rolled back" || s.LastError != "FailedGetReplicaProfile: boom" {
		t.Errorf("summary %+v", s)
	}
}

// TestListIHPAsFollowsRBAC: a user who may not list IHPAs cluster-wide sees those of the
// namespaces where they may, and the others are only counted.
func TestListIHPAsFollowsRBAC(t *testing.T) {
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := cronIHPA(), cronIHPA()
	mine.Namespace, theirs.Namespace = "team-a", "team-b"
	forbidden := func(gr string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: gr}, "", fmt.Errorf("RBAC"))
	}
	for _, tc := range []struct {
		name          string
		canListNS     bool
		namespaces    []string
		want          []string
		wantHidden    int
		wantErrSubstr string
	}{
		{name: "namespaces listable", canListNS: true, want: []string{"team-a/batch"}, wantHidden: 1},
		{name: "namespaces not listable: the configured ones", namespaces: []string{"team-a"}, want: []string{"team-a/batch"}},
		{name: "nothing to try", wantErrSubstr: "--namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(mine, theirs,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}}).
				WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					o := &client.ListOptions{}
					o.ApplyOptions(opts)
					switch list.(type) {
					case *corev1.NamespaceList:
						if !tc.canListNS {
							return forbidden("namespaces")
						}
					case *v1alpha1.IntelligentHorizontalPodAutoscalerList:
						if o.Namespace != "team-a" {
							return forbidden("intelligenthorizontalpodautoscalers")
						}
					}
					return cl.List(ctx, list, opts...)
				}}).Build()
			v, err := (&Cluster{Client: c, Namespaces: tc.namespaces}).ListIHPAs(context.Background())
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range v.Items {
				got = append(got, i.Namespace+"/"+i.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || v.Hidden != tc.wantHidden {
				t.Errorf("saw %v (hidden %d), want %v (hidden %d)", got, v.Hidden, tc.want, tc.wantHidden)
			}
		})
	}
}

// fakeHistory answers pod CPU queries from a function of the step.
type fakeHistory struct {
	pods func(i int) int
	cpu  float64 // cores per pod
}

func (f fakeHistory) Latest(context.Context, historyv1alpha1.Query) ([]historyv1alpha1.Series, error) {
	return nil, nil
}

func (f fakeHistory) Range(_ context.Context, q historyv1alpha1.Query, r historyv1alpha1.Range) ([]historyv1alpha1.Series, error) {
	if q.Kind != historyv1alpha1.PodResource || q.Resource != "cpu" || q.Selector != "app=batch" {
		return nil, fmt.Errorf("unexpected query %+v", q)
	}
	series := make([]historyv1alpha1.Series, 20)
	for i := 0; i < int(r.Points()); i++ {
		t := r.Start.Add(time.Duration(i) * r.Step)
		for p := range f.pods(i) {
			series[p].Points = append(series[p].Points, historyv1alpha1.Point{Timestamp: t.UnixMilli(), Value: historyv1alpha1.Value(f.cpu)})
		}
	}
	return series, nil
}

func TestComputeCost(t *testing.T) {
	ihpa := cronIHPA()
	ihpa.Spec.MaxReplicas = 20
	sel := labels.SelectorFromSet(labels.Set{"app": "batch"})
	o := &Objects{IHPA: ihpa, Errors: map[string]string{}, Workload: &Workload{Kind: "Deployment", Name: "batch", Selector: sel, CPURequestMilliPerPod: 100}}
	// 2 pods at all times, each using 50m of its 100m: 50 % against the assumed 60 % target.
	c := &Cluster{History: fakeHistory{pods: func(int) int { return 2 }, cpu: 0.05}}
	cost, err := c.ComputeCost(context.Background(), o, "1d", t0)
	if err != nil {
		t.Fatal(err)
	}
	// 288 measured 5-minute steps after the first (the replay starts at step 1): a day of 2 pods.
	if want := 2 * 288 * 5.0 / 60; math.Abs(cost.ActualReplicaHours-want) > 1e-9 {
		t.Errorf("actual replica-hours %v, want %v", cost.ActualReplicaHours, want)
	}
	if cost.Coverage != 1 || cost.MinutesOverTarget != 0 {
		t.Errorf("coverage %v, minutes over target %v", cost.Coverage, cost.MinutesOverTarget)
	}
	// The HPA needs ceil(0.1 cores / (0.1 × 0.6)) = 2 pods too: about the same cost.
	if cost.HPAReplicaHours < 0.9*cost.ActualReplicaHours || cost.HPAReplicaHours > 1.1*cost.ActualReplicaHours {
		t.Errorf("HPA replica-hours %v, want about the measured %v on a flat demand", cost.HPAReplicaHours, cost.ActualReplicaHours)
	}
	if !strings.Contains(strings.Join(cost.Assumptions, "\n"), "assumed") {
		t.Errorf("the assumed target is not said: %v", cost.Assumptions)
	}

	// A Reactive portrait's CPU target is used, and a young workload's coverage is reported.
	ihpa.Spec.PortraitProviders = append(ihpa.Spec.PortraitProviders, v1alpha1.HorizontalPortraitProvider{
		Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 3,
		Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{PortraitType: v1alpha1.ReactivePortraitType,
			Metrics: []v1alpha1.MetricSpec{{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](40)}}}}}}},
	})
	c.History = fakeHistory{pods: func(i int) int {
		if i < 144 {
			return 0
		}
		return 2
	}, cpu: 0.05}
	cost, err = c.ComputeCost(context.Background(), o, "1d", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cost.Assumptions, "\n"), "40% CPU utilisation, the Reactive portrait's target") {
		t.Errorf("assumptions %v do not name the Reactive target", cost.Assumptions)
	}
	// Both figures cover the measured half day only: no demand is invented before the workload.
	// At 40 %, the 0.1 cores need ceil(0.1 / (0.1 × 0.4)) = 3 pods of the HPA.
	if want := 2 * 144 * 5.0 / 60; math.Abs(cost.ActualReplicaHours-want) > 1e-9 || math.Abs(cost.HPAReplicaHours-1.5*want) > 0.1*want {
		t.Errorf("replica-hours measured %v, HPA %v: want %v and 1.5 times that, over the measured span", cost.ActualReplicaHours, cost.HPAReplicaHours, want)
	}
	if !strings.Contains(strings.Join(cost.Warnings, "\n"), "12h0m0s into the window") || cost.MinutesOverTarget != 12*60 {
		t.Errorf("warnings %v, minutes over target %v: want the late start said and 50%% > 40%% counted for 12 h", cost.Warnings, cost.MinutesOverTarget)
	}
	c.History = fakeHistory{pods: func(i int) int { return 2 * min(1, max(0, i-287)) }, cpu: 0.05}
	if _, err := c.ComputeCost(context.Background(), o, "1d", t0); err == nil || !strings.Contains(err.Error(), "needs two") {
		t.Errorf("a single measurement: %v, want an error saying two are needed", err)
	}

	if _, err := c.ComputeCost(context.Background(), &Objects{IHPA: ihpa, Errors: map[string]string{}, Workload: &Workload{Selector: sel}}, "1d", t0); err == nil ||
		!strings.Contains(err.Error(), "CPU request") {
		t.Errorf("a workload without CPU requests: %v, want an error naming the CPU request", err)
	}
}
