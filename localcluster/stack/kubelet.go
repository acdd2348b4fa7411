package stack

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// PodSync brings one pod's status in line with what a real kubelet would report.
type PodSync func(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod)

// RunKubeletStandIn applies sync to every pod of namespace five times a second, playing the part
// of a kubelet that kwok does not, until ctx ends or the returned stop is called (which waits for
// the loop to return).
func RunKubeletStandIn(ctx context.Context, client kubernetes.Interface, namespace string, sync PodSync) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range pods.Items {
					sync(ctx, client, &pods.Items[i])
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// SyncReadiness makes a running pod with readiness gates Ready only while all its gates'
// conditions are True, as a kubelet does. kwok sets Ready (and each gate's condition) True once
// when the pod starts and never looks at the gates again, so without this a cut-off pod would stay
// Ready and in its Service's endpoints.
func SyncReadiness(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) {
	if pod.Status.Phase != corev1.PodRunning || len(pod.Spec.ReadinessGates) == 0 {
		return
	}
	want := corev1.ConditionTrue
	for _, g := range pod.Spec.ReadinessGates {
		if PodCondition(pod, g.ConditionType) != corev1.ConditionTrue {
			want = corev1.ConditionFalse
		}
	}
	if PodCondition(pod, corev1.PodReady) == want {
		return
	}
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":%q,"lastTransitionTime":%q}]}}`, want, time.Now().UTC().Format(time.RFC3339))
	// A failed patch is retried on the next pass.
	_, _ = client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
}

// PodCondition is the status of the pod's condition t, or "" if it has none.
func PodCondition(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}
