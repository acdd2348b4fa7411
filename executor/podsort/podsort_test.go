package podsort

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(base)},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(base)}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func notReady() podOpt {
	return func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
}
func readyAt(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(base.Add(d)) }
}
func createdAt(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(base.Add(d)) }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: n}}
	}
}
func sidecarRestarts(n int32) podOpt {
	always := corev1.ContainerRestartPolicyAlways
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: &always}, {Name: "init"}}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "proxy", RestartCount: n}, {Name: "init", RestartCount: 100}}
	}
}
func cost(v string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{PodDeletionCostAnnotation: v} }
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func TestReplicaSetPairs(t *testing.T) {
	// In each case "first" must sort before "second", whichever order they come in.
	tests := []struct {
		name          string
		first, second *corev1.Pod
		others        []*corev1.Pod // more pods of the workload, for node ranks
	}{
		{"unassigned before assigned", pod("b", onNode(""), phase(corev1.PodPending), notReady()), pod("a", phase(corev1.PodPending), notReady()), nil},
		{"pending before unknown", pod("b", phase(corev1.PodPending), notReady()), pod("a", phase(corev1.PodUnknown), notReady()), nil},
		{"unknown before running", pod("b", phase(corev1.PodUnknown), notReady()), pod("a", notReady()), nil},
		{"not ready before ready", pod("b", notReady()), pod("a"), nil},
		{"no ready condition counts as not ready", pod("b", func(p *corev1.Pod) { p.Status.Conditions = nil }), pod("a"), nil},
		{"lower deletion cost before higher", pod("b", cost("-5"), createdAt(-time.Hour)), pod("a", cost("10")), nil},
		{"invalid deletion cost counts as 0", pod("b", cost("oops")), pod("a", cost("1")), nil},
		{"more crowded node first", pod("b", onNode("busy"), createdAt(-time.Hour)), pod("a", onNode("quiet")),
			[]*corev1.Pod{pod("x", onNode("busy")), pod("y", onNode("busy"))}},
		{"terminated and deleting pods do not crowd a node", pod("b", onNode("quiet")), pod("a", onNode("busy")),
			[]*corev1.Pod{pod("x", onNode("busy"), phase(corev1.PodSucceeded)), pod("y", onNode("busy"), func(p *corev1.Pod) {
				now := metav1.NewTime(base)
				p.DeletionTimestamp = &now
			}), pod("z", onNode("quiet"))}},
		{"ready for less time first", pod("b", readyAt(time.Minute), restarts(0)), pod("a", readyAt(0), restarts(5)), nil},
		{"unknown ready time first", pod("b", readyAt(0), func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.Time{} }), pod("a", readyAt(time.Minute)), nil},
		{"more restarts first", pod("b", restarts(3), createdAt(-time.Hour)), pod("a", restarts(1)), nil},
		{"more sidecar restarts first when containers tie", pod("b", sidecarRestarts(2)), pod("a", sidecarRestarts(1)), nil},
		{"newer first", pod("b", createdAt(time.Minute)), pod("a", createdAt(0)), nil},
		{"name breaks ties", pod("a"), pod("b"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := append([]*corev1.Pod{tt.first, tt.second}, tt.others...)
			for _, pods := range [][]*corev1.Pod{{tt.first, tt.second}, {tt.second, tt.first}} {
				SortReplicaSet(pods, all)
				if pods[0] != tt.first {
					t.Errorf("order %v, want %s first", names(pods), tt.first.Name)
				}
			}
		})
	}
}

func TestReplicaSetFullOrder(t *testing.T) {
	pods := []*corev1.Pod{
		pod("old-ready"),
		pod("pending", onNode(""), phase(corev1.PodPending), notReady()),
		pod("cutoff", notReady()),
		pod("restarted", restarts(4)),
		pod("new-ready", createdAt(time.Hour), readyAt(time.Hour)),
		pod("expensive", cost("100"), createdAt(2*time.Hour), readyAt(2*time.Hour)),
	}
	want := []string{"pending", "cutoff", "new-ready", "restarted", "old-ready", "expensive"}
	order, err := ForWorkload(schema.GroupKind{Group: "apps", Kind: "Deployment"}, pods)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		shuffled := slices.Clone(pods)
		for j := range shuffled {
			k := (j*7 + i*3) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		order(shuffled)
		if got := names(shuffled); !slices.Equal(got, want) {
			t.Errorf("order %v, want %v", got, want)
		}
	}
	if len(pods) != 6 || pods[0].Name != "old-ready" {
		t.Error("the workload pods passed to ForWorkload must not be reordered")
	}
}

func TestStatefulSet(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"web-0", "web-2", "web-10", "web-1"}, []string{"web-10", "web-2", "web-1", "web-0"}},
		{[]string{"web-0", "web-x", "web-1", "weird"}, []string{"web-1", "web-0", "web-x", "weird"}},
		{nil, []string{}},
	}
	order, err := ForWorkload(schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		pods := make([]*corev1.Pod, len(tt.in))
		for i, n := range tt.in {
			pods[i] = pod(n)
		}
		order(pods)
		if got := names(pods); !slices.Equal(got, tt.want) {
			t.Errorf("order(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestForWorkloadUnsupported(t *testing.T) {
	for _, gk := range []schema.GroupKind{{Group: "apps", Kind: "DaemonSet"}, {Group: "", Kind: "ReplicaSet"}, {Group: "argoproj.io", Kind: "Rollout"}} {
		if _, err := ForWorkload(gk, nil); err == nil {
			t.Errorf("ForWorkload(%s): want an error", gk)
		}
	}
}
