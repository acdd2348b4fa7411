package replay

import (
	"math"
	"time"
)

// HPAConfig is the native HPA as the cluster runs it: controller flags and the autoscaling/v2 default
// behavior.
type HPAConfig struct {
	// SyncPeriod is --horizontal-pod-autoscaler-sync-period (15 s); every policy acts at this pace.
	SyncPeriod time.Duration
	// Tolerance is --horizontal-pod-autoscaler-tolerance (0.1).
	Tolerance float64
	// MetricWindow is how far back the CPU usage the HPA sees is averaged (metrics-server's window plus
	// the scrape delay): the HPA reacts to the mean demand of the last MetricWindow.
	MetricWindow time.Duration
	// ScaleDownStabilization is behavior.scaleDown.stabilizationWindowSeconds (300 s).
	ScaleDownStabilization time.Duration
	// ScaleUpStabilization is behavior.scaleUp.stabilizationWindowSeconds (0).
	ScaleUpStabilization time.Duration
	// ScaleUpPercent and ScaleUpPods per ScaleUpPeriod are the default scale-up policies (100 %, 4 pods,
	// 15 s; the larger wins). ScaleDownPercent per ScaleDownPeriod is the default scale-down policy
	// (100 %, 15 s).
	ScaleUpPercent, ScaleUpPods int
	ScaleUpPeriod               time.Duration
	ScaleDownPercent            int
	ScaleDownPeriod             time.Duration
}

// DefaultHPAConfig is kube-controller-manager's defaults and the autoscaling/v2 default behavior.
func DefaultHPAConfig() HPAConfig {
	return HPAConfig{
		SyncPeriod:             15 * time.Second,
		Tolerance:              0.1,
		MetricWindow:           time.Minute,
		ScaleDownStabilization: 5 * time.Minute,
		ScaleUpPercent:         100, ScaleUpPods: 4, ScaleUpPeriod: 15 * time.Second,
		ScaleDownPercent: 100, ScaleDownPeriod: 15 * time.Second,
	}
}

// observation is what a reactive policy measures at a sync.
type observation struct {
	state
	// usage is the mean demand (pods' worth of CPU) over the metric window, carried by the ready pods.
	usage float64
	// traffic is the demand as a traffic metric shows it: its rate over the last two syncs (a 30 s
	// rate of a 15 s scrape), sooner than the CPU metric's window.
	traffic float64
}

// hpaReplicas is the HPA replica calculator for a CPU utilisation target (GetResourceReplicas), with the
// pods the simulation has: ready pods with metrics (pods held in a gray state are ready and report ~0, as
// the HPA counts long-running unready pods) and pods still starting (unready: ignored, or counted idle
// when that does not flip a scale-up). current is the workload's replica count. ok is false when no pod
// has metrics, where the HPA leaves the workload alone.
func hpaReplicas(current int, o observation, target, tolerance float64) (replicas int, ok bool) {
	if o.ready == 0 {
		return current, false
	}
	ratio := o.usage / float64(o.ready) / target
	if o.starting == 0 || ratio <= 1 {
		if math.Abs(1-ratio) <= tolerance {
			return current, true
		}
		return int(math.Ceil(ratio * float64(o.ready))), true
	}
	// Scaling up with unready pods: count them as idle, so that pods already starting are not asked for
	// again.
	n := o.ready + o.starting
	newRatio := o.usage / float64(n) / target
	if math.Abs(1-newRatio) <= tolerance || newRatio < 1 {
		return current, true
	}
	r := int(math.Ceil(newRatio * float64(n)))
	if r < current {
		return current, true
	}
	return r, true
}

type scaleEvent struct {
	at    time.Time
	delta int // >0 up, <0 down
}

type recommendation struct {
	at       time.Time
	replicas int
}

// hpaBehavior is the controller's per-HPA memory: the recommendations of the stabilization windows and
// the recent scale events the rate policies count.
type hpaBehavior struct {
	cfg             HPAConfig
	min, max        int
	recommendations []recommendation
	events          []scaleEvent
}

// normalize is normalizeDesiredReplicasWithBehaviors: stabilize the recommendation, then limit the rate.
func (b *hpaBehavior) normalize(now time.Time, current, desired int) int {
	upCut, downCut := now.Add(-b.cfg.ScaleUpStabilization), now.Add(-b.cfg.ScaleDownStabilization)
	up, down := desired, desired
	kept := b.recommendations[:0]
	for _, r := range b.recommendations {
		if r.at.After(upCut) {
			up = min(up, r.replicas)
		}
		if r.at.After(downCut) {
			down = max(down, r.replicas)
		}
		if r.at.After(upCut) || r.at.After(downCut) {
			kept = append(kept, r)
		}
	}
	b.recommendations = append(kept, recommendation{now, desired})
	stabilized := current
	if stabilized < up {
		stabilized = up
	}
	if stabilized > down {
		stabilized = down
	}

	switch {
	case stabilized > current:
		limit := max(b.scaleUpLimit(now, current), current)
		return min(stabilized, limit, b.max)
	case stabilized < current:
		limit := min(b.scaleDownLimit(now, current), current)
		return max(stabilized, limit, b.min)
	}
	return stabilized
}

// change sums the replicas added (up) or removed (down) by events within period before now.
func (b *hpaBehavior) change(now time.Time, period time.Duration) (added, removed int) {
	cut := now.Add(-period)
	for _, e := range b.events {
		if e.at.After(cut) {
			if e.delta > 0 {
				added += e.delta
			} else {
				removed -= e.delta
			}
		}
	}
	return added, removed
}

func (b *hpaBehavior) scaleUpLimit(now time.Time, current int) int {
	added, removed := b.change(now, b.cfg.ScaleUpPeriod)
	start := current - added + removed
	byPercent := int(math.Ceil(float64(start) * (1 + float64(b.cfg.ScaleUpPercent)/100)))
	return max(byPercent, start+b.cfg.ScaleUpPods)
}

func (b *hpaBehavior) scaleDownLimit(now time.Time, current int) int {
	added, removed := b.change(now, b.cfg.ScaleDownPeriod)
	start := current - added + removed
	return int(float64(start) * (1 - float64(b.cfg.ScaleDownPercent)/100))
}

// record stores a rescale and forgets events older than every policy's period.
func (b *hpaBehavior) record(now time.Time, from, to int) {
	keep := max(b.cfg.ScaleUpPeriod, b.cfg.ScaleDownPeriod)
	kept := b.events[:0]
	for _, e := range b.events {
		if now.Sub(e.at) < keep {
			kept = append(kept, e)
		}
	}
	b.events = kept
	if to != from {
		b.events = append(b.events, scaleEvent{now, to - from})
	}
}

// hpaPolicy is the native HPA scaling the workload directly.
type hpaPolicy struct {
	target   float64
	behavior hpaBehavior
	replicas int
}

func newHPAPolicy(w Workload, cfg HPAConfig) *hpaPolicy {
	return &hpaPolicy{target: w.CPUTarget, behavior: hpaBehavior{cfg: cfg, min: w.MinReplicas, max: w.MaxReplicas},
		replicas: w.MinReplicas}
}

func (p *hpaPolicy) decide(now time.Time, o observation) (total, online int) {
	current := o.total
	var desired int
	switch {
	case current > p.behavior.max:
		desired = p.behavior.max
	case current < p.behavior.min:
		desired = p.behavior.min
	default:
		metric, ok := hpaReplicas(current, o, p.target, p.behavior.cfg.Tolerance)
		if !ok {
			return current, current
		}
		desired = p.behavior.normalize(now, current, metric)
	}
	if desired != current {
		p.behavior.record(now, current, desired)
	}
	return desired, desired
}
