package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestBurstPortrait: an IHPA with a Static fallback of 1 replica and a Burst provider at the same
// priority (the merge then takes the larger) on a Deployment whose simulated traffic is the external
// metric requests_per_second, 10 requests/s per pod. The manager's Burst generator reads the
// metric's last samples from the adapter's history API. Traffic jumps from 5 to 60 requests/s:
// replicas rise within one sync of the burst showing in the samples, reach what 60 requests/s
// needs and hold while the traffic stays (the new pods' capacity does not end the burst); the
// traffic falls back to 5: the burst ends and the Static fallback's 1 replica returns.
func TestBurstPortrait(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)

	const (
		perPod         = 10 // requests/s one pod serves (the target's averageValue)
		quiet, busy    = 5, 60
		syncPeriod     = 5 * time.Second
		sampleInterval = 2 * time.Second // the bed's scrape interval
		startupDelay   = 10 * time.Second
	)
	createWorkload(ctx, t, env, ns, "web", 1, quiet)

	// The traffic must be in the history before the burst, or the first syncs decide on too few
	// samples: five samples of the quiet traffic, as the generator reads them.
	history, err := historyclient.NewHTTPForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	trafficQuery := historyv1alpha1.Query{Kind: historyv1alpha1.External, Namespace: ns, Metric: "requests_per_second"}
	poll.Until(ctx, t, 90*time.Second, "five history samples of the quiet traffic", func(ctx context.Context) (string, bool, error) {
		now := time.Now()
		series, err := history.Range(ctx, trafficQuery, historyv1alpha1.Range{Start: now.Add(-4 * sampleInterval), End: now, Step: sampleInterval})
		if err != nil {
			return err.Error(), false, nil
		}
		if len(series) != 1 {
			return fmt.Sprintf("%d series", len(series)), false, nil
		}
		quietOnes := 0
		for _, p := range series[0].Points {
			if v := float64(p.Value); v > quiet*0.8 && v < quiet*1.2 {
				quietOnes++
			}
		}
		return fmt.Sprintf("%+v", series[0].Points), quietOnes == 5, nil
	})

	// What one sync's read costs: the generator's query, through kube-apiserver, the adapter and
	// Prometheus (logged for the README; no assertion on a shared machine's timing).
	var took []time.Duration
	for range 20 {
		began := time.Now()
		if _, err := history.Range(ctx, trafficQuery, historyv1alpha1.Range{Start: began.Add(-4 * sampleInterval), End: began, Step: sampleInterval}); err != nil {
			t.Fatalf("reading the traffic history: %v", err)
		}
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	t.Logf("one sync's history read (5 samples): median %s, max %s over %d reads", took[len(took)/2].Round(100*time.Microsecond),
		took[len(took)-1].Round(100*time.Microsecond), len(took))

	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    1, MaxReplicas: 20,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 0, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 1}},
				{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 0, Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{
					PortraitType: v1alpha1.BurstPortraitType,
					Metrics: []v1alpha1.MetricSpec{{Name: "qps", MetricSpec: autoscalingv2.MetricSpec{
						Type: autoscalingv2.ExternalMetricSourceType,
						External: &autoscalingv2.ExternalMetricSource{
							Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
							Target: averageValue(fmt.Sprint(perPod)),
						},
					}}},
					Algorithm: v1alpha1.PortraitAlgorithm{Type: v1alpha1.BurstPortraitAlgorithmType, Burst: &v1alpha1.BurstPortraitAlgorithm{
						SyncPeriod:     metav1.Duration{Duration: syncPeriod},
						SampleInterval: metav1.Duration{Duration: sampleInterval},
						StartupDelay:   metav1.Duration{Duration: startupDelay},
					}},
				}}},
			},
		},
	}
	if err := crClient.Create(ctx, ihpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}
	hpName := ihpa.Name + "-burst"

	// observe returns the Deployment's replicas and the portrait, described for failure messages.
	observe := func(ctx context.Context) (spec, ready int32, hp *v1alpha1.HorizontalPortrait, seen string) {
		var parts []string
		if d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			parts = append(parts, err.Error())
		} else {
			spec, ready = ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas
			parts = append(parts, fmt.Sprintf("deployment spec=%d ready=%d", spec, ready))
		}
		hp = &v1alpha1.HorizontalPortrait{}
		if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: hpName}, hp); err != nil {
			return spec, ready, nil, strings.Join(append(parts, "hp: "+err.Error()), "; ")
		}
		if d := hp.Status.PortraitData; d != nil && d.Static != nil {
			parts = append(parts, fmt.Sprintf("hp static=%d expire=%v", d.Static.Replicas, d.ExpireTime))
		}
		if b := hp.Status.Burst; b != nil {
			parts = append(parts, fmt.Sprintf("burst since %s baseline %d", b.Since.Format(time.TimeOnly), b.BaselineReplicas))
		}
		for _, c := range hp.Status.Conditions {
			parts = append(parts, fmt.Sprintf("hp %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
		}
		return spec, ready, hp, strings.Join(parts, "; ")
	}
	within := func(spec int32) error {
		if spec < ihpa.Spec.MinReplicas || spec > ihpa.Spec.MaxReplicas {
			return fmt.Errorf("replicas %d outside [%d, %d]", spec, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
		}
		return nil
	}

	// Quiet: the generator runs and finds no burst; the Static fallback holds 1 replica.
	poll.Until(ctx, t, time.Minute, "quiet traffic: no burst, 1 replica", func(ctx context.Context) (string, bool, error) {
		spec, ready, hp, seen := observe(ctx)
		if hp == nil {
			return seen, false, nil
		}
		c := metaCondition(hp)
		return seen, spec == 1 && ready == 1 && c != nil && c.Status == metav1.ConditionTrue && hp.Status.Burst == nil &&
			strings.HasPrefix(c.Message, "no burst"), nil
	})

	// The burst. The generator sees it once two samples show it (the level is the median of the
	// last three, the slope robust to one wild sample), at its next sync.
	burstAt := time.Now()
	env.Sim.SetTraffic(ns+"/web", busy)
	var detected time.Time
	poll.Until(ctx, t, time.Minute, "burst: replicas rise", func(ctx context.Context) (string, bool, error) {
		spec, _, hp, seen := observe(ctx)
		if hp != nil && hp.Status.Burst != nil && detected.IsZero() {
			detected = time.Now()
		}
		return seen, spec > 1, within(spec)
	})
	rose := time.Since(burstAt)
	t.Logf("replicas rose %s after the traffic jumped (the burst was in the portrait after %s; sync period %s, samples %s apart, scrape %s)",
		rose.Round(100*time.Millisecond), detected.Sub(burstAt).Round(100*time.Millisecond), syncPeriod, sampleInterval, sampleInterval)
	// Two samples must show the burst (the first may straddle the jump), Prometheus scrapes every
	// sampleInterval, then one sync period; 5 s more for the IHPA, the Deployment and this poll.
	if bound := 3*sampleInterval + syncPeriod + 5*time.Second; rose > bound {
		t.Errorf("replicas rose %s after the burst began, more than the %s of one sync after it shows", rose, bound)
	}

	// 60 requests/s need 6 pods of 10; the burst holds while the traffic does, although the
	// pods now serve it (the burst is measured against the pod that served before it).
	need := int32(busy / perPod)
	poll.Until(ctx, t, time.Minute, fmt.Sprintf("burst: at least %d ready pods", need), func(ctx context.Context) (string, bool, error) {
		spec, ready, _, seen := observe(ctx)
		return seen, spec >= need && ready >= need, within(spec)
	})
	held := time.Now()
	poll.Until(ctx, t, time.Minute, "burst: the replicas hold for three syncs", func(ctx context.Context) (string, bool, error) {
		spec, _, hp, seen := observe(ctx)
		if spec < need || (hp != nil && hp.Status.Burst == nil) {
			return seen, false, fmt.Errorf("the burst let go while the traffic is still %d requests/s", busy)
		}
		return seen, time.Since(held) > 3*syncPeriod, within(spec)
	})

	// The traffic is back: the burst follows it down and ends; the fallback's 1 replica returns.
	endAt := time.Now()
	env.Sim.SetTraffic(ns+"/web", quiet)
	poll.Until(ctx, t, 2*time.Minute, "after the burst: back to 1 replica", func(ctx context.Context) (string, bool, error) {
		spec, ready, hp, seen := observe(ctx)
		return seen, spec == 1 && ready == 1 && hp != nil && hp.Status.Burst == nil, within(spec)
	})
	t.Logf("back to 1 replica %s after the traffic fell", time.Since(endAt).Round(100*time.Millisecond))

	events := ihpaEvents(ctx, ns, hpName) // found by the involved object's name, whatever its kind
	t.Logf("portrait events:\n%s", strings.Join(events, "\n"))
	joined := strings.Join(events, "\n")
	if !strings.Contains(joined, hportrait.ReasonBurstDetected) || !strings.Contains(joined, hportrait.ReasonBurstEnded) {
		t.Errorf("events of %s lack %s or %s", hpName, hportrait.ReasonBurstDetected, hportrait.ReasonBurstEnded)
	}
}

func metaCondition(hp *v1alpha1.HorizontalPortrait) *metav1.Condition {
	for i := range hp.Status.Conditions {
		if hp.Status.Conditions[i].Type == string(v1alpha1.PortraitGenerated) {
			return &hp.Status.Conditions[i]
		}
	}
	return nil
}
