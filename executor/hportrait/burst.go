package hportrait

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/burst"
)

// The Burst generator runs package recommender/burst at every sync of a Burst portrait (portraitType
// Burst, algorithm Burst) on the last few samples of its traffic metric, and writes what it decided
// to the portrait's status, where the autoscaler merges it with the other providers:
//
//   - During a burst, Static data with the replicas the traffic projected one pod start-up ahead
//     needs, expiring after burstHoldSyncs sync periods unless a later sync renews it, so that a
//     generator that stopped (metrics gone, portrait removed) does not pin the workload at its burst
//     size. One failed read does not end a burst: the value holds until it expires.
//   - Otherwise Static data of 0 replicas, which the autoscaler reads as "no value": the other
//     providers decide.
//
// The merge picks by priority, and on equal priority the larger value: a Burst provider at the
// priority of the provider it backs up (Predictive, Reactive, Static) adds pods to it during a burst
// and leaves it alone otherwise.
//
// Hysteresis. A burst is detected against the capacity of the pods serving when it starts; once it
// is under way, the generator keeps measuring against that capacity (status.burst.baselineReplicas),
// not against the pods it added, which would end the burst as soon as they served and start it again
// as soon as they went (a scale-up/scale-down cycle every other sync). So the burst lasts while the
// traffic is more than the baseline pods serve (or above the forecast band), and its answer, never
// below the baseline, follows the traffic down. The state is in the status, so a restarted manager
// carries a burst on.
//
// Samples come from the history API (historyapi), not from a buffer in the manager: they survive a
// restart (a buffer would need five syncs to refill before any decision), their spacing
// (sampleInterval) does not depend on the sync period, so a burst can show within one sync, and they
// are the same series the metrics APIs serve, computed by the same adapter rules.

// Event reasons of the Burst generator.
const (
	ReasonBurstDetected = "BurstDetected"
	ReasonBurstEnded    = "BurstEnded"
)

// burstHoldSyncs is how many sync periods a burst value holds without being renewed.
const burstHoldSyncs = 3

// burstSamples is how many traffic samples are read at each sync: the Theil–Sen slope's window in
// package burst (its level takes the last three).
const burstSamples = 5

// TrafficHistory reads a metric's recent samples; historyapi/client.Interface implements it.
type TrafficHistory interface {
	Range(ctx context.Context, q historyv1alpha1.Query, r historyv1alpha1.Range) ([]historyv1alpha1.Series, error)
}

// burstObservation is what one sync of a Burst portrait sees.
type burstObservation struct {
	samples []burst.Sample
	band    []burst.BandPoint
	// bandSource names where the band came from, or why there is none.
	bandSource string
	serving    int
	cfg        burst.Config
}

// burstPortrait generates a Burst portrait: one sync, then a requeue after the sync period.
func (r *Reconciler) burstPortrait(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	algo := v1alpha1.DefaultBurstPortraitAlgorithm()
	if hp.Spec.Algorithm.Burst != nil {
		algo = *hp.Spec.Algorithm.Burst
	}
	sync := algo.SyncPeriod.Duration
	now := r.now()
	obs, err := r.observeBurst(ctx, hp, algo, now)
	var d burst.Decision
	if err == nil {
		d, err = decideBurst(hp.Status.Burst, obs)
	}
	if err != nil {
		// The last value stays until it expires: one failed read does not end a burst.
		msg := "failed to generate portrait: " + err.Error()
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedGenerate, "Generate", "%s", eventNote(msg))
		setCondition(hp, metav1.ConditionFalse, ReasonFailedGenerate, msg)
		if serr := r.updateStatus(ctx, hp, original); serr != nil {
			log.Error(serr, "updating status after a failure")
		}
		return ctrl.Result{RequeueAfter: sync}, nil
	}
	log.V(1).Info("burst check", "burst", d.Burst, "replicas", d.Replicas, "level", d.Level, "slope", d.Slope,
		"projected", d.Projected, "serving", obs.serving, "band", obs.bandSource, "reason", d.Reason)

	if !d.Burst {
		if hp.Status.Burst != nil {
			r.Recorder.Eventf(hp, nil, corev1.EventTypeNormal, ReasonBurstEnded, "Generate", "%s", eventNote("burst over: "+d.Reason))
		}
		hp.Status.Burst = nil
		hp.Status.PortraitData = &v1alpha1.HorizontalPortraitData{
			Type:   v1alpha1.StaticHorizontalPortraitDataType,
			Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 0},
		}
		// A message without the figures, so that a quiet portrait is not rewritten at every sync.
		setCondition(hp, metav1.ConditionTrue, ReasonSucceeded, "no burst (0 replicas: the other providers decide); "+obs.bandSource)
		return ctrl.Result{RequeueAfter: sync}, r.updateStatus(ctx, hp, original)
	}
	if hp.Status.Burst == nil {
		hp.Status.Burst = &v1alpha1.BurstStatus{Since: metav1.NewTime(now.UTC().Truncate(time.Second)), BaselineReplicas: int32(obs.serving)}
		r.Recorder.Eventf(hp, nil, corev1.EventTypeNormal, ReasonBurstDetected, "Generate", "%s",
			eventNote(fmt.Sprintf("burst: %s; asking for %d replicas", d.Reason, d.Replicas)))
	}
	expire := metav1.NewTime(now.Add(burstHoldSyncs * sync).UTC().Truncate(time.Second))
	hp.Status.PortraitData = &v1alpha1.HorizontalPortraitData{
		Type:       v1alpha1.StaticHorizontalPortraitDataType,
		Static:     &v1alpha1.StaticHorizontalPortraitData{Replicas: int32(d.Replicas)},
		ExpireTime: &expire,
	}
	setCondition(hp, metav1.ConditionTrue, ReasonSucceeded, fmt.Sprintf("burst since %s, baseline %d replicas: %s; %d replicas; %s",
		hp.Status.Burst.Since.UTC().Format(time.RFC3339), hp.Status.Burst.BaselineReplicas, d.Reason, d.Replicas, obs.bandSource))
	return ctrl.Result{RequeueAfter: sync}, r.updateStatus(ctx, hp, original)
}

// decideBurst runs the algorithm. Before a burst it measures against the pods serving now; during
// one, against the pods that served when it began, and never asks for fewer (see the hysteresis
// note above).
func decideBurst(state *v1alpha1.BurstStatus, obs burstObservation) (burst.Decision, error) {
	cfg := obs.cfg
	current := obs.serving
	if state != nil {
		current = int(state.BaselineReplicas)
	}
	cfg.MinReplicas = max(cfg.MinReplicas, current)
	d, err := burst.Decide(burst.Input{Samples: obs.samples, Band: obs.band, Current: current}, cfg)
	if err != nil {
		return d, fmt.Errorf("burst algorithm: %w", err)
	}
	return d, nil
}

// observeBurst reads what a sync needs: the traffic samples, the serving pods, the capacity and
// target of one pod, and the forecast band when a Predictive portrait of the same autoscaler has one.
func (r *Reconciler) observeBurst(ctx context.Context, hp *v1alpha1.HorizontalPortrait, algo v1alpha1.BurstPortraitAlgorithm, now time.Time) (burstObservation, error) {
	var obs burstObservation
	if len(hp.Spec.Metrics) == 0 {
		return obs, fmt.Errorf("spec.metrics: a Burst portrait needs its traffic metric (Object, External or Pods with an averageValue target, or Resource)")
	}
	if r.History == nil {
		return obs, fmt.Errorf("the manager has no history API client (history.metrics.kapacitystack.io), which Burst portraits read their traffic from")
	}
	margin, err := strconv.ParseFloat(algo.Margin, 64)
	if err != nil || margin < 0 {
		return obs, fmt.Errorf("spec.algorithm.burst.margin %q: must be a non-negative decimal", algo.Margin)
	}
	m := &hp.Spec.Metrics[0]
	scale, _, err := r.Scaler.GetScale(ctx, hp.Namespace, hp.Spec.ScaleTargetRef)
	if err != nil {
		return obs, err
	}
	pods, err := r.workloadPods(ctx, hp.Namespace, scale)
	if err != nil {
		return obs, err
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && podReady(p) {
			obs.serving++
		}
	}
	capacity, target, err := podCapacity(m, algo.PodCapacity, pods)
	if err != nil {
		return obs, fmt.Errorf("spec.metrics[0]: %w", err)
	}
	obs.cfg = burst.Config{PodCapacity: capacity, Target: target, StartupDelay: algo.StartupDelay.Duration, Margin: margin, SlopeSamples: burstSamples}
	if max := r.maxReplicas(ctx, hp); max > 0 {
		obs.cfg.MaxReplicas = int(max)
	}
	q, err := trafficQuery(hp.Namespace, hp.Spec.ScaleTargetRef, m)
	if err != nil {
		return obs, fmt.Errorf("spec.metrics[0]: %w", err)
	}
	if obs.samples, err = readTraffic(ctx, r.History, q, now, algo.SampleInterval.Duration); err != nil {
		return obs, err
	}
	obs.band, obs.bandSource = r.forecastBand(ctx, hp, m.Name, now)
	return obs, nil
}

// maxReplicas is the owning autoscaler's maxReplicas, or 0 when it cannot be read: the answer is
// then bounded by package burst alone (and the autoscaler caps it anyway).
func (r *Reconciler) maxReplicas(ctx context.Context, hp *v1alpha1.HorizontalPortrait) int32 {
	owner := metav1.GetControllerOf(hp)
	if owner == nil || owner.Kind != "IntelligentHorizontalPodAutoscaler" {
		return 0
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hp.Namespace, Name: owner.Name}, ihpa); err != nil || ihpa.UID != owner.UID {
		return 0
	}
	return ihpa.Spec.MaxReplicas
}

// readTraffic reads the last burstSamples samples of q, interval apart and ending at now. Several
// series are summed per timestamp (as the HPA sums an external metric's series); samples that are
// not finite numbers are left out.
func readTraffic(ctx context.Context, h TrafficHistory, q historyv1alpha1.Query, now time.Time, interval time.Duration) ([]burst.Sample, error) {
	rng := historyv1alpha1.Range{Start: now.Add(-time.Duration(burstSamples-1) * interval), End: now, Step: interval}
	series, err := h.Range(ctx, q, rng)
	if err != nil {
		return nil, fmt.Errorf("reading the traffic (%s %s) from the history API: %w", q.Kind, describeQuery(q), err)
	}
	return sumSeries(series), nil
}
