// Package webhook is the pod mutating webhook: pods labelled
// kapacitystack.io/inject-pod-readiness-gate=true get the kapacitystack.io/online readiness gate
// when created, and the gate's condition (True) with their first status update, so that they
// start Online. It also manages the webhook's serving certificate when cert-manager does not.
package webhook

import (
	"context"
	"encoding/json"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// Path is where the webhook is served, as in Kapacity.
const Path = "/mutate-v1-pod"

// Handler returns the webhook's HTTP handler.
func Handler(scheme *runtime.Scheme) http.Handler {
	return &admission.Webhook{Handler: &podMutator{decoder: admission.NewDecoder(scheme)}}
}

type podMutator struct {
	decoder admission.Decoder
}

// Handle implements admission.Handler.
func (m *podMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := m.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if !Mutate(pod, req.Operation, req.SubResource, metav1.Now()) {
		return admission.Allowed("")
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// Mutate applies the webhook's changes to pod and tells whether it changed anything:
//   - CREATE of a pod: add the readiness gate if it is missing;
//   - UPDATE of pods/status: add the gate's condition, True, if the pod has the gate and no
//     condition yet (Kapacity added it even to pods without the gate, where it means nothing).
func Mutate(pod *corev1.Pod, op admissionv1.Operation, subResource string, now metav1.Time) bool {
	if pod.Labels[v1alpha1.InjectReadinessGateLabelKey] != "true" {
		return false
	}
	hasGate := false
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType == v1alpha1.PodOnlineConditionType {
			hasGate = true
		}
	}
	switch {
	case op == admissionv1.Create && subResource == "":
		if hasGate {
			return false
		}
		pod.Spec.ReadinessGates = append(pod.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: v1alpha1.PodOnlineConditionType})
		return true
	case op == admissionv1.Update && subResource == "status":
		if !hasGate {
			return false
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == v1alpha1.PodOnlineConditionType {
				return false
			}
		}
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type: v1alpha1.PodOnlineConditionType, Status: corev1.ConditionTrue, LastTransitionTime: now,
		})
		return true
	}
	return false
}
