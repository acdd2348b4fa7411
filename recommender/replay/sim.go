package replay

import (
	"math"
	"time"
)

// cluster is the simulated workload: its pods (by the time each becomes ready) and how many may serve.
type cluster struct {
	startup time.Duration
	// readyAt holds each pod's readiness time in creation order; creation order is readiness order because
	// every pod takes the same start-up delay.
	readyAt []time.Time
	online  int
}

// state is what the workload looks like at now.
type state struct {
	total    int // pods that exist (and cost), starting ones included
	ready    int // pods past their start-up delay, serving or held in a gray state
	serving  int // ready pods that take traffic
	starting int
	online   int // the serving target
}

func (c *cluster) state(now time.Time) state {
	ready := 0
	for ready < len(c.readyAt) && !c.readyAt[ready].After(now) {
		ready++
	}
	return state{total: len(c.readyAt), ready: ready, serving: min(c.online, ready),
		starting: len(c.readyAt) - ready, online: c.online}
}

// apply makes the workload have total pods of which online serve. New pods start now; removed pods are the
// newest first, so pods still starting go before ready ones (as the ReplicaSet controller prefers).
func (c *cluster) apply(now time.Time, total, online int) (changed bool) {
	online = min(online, total)
	changed = total != len(c.readyAt) || online != c.online
	for len(c.readyAt) < total {
		c.readyAt = append(c.readyAt, now.Add(c.startup))
	}
	c.readyAt = c.readyAt[:total]
	c.online = online
	return changed
}

// utilisation of the serving pods' CPU requests under demand; +Inf when demand finds no serving pod.
func utilisation(demand float64, serving int) float64 {
	if serving == 0 {
		if demand > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return demand / float64(serving)
}

// score accumulates one policy's figures tick by tick.
type score struct {
	target        float64
	replicaSec    float64
	overTargetSec float64
	over100Sec    float64
	events        int
	peak          int
	utilSum       float64 // for the mean utilisation of the ticks with a finite value
	utilN         int
}

// overTargetSlack forgives floating-point noise at exactly the target.
const overTargetSlack = 1e-9

func (s *score) add(st state, demand float64, dt time.Duration) {
	sec := dt.Seconds()
	s.replicaSec += float64(st.total) * sec
	u := utilisation(demand, st.serving)
	if u > s.target+overTargetSlack {
		s.overTargetSec += sec
	}
	if u > 1+overTargetSlack {
		s.over100Sec += sec
	}
	if !math.IsInf(u, 0) {
		s.utilSum += u
		s.utilN++
	}
	s.peak = max(s.peak, st.total)
}

// timeline keeps, per report bucket, the largest pod count and utilisation a policy had, for the chart.
type timeline struct {
	Pods        []float64
	Utilisation []float64
}

func newTimeline(n int) timeline {
	t := timeline{Pods: make([]float64, n), Utilisation: make([]float64, n)}
	for i := range t.Pods {
		t.Pods[i], t.Utilisation[i] = math.NaN(), math.NaN()
	}
	return t
}

func (t timeline) add(i int, st state, demand float64) {
	if i < 0 || i >= len(t.Pods) {
		return
	}
	u := utilisation(demand, st.serving)
	if math.IsNaN(t.Pods[i]) || float64(st.total) > t.Pods[i] {
		t.Pods[i] = float64(st.total)
	}
	if math.IsNaN(t.Utilisation[i]) || u > t.Utilisation[i] {
		t.Utilisation[i] = u
	}
}
