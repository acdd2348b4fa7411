package stack

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/localcluster/sim"
)

// CreateWorkload creates a Deployment (pods labelled app=<name>, one container "app" requesting
// 500m CPU) and has the simulator serve its series with requestsPerSecond of traffic shared by its
// ready pods. The simulator key is "<namespace>/<name>".
func CreateWorkload(ctx context.Context, client kubernetes.Interface, simulator *sim.Simulator, namespace, name string, replicas int32, requestsPerSecond float64) error {
	podLabels := map[string]string{"app": name}
	_, err := client.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "app",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
					}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating deployment %s/%s: %w", namespace, name, err)
	}
	key := namespace + "/" + name
	simulator.AddWorkload(key, sim.Workload{
		Namespace: namespace, Selector: labels.SelectorFromSet(podLabels), Container: "app",
		CPUPerRequest: 0.01, IdleCPU: 0.02, MemoryBytes: 64 << 20,
	})
	simulator.SetTraffic(key, requestsPerSecond)
	return nil
}
