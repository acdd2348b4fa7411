package replicaprofile

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// fakeScaler is a StatefulSet's /scale kept in memory.
type fakeScaler struct {
	replicas int32
	updates  []int32
}

func (f *fakeScaler) GetScale(_ context.Context, ns string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error) {
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: f.replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: f.replicas, Selector: "app=nginx"},
	}, schema.GroupResource{Group: "apps", Resource: "statefulsets"}, nil
}

func (f *fakeScaler) UpdateScale(_ context.Context, _ string, _ schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	f.replicas = s.Spec.Replicas
	f.updates = append(f.updates, s.Spec.Replicas)
	return s, nil
}

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func nginxPod(i int, state v1alpha1.PodState) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("nginx-%d", i), Namespace: "ns", Labels: map[string]string{"app": "nginx"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "nginx", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: v1alpha1.PodOnlineConditionType}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, Conditions: []corev1.PodCondition{
			{Type: v1alpha1.PodOnlineConditionType, Status: corev1.ConditionTrue},
		}},
	}
	if state != v1alpha1.PodStateOnline {
		p.Labels[v1alpha1.PodStateLabelKey] = string(state)
		p.Status.Conditions[0].Status = corev1.ConditionFalse
	}
	return p
}

func profile(online, cutoff, standby int32) *v1alpha1.ReplicaProfile {
	return &v1alpha1.ReplicaProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "rp", Namespace: "ns", Finalizers: []string{v1alpha1.FinalizerName}},
		Spec: v1alpha1.ReplicaProfileSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			OnlineReplicas: online, CutoffReplicas: cutoff, StandbyReplicas: standby,
		},
	}
}

type podView struct{ online, cutoff, standby []string }

func view(t *testing.T, c client.Client) podView {
	t.Helper()
	var list corev1.PodList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var v podView
	for _, p := range list.Items {
		cond := corev1.ConditionUnknown
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.PodOnlineConditionType {
				cond = c.Status
			}
		}
		switch p.Labels[v1alpha1.PodStateLabelKey] {
		case "":
			if cond != corev1.ConditionTrue {
				t.Errorf("pod %s is Online with traffic %s", p.Name, cond)
			}
			v.online = append(v.online, p.Name)
		case string(v1alpha1.PodStateCutoff):
			if cond != corev1.ConditionFalse {
				t.Errorf("pod %s is Cutoff with traffic %s", p.Name, cond)
			}
			v.cutoff = append(v.cutoff, p.Name)
		case string(v1alpha1.PodStateStandby):
			v.standby = append(v.standby, p.Name)
		}
	}
	sort.Strings(v.online)
	sort.Strings(v.cutoff)
	sort.Strings(v.standby)
	return v
}

func TestReconcile(t *testing.T) {
	on, cut := v1alpha1.PodStateOnline, v1alpha1.PodStateCutoff
	tests := []struct {
		name         string
		rp           *v1alpha1.ReplicaProfile
		pods         []*corev1.Pod
		replicas     int32
		want         podView
		wantScale    []int32
		wantEnsured  metav1.ConditionStatus
		wantApplied  string
		wantObserved [3]int32
	}{
		{
			name: "cut off the highest ordinals", rp: profile(3, 2, 0),
			pods:        []*corev1.Pod{nginxPod(0, on), nginxPod(1, on), nginxPod(2, on), nginxPod(3, on), nginxPod(4, on)},
			replicas:    5,
			want:        podView{online: []string{"nginx-0", "nginx-1", "nginx-2"}, cutoff: []string{"nginx-3", "nginx-4"}},
			wantEnsured: metav1.ConditionFalse, wantApplied: ReasonApplied, wantObserved: [3]int32{5, 0, 0},
		},
		{
			name: "second batch keeps the cut-off pods", rp: profile(1, 4, 0),
			pods:        []*corev1.Pod{nginxPod(0, on), nginxPod(1, on), nginxPod(2, on), nginxPod(3, cut), nginxPod(4, cut)},
			replicas:    5,
			want:        podView{online: []string{"nginx-0"}, cutoff: []string{"nginx-1", "nginx-2", "nginx-3", "nginx-4"}},
			wantEnsured: metav1.ConditionFalse, wantApplied: ReasonApplied, wantObserved: [3]int32{3, 2, 0},
		},
		{
			name: "final step lowers the scale and leaves labels to the removed pods", rp: profile(1, 0, 0),
			pods:      []*corev1.Pod{nginxPod(0, on), nginxPod(1, cut), nginxPod(2, cut), nginxPod(3, cut), nginxPod(4, cut)},
			replicas:  5,
			want:      podView{online: []string{"nginx-0"}, cutoff: []string{"nginx-1", "nginx-2", "nginx-3", "nginx-4"}},
			wantScale: []int32{1}, wantEnsured: metav1.ConditionFalse, wantApplied: ReasonApplied, wantObserved: [3]int32{1, 4, 0},
		},
		{
			name: "rollback brings cut-off pods back online", rp: profile(5, 0, 0),
			pods:        []*corev1.Pod{nginxPod(0, on), nginxPod(1, on), nginxPod(2, on), nginxPod(3, cut), nginxPod(4, cut)},
			replicas:    5,
			want:        podView{online: []string{"nginx-0", "nginx-1", "nginx-2", "nginx-3", "nginx-4"}},
			wantEnsured: metav1.ConditionFalse, wantApplied: ReasonApplied, wantObserved: [3]int32{3, 2, 0},
		},
		{
			name: "pods starting: state change skipped, scale still set", rp: profile(3, 2, 0),
			pods:      []*corev1.Pod{nginxPod(0, on), nginxPod(1, on)},
			replicas:  4,
			want:      podView{online: []string{"nginx-0", "nginx-1"}},
			wantScale: []int32{5}, wantEnsured: metav1.ConditionFalse, wantApplied: ReasonStateChangeSkipped, wantObserved: [3]int32{2, 0, 0},
		},
		{
			name: "ensured: nothing to do", rp: profile(2, 1, 0),
			pods:        []*corev1.Pod{nginxPod(0, on), nginxPod(1, on), nginxPod(2, cut)},
			replicas:    3,
			want:        podView{online: []string{"nginx-0", "nginx-1"}, cutoff: []string{"nginx-2"}},
			wantEnsured: metav1.ConditionTrue, wantApplied: ReasonApplied, wantObserved: [3]int32{2, 1, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []client.Object{tt.rp}
			for _, p := range tt.pods {
				objs = append(objs, p)
			}
			c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(objs...).
				WithStatusSubresource(&v1alpha1.ReplicaProfile{}, &corev1.Pod{}).Build()
			scaler := &fakeScaler{replicas: tt.replicas}
			r := &Reconciler{Client: c, Reader: c, Scaler: scaler, Recorder: events.NewFakeRecorder(100)}
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tt.rp)}); err != nil {
				t.Fatal(err)
			}
			got := view(t, c)
			if !slices.Equal(got.online, tt.want.online) || !slices.Equal(got.cutoff, tt.want.cutoff) || !slices.Equal(got.standby, tt.want.standby) {
				t.Errorf("pods = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(scaler.updates, tt.wantScale) {
				t.Errorf("scale updates = %v, want %v", scaler.updates, tt.wantScale)
			}
			rp := &v1alpha1.ReplicaProfile{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tt.rp), rp); err != nil {
				t.Fatal(err)
			}
			if obs := [3]int32{rp.Status.OnlineReplicas, rp.Status.CutoffReplicas, rp.Status.StandbyReplicas}; obs != tt.wantObserved {
				t.Errorf("status counts = %v, want %v", obs, tt.wantObserved)
			}
			if c := meta.FindStatusCondition(rp.Status.Conditions, string(v1alpha1.ReplicaProfileEnsured)); c == nil || c.Status != tt.wantEnsured {
				t.Errorf("Ensured = %+v, want %s", c, tt.wantEnsured)
			}
			if c := meta.FindStatusCondition(rp.Status.Conditions, string(v1alpha1.ReplicaProfileApplied)); c == nil || c.Reason != tt.wantApplied {
				t.Errorf("Applied = %+v, want reason %s", c, tt.wantApplied)
			}
		})
	}
}

func TestDeletionBringsPodsBackOnline(t *testing.T) {
	rp := profile(1, 1, 0)
	now := metav1.Now()
	rp.DeletionTimestamp = &now
	c := fake.NewClientBuilder().WithScheme(scheme(t)).
		WithObjects(rp, nginxPod(0, v1alpha1.PodStateOnline), nginxPod(1, v1alpha1.PodStateCutoff)).
		WithStatusSubresource(&v1alpha1.ReplicaProfile{}, &corev1.Pod{}).Build()
	r := &Reconciler{Client: c, Reader: c, Scaler: &fakeScaler{replicas: 2}, Recorder: events.NewFakeRecorder(100)}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rp)}); err != nil {
		t.Fatal(err)
	}
	if got := view(t, c); len(got.online) != 2 || len(got.cutoff) != 0 {
		t.Errorf("pods after deletion = %+v, want both online", got)
	}
}

func TestPaused(t *testing.T) {
	rp := profile(1, 1, 0)
	rp.Spec.Paused = true
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(rp, nginxPod(0, v1alpha1.PodStateOnline), nginxPod(1, v1alpha1.PodStateOnline)).
		WithStatusSubresource(&v1alpha1.ReplicaProfile{}, &corev1.Pod{}).Build()
	scaler := &fakeScaler{replicas: 2}
	r := &Reconciler{Client: c, Reader: c, Scaler: scaler, Recorder: events.NewFakeRecorder(100)}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rp)}); err != nil {
		t.Fatal(err)
	}
	if got := view(t, c); len(got.online) != 2 || len(scaler.updates) != 0 {
		t.Errorf("a paused profile changed something: pods %+v, scale updates %v", got, scaler.updates)
	}
	got := &v1alpha1.ReplicaProfile{}
	_ = c.Get(context.Background(), client.ObjectKeyFromObject(rp), got)
	if c := meta.FindStatusCondition(got.Status.Conditions, string(v1alpha1.ReplicaProfileApplied)); c == nil || c.Reason != ReasonPaused {
		t.Errorf("Applied = %+v, want %s", c, ReasonPaused)
	}
}
