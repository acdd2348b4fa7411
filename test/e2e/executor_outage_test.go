package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestExecutorOutageBlocksNoPod (issue 11, finding 5): while the manager, and with it the pod
// webhook, is down, a Deployment whose pods ask for the readiness gate still scales up, its new
// pods become Ready, and a gated pod's status can still be written (the kubelet's readiness
// reports). The new pods lack the gate, so the executor can never cut them off. Once the manager
// is back, new pods get the gate again.
func TestExecutorOutageBlocksNoPod(t *testing.T) {
	ctx := context.Background()
	m := useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	emulateKubeletReadiness(ctx, t, ns)
	podLabels := map[string]string{"app": "web", v1alpha1.InjectReadinessGateLabelKey: "true"}
	_, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// With the manager up, the pod gets the gate and, with its first status, the gate's condition.
	outageWaitPods(ctx, t, ns, "1 gated pod Ready with the manager up", func(pods []corev1.Pod) bool {
		return len(pods) == 1 && hasOnlineGate(&pods[0]) && podRunningReady(&pods[0])
	})
	gatedPod := outageListPods(ctx, t, ns)[0].Name

	m.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = m.Start()
		}
	})
	began := time.Now()
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	outageWaitPods(ctx, t, ns, "3 pods Ready with the manager down", func(pods []corev1.Pod) bool {
		n := 0
		for i := range pods {
			if podRunningReady(&pods[i]) {
				n++
			}
		}
		return len(pods) == 3 && n == 3
	})
	t.Logf("scaled up to 3 Ready pods %s after the manager stopped", time.Since(began).Round(time.Millisecond))
	for _, p := range outageListPods(ctx, t, ns) {
		if p.Name != gatedPod && hasOnlineGate(&p) {
			t.Errorf("pod %s created during the outage has the gate: the webhook was reached", p.Name)
		}
	}
	// A status write of a gated pod, as the kubelet makes, goes through too.
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"e2e.kapacitystack.io/probe","status":"True","lastTransitionTime":%q}]}}`,
		time.Now().UTC().Format(time.RFC3339))
	if _, err := kube.CoreV1().Pods(ns).Patch(ctx, gatedPod, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("status update of gated pod %s with the manager down: %v", gatedPod, err)
	}

	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// Back up: once the webhook listens again (a dry-run pod shows it), a new pod gets the gate.
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: podLabels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}
	poll.Until(ctx, t, time.Minute, "the pod webhook serving again", func(ctx context.Context) (string, bool, error) {
		p, err := kube.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		return fmt.Sprintf("dry-run pod gated=%t", hasOnlineGate(p)), hasOnlineGate(p), nil
	})
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, p := range outageListPods(ctx, t, ns) {
		before[p.Name] = true
	}
	outageWaitPods(ctx, t, ns, "a gated, Ready fourth pod with the manager back", func(pods []corev1.Pod) bool {
		return len(pods) == 4 && slices.ContainsFunc(pods, func(p corev1.Pod) bool { return !before[p.Name] && hasOnlineGate(&p) && podRunningReady(&p) })
	})
}

func outageListPods(ctx context.Context, t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// outageWaitPods polls the Deployment's pods until done holds for them.
func outageWaitPods(ctx context.Context, t *testing.T, ns, what string, done func([]corev1.Pod) bool) {
	t.Helper()
	poll.Until(ctx, t, time.Minute, what, func(ctx context.Context) (string, bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		var seen []string
		for _, p := range pods.Items {
			seen = append(seen, fmt.Sprintf("%s phase=%s gated=%t ready=%t", p.Name, p.Status.Phase, hasOnlineGate(&p), podRunningReady(&p)))
		}
		rs, _ := kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if rs != nil {
			for _, r := range rs.Items {
				for _, c := range r.Status.Conditions {
					seen = append(seen, fmt.Sprintf("replicaset %s %s: %s", r.Name, c.Type, c.Message))
				}
			}
		}
		return strings.Join(seen, "; "), done(pods.Items), nil
	})
}

func hasOnlineGate(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == v1alpha1.PodOnlineConditionType })
}

func podRunningReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && stack.PodCondition(p, corev1.PodReady) == corev1.ConditionTrue
}
