package replicacalc

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func params() Params {
	return Params{Tolerance: 0.1, CPUInitializationPeriod: 5 * time.Minute, InitialReadinessDelay: 30 * time.Second, Now: now}
}

type podOpt func(*corev1.Pod)

func pending(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }
func failed(p *corev1.Pod)  { p.Status.Phase = corev1.PodFailed }
func deleting(p *corev1.Pod) {
	t := metav1.NewTime(now)
	p.DeletionTimestamp = &t
}

// startedAgo makes the pod started d ago and ready (or not) since readyAgo.
func startedAgo(d time.Duration, ready bool, readyAgo time.Duration) podOpt {
	return func(p *corev1.Pod) {
		st := metav1.NewTime(now.Add(-d))
		p.Status.StartTime = &st
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(now.Add(-readyAgo))}}
	}
}

func pod(i int, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i)}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	startedAgo(time.Hour, true, time.Hour)(p)
	for _, o := range opts {
		o(p)
	}
	return p
}

func samples(values ...int64) Samples {
	s := Samples{}
	for i, v := range values {
		if v >= 0 {
			s[fmt.Sprintf("p%d", i)] = Sample{Value: v, Timestamp: now.Add(-10 * time.Second), Window: 30 * time.Second}
		}
	}
	return s
}

func requests(n int, each int64) map[string]int64 {
	r := map[string]int64{}
	for i := range n {
		r[fmt.Sprintf("p%d", i)] = each
	}
	return r
}

func TestResourceUtilization(t *testing.T) {
	tests := []struct {
		name    string
		current int32
		target  int32
		pods    []*corev1.Pod
		samples Samples
		want    int32
		wantErr bool
	}{
		{"scale up", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(100, 100, 100), 6, false},
		{"scale down", 4, 50, []*corev1.Pod{pod(0), pod(1), pod(2), pod(3)}, samples(25, 25, 25, 25), 2, false},
		{"within tolerance up (1.08)", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(54, 54, 54), 3, false},
		{"within tolerance down (0.9)", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(45, 45, 45), 3, false},
		{"just outside tolerance (1.12)", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(56, 56, 56), 4, false},
		// Scale-up with a pod missing: it counts as 0, (100+100+0)/300 = 66% -> ratio 1.33 -> ceil(1.33*3)=4.
		{"missing pod on scale up counts as zero", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(100, 100, -1), 4, false},
		// Scale-down with a pod missing: it counts as 100% of its request: (10+10+100)/300=40% -> 0.8 -> ceil(2.4)=3.
		{"missing pod on scale down counts as full request", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(10, 10, -1), 3, false},
		// Scale-down, the missing pod flips the direction: (40+40+100)/300=60% -> 1.2 > 1 -> keep.
		{"missing pod reversing the direction keeps replicas", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(40, 40, -1), 3, false},
		// Pending pods are unready: on scale-up they count as 0.
		{"pending pod on scale up counts as zero", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2, pending)}, samples(100, 100, -1), 4, false},
		// Pending pods are ignored on scale-down.
		{"pending pod ignored on scale down", 3, 50, []*corev1.Pod{pod(0), pod(1), pod(2, pending)}, samples(10, 10, -1), 1, false},
		{"deleted and failed pods ignored", 4, 50, []*corev1.Pod{pod(0), pod(1), pod(2, deleting), pod(3, failed)}, samples(100, 100, 500, 500), 4, false},
		// CPU initialization: a pod started 1 min ago whose sample predates readiness+window is
		// unready; on scale-up it counts as 0: (100+0)/200=50% -> 1.0.
		{"cpu sample before readiness is ignored", 2, 50, []*corev1.Pod{pod(0), pod(1, startedAgo(time.Minute, true, 20*time.Second))}, samples(100, 500), 2, false},
		{"cpu sample after readiness counts", 2, 50, []*corev1.Pod{pod(0), pod(1, startedAgo(time.Minute, true, time.Minute))}, samples(100, 100), 4, false},
		// After the initialization period, an unready pod that never became ready since its
		// start (transition within initialReadinessDelay of the start) is unready.
		{"never-ready pod after init period is unready", 2, 50, []*corev1.Pod{pod(0), pod(1, startedAgo(10*time.Minute, false, 10*time.Minute-10*time.Second))}, samples(100, 500), 2, false},
		// ... but one that was ready and became unready later counts with its sample.
		{"formerly ready pod counts", 2, 50, []*corev1.Pod{pod(0), pod(1, startedAgo(10*time.Minute, false, time.Minute))}, samples(100, 100), 4, false},
		{"no samples", 2, 50, []*corev1.Pod{pod(0)}, Samples{}, 0, true},
		{"all pods unready", 1, 50, []*corev1.Pod{pod(0, pending)}, samples(100), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ResourceUtilization(tt.current, tt.target, true, tt.pods, tt.samples, requests(len(tt.pods), 100), params())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAverageValue(t *testing.T) {
	tests := []struct {
		name    string
		current int32
		target  int64
		pods    []*corev1.Pod
		samples Samples
		want    int32
	}{
		{"scale up", 2, 100, []*corev1.Pod{pod(0), pod(1)}, samples(200, 200), 4},
		{"tolerance", 2, 100, []*corev1.Pod{pod(0), pod(1)}, samples(105, 105), 2},
		{"missing on scale down counts as target", 3, 100, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(10, 10, -1), 2},
		{"missing on scale up counts as zero", 3, 100, []*corev1.Pod{pod(0), pod(1), pod(2)}, samples(300, 300, -1), 6},
		// A non-CPU metric does not apply the initialization rules.
		{"not cpu: young pod counts", 2, 100, []*corev1.Pod{pod(0), pod(1, startedAgo(time.Minute, true, 5*time.Second))}, samples(200, 200), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := AverageValue(tt.current, tt.target, false, tt.pods, tt.samples, params())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestObjectAndPerPodValue(t *testing.T) {
	pods := []*corev1.Pod{pod(0), pod(1), pod(2, pending)}
	if got, _ := ObjectValue(3, 400, 100, pods, params()); got != 8 { // ratio 4 x 2 ready pods
		t.Errorf("ObjectValue = %d, want 8", got)
	}
	if got, _ := ObjectValue(3, 105, 100, pods, params()); got != 3 {
		t.Errorf("ObjectValue within tolerance = %d, want 3", got)
	}
	if got, _ := ObjectValue(0, 250, 100, pods, params()); got != 3 {
		t.Errorf("ObjectValue from 0 = %d, want 3", got)
	}
	if got, _ := PerPodValue(4, 1000, 100, params()); got != 10 {
		t.Errorf("PerPodValue = %d, want 10", got)
	}
	if got, _ := PerPodValue(10, 1040, 100, params()); got != 10 {
		t.Errorf("PerPodValue within tolerance = %d, want 10", got)
	}
	if _, err := PerPodValue(1, 1, 0, params()); err == nil {
		t.Error("PerPodValue with a zero target: no error")
	}
}

func TestRequests(t *testing.T) {
	p := pod(0)
	p.Spec.Containers = []corev1.Container{
		{Name: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resourceMilli(100)}}},
		{Name: "b", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resourceMilli(250)}}},
	}
	got, err := Requests([]*corev1.Pod{p}, corev1.ResourceCPU, "")
	if err != nil || got["p0"] != 350 {
		t.Errorf("Requests = %v, %v; want 350", got, err)
	}
	got, err = Requests([]*corev1.Pod{p}, corev1.ResourceCPU, "b")
	if err != nil || got["p0"] != 250 {
		t.Errorf("Requests of container b = %v, %v; want 250", got, err)
	}
	if _, err := Requests([]*corev1.Pod{p}, corev1.ResourceMemory, ""); err == nil {
		t.Error("missing memory request: no error")
	}
}
