// Package replicacalc computes the replica count the Kubernetes HorizontalPodAutoscaler would
// propose for one metric (its ReplicaCalculator semantics: the tolerance band, pods without
// metrics, unready pods and the CPU initialization period), as pure functions of the pods, the
// samples and the time. Kapacity's Reactive portraits use it.
package replicacalc

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Sample is a pod's metric value (in milli-units) and when and over which window it was taken.
type Sample struct {
	Value     int64
	Timestamp time.Time
	Window    time.Duration
}

// Samples are per-pod samples by pod name.
type Samples map[string]Sample

// Params are the HPA's settings.
type Params struct {
	// Tolerance is the band around a ratio of 1 in which nothing changes (default 0.1).
	Tolerance float64
	// CPUInitializationPeriod: CPU samples of pods started less than this ago count only when the
	// pod is ready and the sample was taken after it became ready.
	CPUInitializationPeriod time.Duration
	// InitialReadinessDelay: after it, a pod that is not ready is considered to have been ready
	// before (a pod that was ready and is no longer keeps counting with its samples).
	InitialReadinessDelay time.Duration
	// Now is the current time.
	Now time.Time
}

func (p Params) within(ratio float64) bool { return math.Abs(1.0-ratio) <= p.Tolerance }

// ErrNoMetrics is returned when no usable sample remains.
var ErrNoMetrics = errors.New("did not receive metrics for targeted pods (pods might be unready)")

// ResourceUtilization is the HPA's Resource/ContainerResource metric with an AverageUtilization
// target. requests are the pods' requests of the resource (milli-units) by pod name; every pod
// with a sample must have one. It returns the proposal and the current utilization (percent).
func ResourceUtilization(currentReplicas int32, targetUtilization int32, isCPU bool, pods []*corev1.Pod, samples Samples, requests map[string]int64, p Params) (int32, int32, error) {
	if len(samples) == 0 {
		return 0, 0, fmt.Errorf("unable to get metrics for resource: no metrics returned")
	}
	if len(pods) == 0 {
		return 0, 0, fmt.Errorf("no pods returned by selector while calculating replica count")
	}
	if targetUtilization <= 0 {
		return 0, 0, fmt.Errorf("invalid target utilization %d", targetUtilization)
	}
	m := clone(samples)
	ready, unready, missing, ignored := groupPods(pods, m, isCPU, p)
	drop(m, ignored)
	drop(m, unready)
	if len(m) == 0 {
		return 0, 0, ErrNoMetrics
	}
	ratio, utilization, err := utilizationRatio(m, requests, targetUtilization)
	if err != nil {
		return 0, 0, err
	}
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if p.within(ratio) {
			return currentReplicas, utilization, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), utilization, nil
	}
	if len(missing) > 0 {
		if ratio < 1.0 {
			// On a scale-down, pods without metrics are assumed to use their whole request (or
			// the target, for targets above 100%).
			fallback := int64(max(100, targetUtilization))
			for name := range missing {
				m[name] = Sample{Value: requests[name] * fallback / 100}
			}
		} else if ratio > 1.0 {
			// On a scale-up, they are assumed to use nothing.
			for name := range missing {
				m[name] = Sample{Value: 0}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			m[name] = Sample{Value: 0}
		}
	}
	newRatio, _, err := utilizationRatio(m, requests, targetUtilization)
	if err != nil {
		return 0, utilization, err
	}
	return settle(currentReplicas, ratio, newRatio, len(m), p), utilization, nil
}

// AverageValue is the HPA's per-pod average metric: a Resource with an AverageValue target
// (isCPU tells whether the CPU rules apply) or a Pods metric (isCPU false). It returns the
// proposal and the current average.
func AverageValue(currentReplicas int32, target int64, isCPU bool, pods []*corev1.Pod, samples Samples, p Params) (int32, int64, error) {
	if len(samples) == 0 {
		return 0, 0, fmt.Errorf("unable to get metrics: no metrics returned")
	}
	if len(pods) == 0 {
		return 0, 0, fmt.Errorf("no pods returned by selector while calculating replica count")
	}
	if target <= 0 {
		return 0, 0, fmt.Errorf("invalid target average value %d", target)
	}
	m := clone(samples)
	ready, unready, missing, ignored := groupPods(pods, m, isCPU, p)
	drop(m, ignored)
	drop(m, unready)
	if len(m) == 0 {
		return 0, 0, ErrNoMetrics
	}
	ratio, usage := averageRatio(m, target)
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if p.within(ratio) {
			return currentReplicas, usage, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), usage, nil
	}
	if len(missing) > 0 {
		v := int64(0)
		if ratio < 1.0 {
			v = target
		}
		for name := range missing {
			m[name] = Sample{Value: v}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			m[name] = Sample{Value: 0}
		}
	}
	newRatio, _ := averageRatio(m, target)
	return settle(currentReplicas, ratio, newRatio, len(m), p), usage, nil
}

// ObjectValue is an Object metric with a Value target, or an External metric with a Value target
// (usage is then the sum of the series): the ratio scales the ready pods.
func ObjectValue(currentReplicas int32, usage, target int64, pods []*corev1.Pod, p Params) (int32, error) {
	if target <= 0 {
		return 0, fmt.Errorf("invalid target value %d", target)
	}
	ratio := float64(usage) / float64(target)
	if currentReplicas == 0 {
		return int32(math.Ceil(ratio)), nil
	}
	if p.within(ratio) {
		return currentReplicas, nil
	}
	ready := 0
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodRunning && podReady(pod) {
			ready++
		}
	}
	if ready == 0 {
		return 0, fmt.Errorf("no ready pods to scale from")
	}
	return int32(math.Ceil(ratio * float64(ready))), nil
}

// PerPodValue is an Object or External metric with an AverageValue target: usage divided by the
// target per pod, with statusReplicas as the current count.
func PerPodValue(statusReplicas int32, usage, targetAverage int64, p Params) (int32, error) {
	if targetAverage <= 0 {
		return 0, fmt.Errorf("invalid target average value %d", targetAverage)
	}
	if statusReplicas > 0 && p.within(float64(usage)/(float64(targetAverage)*float64(statusReplicas))) {
		return statusReplicas, nil
	}
	return int32(math.Ceil(float64(usage) / float64(targetAverage))), nil
}

// settle applies the HPA's last checks: no change within the tolerance or when the assumptions
// about missing and unready pods reverse the direction.
func settle(current int32, ratio, newRatio float64, n int, p Params) int32 {
	if p.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current
	}
	proposal := int32(math.Ceil(newRatio * float64(n)))
	if (newRatio < 1.0 && proposal > current) || (newRatio > 1.0 && proposal < current) {
		return current
	}
	return proposal
}

type set map[string]struct{}

// groupPods sorts pods as the HPA does: ignored (being deleted or failed), unready (pending, or
// for CPU not yet trustworthy), missing (no sample) and ready (counted).
func groupPods(pods []*corev1.Pod, samples Samples, isCPU bool, p Params) (ready int, unready, missing, ignored set) {
	unready, missing, ignored = set{}, set{}, set{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			ignored[pod.Name] = struct{}{}
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			unready[pod.Name] = struct{}{}
			continue
		}
		sample, ok := samples[pod.Name]
		if !ok {
			missing[pod.Name] = struct{}{}
			continue
		}
		if isCPU {
			cond := readyCondition(pod)
			var skip bool
			switch {
			case cond == nil || pod.Status.StartTime == nil:
				skip = true
			case pod.Status.StartTime.Add(p.CPUInitializationPeriod).After(p.Now):
				// Within the initialization period: only ready pods whose sample was taken
				// entirely after they became ready.
				skip = cond.Status == corev1.ConditionFalse || sample.Timestamp.Before(cond.LastTransitionTime.Add(sample.Window))
			default:
				// After it: unready pods that never became ready since they started.
				skip = cond.Status == corev1.ConditionFalse && pod.Status.StartTime.Add(p.InitialReadinessDelay).After(cond.LastTransitionTime.Time)
			}
			if skip {
				unready[pod.Name] = struct{}{}
				continue
			}
		}
		ready++
	}
	// Samples of pods the selector no longer selects do not count.
	known := make(set, len(pods))
	for _, pod := range pods {
		known[pod.Name] = struct{}{}
	}
	for name := range samples {
		if _, ok := known[name]; !ok {
			delete(samples, name)
		}
	}
	return ready, unready, missing, ignored
}

func utilizationRatio(m Samples, requests map[string]int64, target int32) (float64, int32, error) {
	var usage, request int64
	for name, s := range m {
		r, ok := requests[name]
		if !ok {
			return 0, 0, fmt.Errorf("missing request for pod %s", name)
		}
		usage += s.Value
		request += r
	}
	if request == 0 {
		return 0, 0, fmt.Errorf("no metrics returned matched known pods")
	}
	utilization := int32(usage * 100 / request)
	return float64(utilization) / float64(target), utilization, nil
}

func averageRatio(m Samples, target int64) (float64, int64) {
	var total int64
	for _, s := range m {
		total += s.Value
	}
	avg := total / int64(len(m))
	return float64(avg) / float64(target), avg
}

func clone(s Samples) Samples {
	out := make(Samples, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

func drop(m Samples, names set) {
	for n := range names {
		delete(m, n)
	}
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func podReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// Requests sums the pods' container requests of a resource (milli-units), for
// ResourceUtilization. container limits it to one container (ContainerResource). A pod missing a
// request in a counted container is an error, as for the HPA.
func Requests(pods []*corev1.Pod, resource corev1.ResourceName, container string) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		var sum int64
		for _, c := range pod.Spec.Containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Resources.Requests[resource]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", resource, c.Name, pod.Name)
			}
			sum += q.MilliValue()
		}
		out[pod.Name] = sum
	}
	return out, nil
}
