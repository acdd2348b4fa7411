package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestExecutorReactivePortrait reproduces quick-start 2.2.1.2 (dynamic-reactive-portrait-sample.yaml,
// only the target's kind and name changed): the HorizontalPortrait controller computes a KubeHPA
// portrait from CPU utilization read through metrics.k8s.io, served by the adapter from the
// simulator's cAdvisor series. Traffic up → the IHPA scales the Deployment up; traffic down → down
// to the sample's minReplicas. The sample has no behaviour, so both directions apply at once.
func TestExecutorReactivePortrait(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	// One container requesting 500m; each pod uses 20m idle + 10m per request/s, shared by the
	// ready pods. At 100 req/s one pod uses 1020m (204% of its request): the KubeHPA algorithm
	// with the sample's 30% target asks for ceil(204/30) = 7 pods, where each uses ~163m (33%,
	// within the 10% tolerance).
	createWorkload(ctx, t, env, ns, "web", 1, 100)
	waitRaw(ctx, t, 90*time.Second, "/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods", func(body []byte) bool {
		return strings.Contains(string(body), `"name":"web-`) && strings.Contains(string(body), `"cpu"`)
	})

	ihpa := loadSample(t, "dynamic-reactive-portrait-sample.yaml")
	ihpa.Namespace = ns
	ihpa.Spec.ScaleTargetRef.Kind, ihpa.Spec.ScaleTargetRef.Name = "Deployment", "web"
	if err := crClient.Create(ctx, ihpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}
	hpName := ihpa.Name + "-reactive"

	describe := func(ctx context.Context) (int32, int32, string) {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return 0, 0, err.Error()
		}
		spec, ready := ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas
		parts := []string{fmt.Sprintf("deployment spec=%d ready=%d", spec, ready)}
		hp := &v1alpha1.HorizontalPortrait{}
		if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: hpName}, hp); err != nil {
			parts = append(parts, "hp: "+err.Error())
		} else {
			if pd := hp.Status.PortraitData; pd != nil && pd.Static != nil {
				parts = append(parts, fmt.Sprintf("hp static=%d", pd.Static.Replicas))
			}
			for _, c := range hp.Status.Conditions {
				parts = append(parts, fmt.Sprintf("hp %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
			}
		}
		cur := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(ihpa), cur); err == nil {
			if v := cur.Status.CurrentPortraitValue; v != nil {
				parts = append(parts, fmt.Sprintf("ihpa current=%s:%d", v.Provider, v.Replicas))
			}
			for _, c := range cur.Status.Conditions {
				parts = append(parts, fmt.Sprintf("ihpa %s=%s(%s)", c.Type, c.Status, c.Reason))
			}
		}
		return spec, ready, strings.Join(parts, "; ")
	}
	waitDeployment := func(what string, timeout time.Duration, done func(spec, ready int32) bool, invariant func(spec, ready int32) error) {
		t.Helper()
		poll.Until(ctx, t, timeout, what, func(ctx context.Context) (string, bool, error) {
			spec, ready, seen := describe(ctx)
			if invariant != nil {
				if err := invariant(spec, ready); err != nil {
					return seen, false, err
				}
			}
			return seen, done(spec, ready), nil
		})
	}
	withinBounds := func(spec, _ int32) error {
		if spec > ihpa.Spec.MaxReplicas || spec < ihpa.Spec.MinReplicas {
			return fmt.Errorf("replicas %d outside [%d, %d]", spec, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
		}
		return nil
	}

	// Scale up: new pods start with no CPU history, and the HPA algorithm counts pods still in
	// their CPU initialization period as unready (zero usage on a scale-up), so it may take more
	// than one step; it settles at 7 or a pod either side (the window of a rate over new pods).
	waitDeployment("traffic 100 req/s: scaled up to 6-8 ready pods", 4*time.Minute, func(spec, ready int32) bool {
		return spec >= 6 && spec <= 8 && ready == spec
	}, withinBounds)

	// Traffic down to 2 req/s: every pod idles at ~4%-8% of its request, so the portrait falls to
	// the sample's minReplicas (1) in one or two syncs; no behaviour means no gray steps.
	env.Sim.SetTraffic(ns+"/web", 2)
	waitDeployment("traffic 2 req/s: scaled down to 1 ready pod", 4*time.Minute, func(spec, ready int32) bool {
		return spec == 1 && ready == 1
	}, withinBounds)

	events := ihpaEvents(ctx, ns, ihpa.Name)
	t.Logf("IHPA events:\n%s", strings.Join(events, "\n"))
	if len(events) == 0 {
		t.Error("no IHPA events")
	}
}
