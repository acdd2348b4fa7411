package sim

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Traffic is a synthetic request rate with a daily pattern: a daily envelope (quiet nights, busy
// afternoons) over a cycle (an hour, or Period) that rises from Low to High at the minute of Rise
// every cycle and falls back after Busy, like the periodic client of Kapacity's predictive
// quick-start, plus a small per-minute jitter. It is constant within each minute and a pure function of time, so that
// backfilled history, live traffic and an ingress controller's request counter all agree.
type Traffic struct {
	// Low and High are the requests/s outside and inside the busy part of each hour, at the
	// daily mean.
	Low, High float64
	// Rise is one instant the traffic rises; the busy part of every cycle starts at its minute.
	Rise time.Time
	// Busy is how long the busy part lasts, less than the cycle.
	Busy time.Duration
	// Period is the cycle, a whole number of minutes dividing a day (so that the day before
	// repeats it, as a daily season expects); zero means an hour.
	Period time.Duration
	// DailySwing is the relative amplitude of the daily envelope, which peaks at 14:00 UTC.
	DailySwing float64
	// Jitter is the relative amplitude of the per-minute noise; Seed picks the noise.
	Jitter float64
	Seed   uint64
}

// At is the request rate during the minute that holds t.
func (p Traffic) At(t time.Time) float64 {
	m := t.Truncate(time.Minute)
	level := p.Low
	if p.IsBusy(m) {
		level = p.High
	}
	day := float64(m.UTC().Sub(m.UTC().Truncate(24*time.Hour))) / float64(24*time.Hour)
	envelope := 1 + p.DailySwing*math.Sin(2*math.Pi*(day-14.0/24+0.25))
	return level * envelope * (1 + p.Jitter*noise(p.Seed, m.Unix()/60))
}

// IsBusy tells whether t is in the busy part of its cycle.
func (p Traffic) IsBusy(t time.Time) bool {
	period := p.cycle()
	sinceRise := t.Truncate(time.Minute).Sub(p.Rise.Truncate(time.Minute)) % period
	if sinceRise < 0 {
		sinceRise += period
	}
	return sinceRise < p.Busy
}

// NextRise is the first instant at or after t when the traffic rises.
func (p Traffic) NextRise(t time.Time) time.Time {
	period := p.cycle()
	rise := p.Rise.Truncate(time.Minute)
	since := t.Sub(rise) % period
	if since < 0 {
		since += period
	}
	if since == 0 {
		return t
	}
	return t.Add(period - since)
}

// cycle is Period, or an hour when it is not set.
func (p Traffic) cycle() time.Duration {
	if p.Period <= 0 {
		return time.Hour
	}
	return p.Period
}

// Requests is the number of requests served from origin to t: the value at t of a request counter
// that was zero at origin.
func (p Traffic) Requests(origin, t time.Time) float64 {
	sum := 0.0
	for m := origin.Truncate(time.Minute); m.Before(t); m = m.Add(time.Minute) {
		from, to := m, m.Add(time.Minute)
		if from.Before(origin) {
			from = origin
		}
		if to.After(t) {
			to = t
		}
		sum += p.At(m) * to.Sub(from).Seconds()
	}
	return sum
}

// noise is a deterministic value in [-1, 1) for (seed, i) (splitmix64).
func noise(seed uint64, i int64) float64 {
	z := seed + uint64(i)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)/float64(1<<53)*2 - 1
}

// History is the one-minute history of a workload as Prometheus would have scraped it from
// cAdvisor, kube-state-metrics and an ingress controller: container_cpu_usage_seconds_total and
// kube_pod_status_ready per pod, and nginx_ingress_controller_requests of the workload's Ingress.
// Each ready pod serves an equal share of the traffic and uses CPUPerRequest core-seconds per
// request (with a small jitter), so that per-pod CPU is proportional to traffic / replicas.
type History struct {
	Namespace string
	// PodName names the i-th pod (StatefulSet pods, "nginx-0", …, continue into live series).
	PodName func(i int) string
	// Container is the container label of the CPU series.
	Container string
	// Ingress names the Ingress whose request counter carries Traffic.
	Ingress string
	// PodLabels and IngressLabels are added to the pod and ingress series: the target labels (job,
	// instance) of the live scrape targets, so that the live series continue the backfilled ones.
	PodLabels, IngressLabels map[string]string
	Traffic                  Traffic
	// Replicas is the number of ready pods at t; MaxReplicas bounds it. Pods beyond the count are
	// reported not ready with a flat CPU counter rather than vanishing: backfilled blocks cannot
	// hold staleness markers, so a vanished series would linger in queries for minutes.
	Replicas    func(t time.Time) int
	MaxReplicas int
	// CPUPerRequest is the CPU time of one request in core-seconds; CPUJitter the relative noise.
	CPUPerRequest, CPUJitter float64
	// Start and End (on the minute) bound the samples, one a minute.
	Start, End time.Time
}

// WriteOpenMetrics writes the histories as OpenMetrics text with timestamps, ending in "# EOF",
// the input of `promtool tsdb create-blocks-from openmetrics`.
func WriteOpenMetrics(w io.Writer, histories ...History) error {
	bw := bufio.NewWriter(w)
	for _, h := range histories {
		if h.Start.IsZero() || !h.End.After(h.Start) || h.MaxReplicas < 1 || h.PodName == nil || h.Replicas == nil {
			return fmt.Errorf("history of %s: needs Start < End, MaxReplicas ≥ 1, PodName and Replicas", h.Namespace)
		}
	}
	fmt.Fprintln(bw, "# TYPE container_cpu_usage_seconds_total gauge")
	for _, h := range histories {
		h.writeCPU(bw)
	}
	fmt.Fprintln(bw, "# TYPE kube_pod_status_ready gauge")
	for _, h := range histories {
		h.writeReady(bw)
	}
	fmt.Fprintln(bw, "# TYPE nginx_ingress_controller_requests gauge")
	for _, h := range histories {
		labels := h.labels(h.IngressLabels, "namespace", h.Namespace, "ingress", h.Ingress)
		requests := 0.0 // summed as Traffic.Requests(h.Start, t) does, so live scrapes continue it exactly
		for t := h.Start; !t.After(h.End); t = t.Add(time.Minute) {
			fmt.Fprintf(bw, "nginx_ingress_controller_requests{%s} %g %d\n", labels, requests, t.Unix())
			requests += h.Traffic.At(t) * time.Minute.Seconds()
		}
	}
	fmt.Fprintln(bw, "# EOF")
	return bw.Flush()
}

// ready tells whether pod i is ready during the minute that starts at t.
func (h History) ready(i int, t time.Time) bool {
	return i < min(h.Replicas(t), h.MaxReplicas)
}

func (h History) writeCPU(w io.Writer) {
	for i := range h.MaxReplicas {
		labels := h.labels(h.PodLabels, "namespace", h.Namespace, "pod", h.PodName(i), "container", h.Container)
		used := 0.0
		for t := h.Start; !t.After(h.End); t = t.Add(time.Minute) {
			fmt.Fprintf(w, "container_cpu_usage_seconds_total{%s} %g %d\n", labels, used, t.Unix())
			if h.ready(i, t) {
				n := float64(min(h.Replicas(t), h.MaxReplicas))
				jitter := 1 + h.CPUJitter*noise(h.Traffic.Seed+uint64(i)+1, t.Unix()/60)
				used += h.CPUPerRequest * h.Traffic.At(t) / n * jitter * 60
			}
		}
	}
}

func (h History) writeReady(w io.Writer) {
	for i := range h.MaxReplicas {
		for _, condition := range []string{"true", "false"} {
			labels := h.labels(h.PodLabels, "namespace", h.Namespace, "pod", h.PodName(i), "condition", condition)
			for t := h.Start; !t.After(h.End); t = t.Add(time.Minute) {
				// The sample at t reports the minute before it, as a scrape at t would.
				v := 0
				if h.ready(i, t.Add(-time.Minute)) == (condition == "true") {
					v = 1
				}
				fmt.Fprintf(w, "kube_pod_status_ready{%s} %d %d\n", labels, v, t.Unix())
			}
		}
	}
}

// labels renders name="value" pairs, the given ones followed by extra, sorted by name.
func (h History) labels(extra map[string]string, pairs ...string) string {
	all := map[string]string{}
	for k, v := range extra {
		all[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		all[pairs[i]] = pairs[i+1]
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%q", k, all[k])
	}
	return strings.Join(parts, ",")
}
