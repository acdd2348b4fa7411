package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/ihpa"
	"github.com/kapacitystack/kapacity/localcluster/sim"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestExecutorStabilityCheckRollsBack: a gray scale-down from 5 to 1 through Cutoff, watched by a
// Metrics stability checker on the per-pod request rate (served by the adapter from the
// simulator). The traffic, 40 req/s, is shared by the ready pods: 8 per pod at 5 pods, 13.3 at 3.
// The first batch cuts 2 pods off, the 3 left exceed the checker's 10 req/s, and the rollback
// returns the cut-off pods to Online (5 ready endpoints again) without any pod being removed;
// the Stable condition and a Warning event say why, and the change holds during the cool-down.
func TestExecutorStabilityCheckRollsBack(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	emulateKubeletReadiness(ctx, t, ns)
	createNginx(ctx, t, ns, 5)
	key := ns + "/nginx"
	env.Sim.AddWorkload(key, sim.Workload{
		Namespace: ns, Selector: labels.SelectorFromSet(labels.Set{"app": "nginx"}), Container: "nginx",
		CPUPerRequest: 0.001, IdleCPU: 0.01, MemoryBytes: 64 << 20,
	})
	env.Sim.SetTraffic(key, 40)

	target := resource.MustParse("10")
	hpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "stability", Namespace: ns},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			MinReplicas:    1, MaxReplicas: 10,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{{
				Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 1,
				Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 5},
			}},
			Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{
				ScaleDown: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
					GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: 60, ChangePercent: 50, ObservationSeconds: 30,
					StabilityCheckers: []v1alpha1.StabilityChecker{{
						Type: v1alpha1.MetricsStabilityCheckerType, StabilizationAction: v1alpha1.StabilizationActionRollback,
						CoolDownSeconds: 600,
						Metrics: &v1alpha1.MetricsStabilityChecker{Metrics: []v1alpha1.MetricSpec{{
							Name: "qps-per-pod",
							MetricSpec: autoscalingv2.MetricSpec{
								Type: autoscalingv2.PodsMetricSourceType,
								Pods: &autoscalingv2.PodsMetricSource{
									Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
									Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &target},
								},
							},
						}}},
					}},
				}},
			},
		},
	}
	if err := crClient.Create(ctx, hpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}
	started := false
	wait := func(what string, timeout time.Duration, done func(observation) bool) {
		t.Helper()
		poll.Until(ctx, t, timeout, what, func(ctx context.Context) (string, bool, error) {
			o, err := observe(ctx, ns, hpa.Name)
			if err != nil {
				return observationError(ctx, err), false, nil
			}
			if started && (o.pods < 5 || o.specReplicas < 5) {
				return o.String(), false, fmt.Errorf("a pod was removed: neither the plan's first batch nor the rollback allows it")
			}
			return o.String(), done(o), nil
		})
		started = true
	}
	wait("5 online pods, 5 ready endpoints", 2*time.Minute, func(o observation) bool {
		return o.specReplicas == 5 && len(o.online) == 5 && o.readyEndpoints == 5
	})
	// The per-pod rate must be there before the change, or the checker cannot see anything.
	waitRaw(ctx, t, 90*time.Second, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second", func(body []byte) bool {
		return strings.Count(string(body), `"name":"nginx-`) == 5
	})

	// Scale down 5 → 1 in two 50% batches.
	patched := hpa.DeepCopy()
	if err := crClient.Get(ctx, client.ObjectKeyFromObject(hpa), patched); err != nil {
		t.Fatal(err)
	}
	base := patched.DeepCopy()
	patched.Spec.PortraitProviders[0].Static.Replicas = 1
	if err := crClient.Patch(ctx, patched, client.MergeFrom(base)); err != nil {
		t.Fatalf("patching the static portrait: %v", err)
	}
	wait("first batch: 3 online + 2 cutoff (nginx-3, nginx-4)", time.Minute, func(o observation) bool {
		return len(o.online) == 3 && slices.Equal(o.cutoff, []string{"nginx-3", "nginx-4"}) && o.readyEndpoints == 3
	})
	wait("rollback: 5 online, no cutoff, 5 ready endpoints, Stable=False(AnomalyRolledBack)", time.Minute, func(o observation) bool {
		return len(o.online) == 5 && len(o.cutoff) == 0 && o.readyEndpoints == 5 && o.specReplicas == 5 &&
			strings.Contains(o.ihpaConditions, "Stable=False("+ihpa.ReasonAnomalyRolledBack+")")
	})
	// The cool-down holds the rollback: the next batch (due 60 s after the first) must not run.
	heldFrom := time.Now()
	poll.Until(ctx, t, 90*time.Second, "the rollback holds past the next batch's due time", func(ctx context.Context) (string, bool, error) {
		o, err := observe(ctx, ns, hpa.Name)
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		if len(o.cutoff) > 0 || o.pods < 5 {
			return o.String(), false, fmt.Errorf("the change went on during the cool-down")
		}
		return o.String(), time.Since(heldFrom) > 70*time.Second, nil
	})

	cur := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := crClient.Get(ctx, client.ObjectKeyFromObject(hpa), cur); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(cur.Status.Conditions, string(ihpa.ConditionStable))
	if c == nil || !strings.Contains(c.Message, "qps-per-pod") {
		t.Errorf("Stable condition = %+v, want one naming the rule qps-per-pod", c)
	} else {
		t.Logf("Stable condition: %s %s: %s", c.Status, c.Reason, c.Message)
	}
	events := ihpaEvents(ctx, ns, hpa.Name)
	t.Logf("IHPA events:\n%s", strings.Join(events, "\n"))
	for _, want := range []string{
		"update ReplicaProfile with onlineReplicas: 5 -> 3, cutoffReplicas: 0 -> 2, standbyReplicas: 0 -> 0",
		ihpa.ReasonAnomalyRolledBack + ": stability anomaly: qps-per-pod",
		"update ReplicaProfile with onlineReplicas: 3 -> 5, cutoffReplicas: 2 -> 0, standbyReplicas: 0 -> 0",
	} {
		if !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no event %q", want)
		}
	}
}
