package demo

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

// batchIHPA is the quick-start's gray-strategy-sample.yaml (2.2.1.4) on the demo's Deployment
// "batch", with its cron window repeated every 10 minutes instead of once an hour, so that within
// minutes the demo shows a scale-up to 5 and a gray scale-down through Cutoff back to 1.
const batchIHPA = `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: IntelligentHorizontalPodAutoscaler
metadata:
  name: batch
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: batch
  minReplicas: 1
  maxReplicas: 10
  portraitProviders:
  - priority: 1
    type: Static
    static:
      replicas: 1
  - priority: 2
    type: Cron
    cron:
      crons:
      - name: every-10-minutes
        replicas: 5
        start: "*/10 * * * *"
        end: "4-59/10 * * * *"
  behavior:
    scaleDown:
      grayStrategy:
        grayState: Cutoff
        changeIntervalSeconds: 30
        changePercent: 50
        observationSeconds: 60
`

// startExecutorSample deploys "batch" (pods opted in to the readiness gate, behind a Service) and
// the IHPA above. The manager must be running. Until stop is called, a kubelet stand-in makes
// cut-off pods unready, as a kubelet does and kwok does not, so the Service's endpoints shrink.
func startExecutorSample(ctx context.Context, bed *localcluster.Cluster) (stop func(), err error) {
	podLabels := map[string]string{"app": "batch", v1alpha1.InjectReadinessGateLabelKey: "true"}
	_, err = bed.Client.AppsV1().Deployments(Namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "batch"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "app",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating deployment %s/batch: %w", Namespace, err)
	}
	_, err = bed.Client.CoreV1().Services(Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "batch"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "batch"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating service %s/batch: %w", Namespace, err)
	}
	c, err := newClient(bed)
	if err != nil {
		return nil, err
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict([]byte(batchIHPA), ihpa); err != nil {
		return nil, fmt.Errorf("decoding the sample IHPA: %w", err)
	}
	ihpa.Namespace = Namespace
	if err := c.Create(ctx, ihpa); err != nil {
		return nil, fmt.Errorf("creating IHPA %s/%s: %w", Namespace, ihpa.Name, err)
	}
	return stack.RunKubeletStandIn(ctx, bed.Client, Namespace, stack.SyncReadiness), nil
}
