package demo

import (
	"context"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

// Namespace holds the sample workload.
// Namespace holds the demo's sample workloads.
const Namespace = "demo"

// startSampleWorkload deploys "web" with simulated traffic that swings between 10 and 80 requests
// per second every ten minutes, and a native HPA that keeps 10 requests per second per pod through
// the adapter's custom metric, so the demo shows scaling without anyone sending traffic.
func startSampleWorkload(ctx context.Context, bed *localcluster.Cluster, adapter *stack.Adapter) error {
	if _, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	if err := stack.CreateWorkload(ctx, bed.Client, adapter.Sim, Namespace, "web", 2, 20); err != nil {
		return err
	}
	target := resource.MustParse("10")
	_, err := bed.Client.AutoscalingV2().HorizontalPodAutoscalers(Namespace).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    10,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.PodsMetricSourceType,
				Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &target},
				},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the sample HPA: %w", err)
	}
	go func() {
		began := time.Now()
		ticker := time.NewTicker(5 * time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-ticker.C:
				phase := 2 * math.Pi * now.Sub(began).Minutes() / 10
				adapter.Sim.SetTraffic(Namespace+"/web", 45-35*math.Cos(phase))
			}
		}
	}()
	return nil
}
