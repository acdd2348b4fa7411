package stack

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// The workload of Kapacity's predictive quick-start (2.2.1.3): StatefulSet "nginx" behind Service
// "nginx" and Ingress "nginx-server".
const (
	NginxName    = "nginx"
	NginxIngress = "nginx-server"
)

// CreateNginx creates the quick-start's StatefulSet "nginx" (pods labelled for the readiness gate,
// one container "nginx" requesting 100m CPU) and its Service "nginx".
func CreateNginx(ctx context.Context, client kubernetes.Interface, ns string, replicas int32) error {
	podLabels := map[string]string{"app": NginxName, v1alpha1.InjectReadinessGateLabelKey: "true"}
	_, err := client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: NginxName},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			ServiceName:         NginxName,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": NginxName}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: NginxName, Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80, Name: "web"}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating StatefulSet %s/%s: %w", ns, NginxName, err)
	}
	_, err = client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: NginxName},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": NginxName},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("web")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", ns, NginxName, err)
	}
	return nil
}

// CreateNginxIngress creates the quick-start's Ingress "nginx-server" (nginx-ingress.yaml). No
// controller serves it: the ingress exporter of FeedHistory reports its traffic.
func CreateNginxIngress(ctx context.Context, client kubernetes.Interface, ns string) error {
	_, err := client.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: NginxIngress},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules: []networkingv1.IngressRule{{Host: "nginx.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: NginxName, Port: networkingv1.ServiceBackendPort{Number: 80}},
				}}},
			}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating Ingress %s/%s: %w", ns, NginxIngress, err)
	}
	return nil
}
