// Package standby decides how a pod in the Standby state gives resources back: its containers' CPU
// requests are lowered in place (the pods/resize subresource) to a fraction of what they were, and
// the original requests are remembered in a pod annotation so that the pod gets exactly them back
// when it returns to Online or Cutoff. The package is pure; package replicaprofile does the I/O.
//
// Only CPU requests are lowered, on purpose:
//   - CPU is compressible: a container whose request is lowered keeps running, only with a smaller
//     share of the node under contention. Its limit is left alone, so an idle standby pod can still
//     burst for housekeeping (probes, GC, cache refreshes) when the node has spare CPU.
//   - Memory is not. Lowering a memory request frees no memory the process holds; it only lets the
//     scheduler place other pods on memory the standby pod still uses, which overcommits the node,
//     makes the standby pod the first to be evicted under memory pressure (usage above requests)
//     and to be OOM-killed, and can leave its return to Online Deferred for lack of room. Lowering
//     a memory limit below what the process uses gets it OOM-killed. So memory is kept as it is.
//   - Guaranteed pods keep everything: their CPU request must equal their limit (the QoS class
//     cannot change on resize), so lowering the request means lowering the limit, which throttles
//     the pod hard and can fail its liveness probe.
//   - Pods with pod-level CPU resources (spec.resources) keep everything: resizing those in place
//     is alpha in Kubernetes 1.35, and lowering only container requests frees nothing there.
//   - Containers whose resizePolicy restarts them on a CPU resize are not resized: a restart
//     defeats the point of a warm standby pod. Init and sidecar containers are left alone.
package standby

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotation keys on pods. They live on the pod itself (not in memory) so that a manager restarted
// in the middle of a change still knows what to give back.
const (
	// OriginalCPUAnnotation holds the CPU requests a standby pod had before Kapacity lowered them,
	// as JSON {"<container>": "<quantity>"}. It is written before the resize and removed only once
	// the requests are back.
	OriginalCPUAnnotation = "kapacitystack.io/standby-original-cpu-requests"
	// KeptAnnotation marks a standby pod that keeps its resources, with the reason (the pod cannot
	// be resized, or the cluster refused). Its traffic is still cut off. It is removed when the pod
	// leaves Standby, so the next Standby tries again.
	KeptAnnotation = "kapacitystack.io/standby-resources-kept"
)

// Options say how much CPU a standby pod keeps.
type Options struct {
	// CPUFraction is the share of each container's CPU request that a standby pod keeps, in [0, 1].
	// 1 keeps all of it: standby pods are then not resized (traffic cut-off only).
	CPUFraction float64
	// MinCPU is the least CPU request a resized container keeps, so that a standby pod still gets
	// enough CPU to answer its probes. A container already at or below it is not resized.
	MinCPU resource.Quantity
}

// DefaultOptions keep 10% of each container's CPU request, and at least 10m.
func DefaultOptions() Options {
	return Options{CPUFraction: 0.1, MinCPU: resource.MustParse("10m")}
}

// AddFlags registers the options' flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.Float64Var(&o.CPUFraction, "standby-cpu-fraction", o.CPUFraction,
		"share of each container's CPU request a Standby pod keeps, lowered in place through pods/resize (0-1; 1 disables the resize: Standby then only cuts traffic off)")
	fs.Var(quantityValue{&o.MinCPU}, "standby-min-cpu", "least CPU request a container of a Standby pod keeps")
}

// Validate checks the options.
func (o Options) Validate() error {
	if math.IsNaN(o.CPUFraction) || o.CPUFraction < 0 || o.CPUFraction > 1 {
		return fmt.Errorf("--standby-cpu-fraction must be between 0 and 1, got %v", o.CPUFraction)
	}
	if o.MinCPU.Sign() < 0 {
		return fmt.Errorf("--standby-min-cpu must not be negative, got %s", o.MinCPU.String())
	}
	return nil
}

// Enabled tells whether standby pods are resized at all.
func (o Options) Enabled() bool { return o.CPUFraction < 1 }

// String describes the options for events and logs.
func (o Options) String() string {
	return fmt.Sprintf("%g%% of their CPU requests, at least %s", o.CPUFraction*100, o.MinCPU.String())
}

// Requests are CPU requests by container name.
type Requests map[string]resource.Quantity

// Encode renders requests as the value of OriginalCPUAnnotation.
func (r Requests) Encode() string {
	m := make(map[string]string, len(r))
	for name, q := range r {
		m[name] = q.String()
	}
	raw, _ := json.Marshal(m) // a map of strings always marshals; keys come out sorted
	return string(raw)
}

// Decode parses the value of OriginalCPUAnnotation.
func Decode(s string) (Requests, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decoding annotation %s: %w", OriginalCPUAnnotation, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("decoding annotation %s: no containers", OriginalCPUAnnotation)
	}
	r := make(Requests, len(m))
	for name, v := range m {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("decoding annotation %s: container %q: %w", OriginalCPUAnnotation, name, err)
		}
		r[name] = q
	}
	return r, nil
}

// Originals reads the requests remembered on pod: nil when it has none.
func Originals(pod *corev1.Pod) (Requests, error) {
	s, ok := pod.Annotations[OriginalCPUAnnotation]
	if !ok {
		return nil, nil
	}
	return Decode(s)
}

// Plan decides how pod goes on standby. It returns the CPU requests to remember (the containers
// whose request will be lowered, with their current requests), or, when the pod keeps its
// resources, why.
func Plan(pod *corev1.Pod, o Options) (Requests, string) {
	if pod.Status.QOSClass == corev1.PodQOSGuaranteed {
		return nil, "Guaranteed QoS class: the CPU request must stay equal to the limit, and lowering the limit would throttle the pod"
	}
	if pod.Spec.Resources != nil {
		if _, ok := pod.Spec.Resources.Requests[corev1.ResourceCPU]; ok {
			return nil, "pod-level CPU resources (spec.resources) are not resized in place"
		}
	}
	orig := Requests{}
	for _, c := range pod.Spec.Containers {
		req, ok := c.Resources.Requests[corev1.ResourceCPU]
		if !ok {
			continue
		}
		if lowered := reduce(req, o); lowered.Cmp(req) >= 0 {
			continue
		}
		if restartsOnCPUResize(c) {
			return nil, fmt.Sprintf("container %q restarts on a CPU resize (resizePolicy RestartContainer)", c.Name)
		}
		orig[c.Name] = req.DeepCopy()
	}
	if len(orig) == 0 {
		return nil, fmt.Sprintf("no container has a CPU request above %s to release", o.MinCPU.String())
	}
	return orig, ""
}

// Reduced are the standby requests of the containers in orig.
func Reduced(orig Requests, o Options) Requests {
	out := make(Requests, len(orig))
	for name, q := range orig {
		out[name] = reduce(q, o)
	}
	return out
}

// reduce keeps o.CPUFraction of q, rounded up to the millicore, at least o.MinCPU, at most q.
func reduce(q resource.Quantity, o Options) resource.Quantity {
	milli := int64(math.Ceil(float64(q.MilliValue()) * o.CPUFraction))
	milli = max(milli, o.MinCPU.MilliValue())
	if milli >= q.MilliValue() {
		return q.DeepCopy()
	}
	return *resource.NewMilliQuantity(milli, resource.DecimalSI)
}

// Matches tells whether pod's containers have the CPU requests r (containers not in r are not
// looked at).
func Matches(pod *corev1.Pod, r Requests) bool {
	for _, c := range pod.Spec.Containers {
		want, ok := r[c.Name]
		if !ok {
			continue
		}
		got, ok := c.Resources.Requests[corev1.ResourceCPU]
		if !ok || got.Cmp(want) != 0 {
			return false
		}
	}
	return true
}

// ResizePatch is the strategic merge patch, for the pods/resize subresource, that sets the CPU
// requests r. Containers are merged by name; nothing else changes.
func ResizePatch(r Requests) []byte {
	type resources struct {
		Requests map[corev1.ResourceName]string `json:"requests"`
	}
	type container struct {
		Name      string    `json:"name"`
		Resources resources `json:"resources"`
	}
	names := make([]string, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	var containers []container
	for _, name := range names {
		q := r[name]
		containers = append(containers, container{Name: name, Resources: resources{Requests: map[corev1.ResourceName]string{corev1.ResourceCPU: q.String()}}})
	}
	raw, _ := json.Marshal(map[string]any{"spec": map[string]any{"containers": containers}})
	return raw
}

// Infeasible returns the kubelet's message when it refused the pod's last resize as infeasible on
// its node (the PodResizePending condition with reason Infeasible). A Deferred resize is not a
// refusal: the kubelet applies it when the node has room.
func Infeasible(pod *corev1.Pod) (string, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodResizePending && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonInfeasible {
			return c.Message, true
		}
	}
	return "", false
}

func restartsOnCPUResize(c corev1.Container) bool {
	for _, p := range c.ResizePolicy {
		if p.ResourceName == corev1.ResourceCPU {
			return p.RestartPolicy == corev1.RestartContainer
		}
	}
	return false // NotRequired is the default
}

// quantityValue is a pflag.Value for a resource.Quantity.
type quantityValue struct{ q *resource.Quantity }

func (v quantityValue) String() string {
	if v.q == nil {
		return ""
	}
	return v.q.String()
}

func (v quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.q = q
	return nil
}

func (quantityValue) Type() string { return "quantity" }
