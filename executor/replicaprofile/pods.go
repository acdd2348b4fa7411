package replicaprofile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podsort"
)

// deleteCost is the pod-deletion-cost given to pods chosen for removal from a ReplicaSet, so that
// its controller removes exactly those pods when the scale is lowered, even where their readiness
// has not changed yet.
const deleteCost = "-2147483648"

// setTraffic sets the pod's readiness-gate condition: True lets the pod serve (with the rest of its
// readiness), False cuts it off. A strategic merge patch changes only this condition, so the
// kubelet's conditions are never overwritten.
func setTraffic(ctx context.Context, c client.Client, pod *corev1.Pod, on bool) error {
	status := corev1.ConditionFalse
	if on {
		status = corev1.ConditionTrue
	}
	if cond := onlineCondition(pod); cond != nil && cond.Status == status {
		return nil
	}
	patched := pod.DeepCopy()
	setOnlineCondition(patched, status)
	if err := c.Status().Patch(ctx, patched, client.StrategicMergeFrom(pod)); err != nil {
		return fmt.Errorf("patching condition %s of pod %s: %w", v1alpha1.PodOnlineConditionType, pod.Name, err)
	}
	return nil
}

// setState sets the pod's state label; Online removes it.
func setState(ctx context.Context, c client.Client, pod *corev1.Pod, state v1alpha1.PodState) error {
	current, has := pod.Labels[v1alpha1.PodStateLabelKey]
	marked := pod.Annotations[podsort.PodDeletionCostAnnotation] == deleteCost
	if (state == v1alpha1.PodStateOnline && !has && !marked) || (state != v1alpha1.PodStateOnline && has && current == string(state)) {
		return nil
	}
	patched := pod.DeepCopy()
	if state == v1alpha1.PodStateOnline {
		delete(patched.Labels, v1alpha1.PodStateLabelKey)
		// A pod that was to be removed and is kept after all loses its low deletion cost.
		if patched.Annotations[podsort.PodDeletionCostAnnotation] == deleteCost {
			delete(patched.Annotations, podsort.PodDeletionCostAnnotation)
		}
	} else {
		if patched.Labels == nil {
			patched.Labels = map[string]string{}
		}
		patched.Labels[v1alpha1.PodStateLabelKey] = string(state)
	}
	if err := c.Patch(ctx, patched, client.MergeFrom(pod)); err != nil {
		return fmt.Errorf("labelling pod %s %s: %w", pod.Name, state, err)
	}
	return nil
}

// markForDeletion gives the pod the lowest deletion cost, which the ReplicaSet controller honours
// right after readiness when it picks pods to delete.
func markForDeletion(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	if pod.Annotations[podsort.PodDeletionCostAnnotation] == deleteCost {
		return nil
	}
	patched := pod.DeepCopy()
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[podsort.PodDeletionCostAnnotation] = deleteCost
	if err := c.Patch(ctx, patched, client.MergeFrom(pod)); err != nil {
		return fmt.Errorf("setting the deletion cost of pod %s: %w", pod.Name, err)
	}
	return nil
}

func onlineCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1alpha1.PodOnlineConditionType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func setOnlineCondition(pod *corev1.Pod, status corev1.ConditionStatus) {
	now := metav1.Now()
	if c := onlineCondition(pod); c != nil {
		c.Status, c.LastTransitionTime = status, now
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: v1alpha1.PodOnlineConditionType, Status: status, LastTransitionTime: now,
	})
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}
