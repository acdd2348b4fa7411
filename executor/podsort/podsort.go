// Package podsort orders a workload's pods for scale-in: the first pod is the one to take out of
// service first. The order for each workload kind is the one its own controller uses when it removes
// pods, so the pods Kapacity cuts off are the pods the workload would delete anyway.
package podsort

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PodDeletionCostAnnotation is the annotation the ReplicaSet controller reads to prefer deleting pods
// of lower cost.
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// Order sorts pods in place, first to scale in first.
type Order func(pods []*corev1.Pod)

// ForWorkload returns the order of a workload kind. workloadPods are all pods of the workload (they
// decide how crowded each node is, as for the ReplicaSet controller); the returned Order can then
// sort any subset of them.
func ForWorkload(gk schema.GroupKind, workloadPods []*corev1.Pod) (Order, error) {
	if gk.Group == "apps" {
		switch gk.Kind {
		case "ReplicaSet", "Deployment":
			// A Deployment deletes pods through its ReplicaSets.
			ranks := podsPerNode(workloadPods)
			return func(pods []*corev1.Pod) { sortReplicaSet(pods, ranks) }, nil
		case "StatefulSet":
			return SortStatefulSet, nil
		}
	}
	return nil, fmt.Errorf("no default pod order for workload kind %s: supported are apps ReplicaSet, Deployment and StatefulSet", gk)
}

// RemovesNotReadyFirst tells whether the workload kind's controller removes not-ready pods before
// ready ones whatever else the order says (ReplicaSets, so Deployments too). There, taking a
// different pod out of service than the order's first still removes the pod taken out of service;
// a StatefulSet removes its highest ordinals whatever their readiness.
func RemovesNotReadyFirst(gk schema.GroupKind) bool {
	return gk.Group == "apps" && (gk.Kind == "ReplicaSet" || gk.Kind == "Deployment")
}

// SortReplicaSet sorts pods the way the ReplicaSet controller picks pods to delete (its
// ActivePodsWithRanks order, ranked by the number of workloadPods on the same node):
//
//  1. unassigned before assigned;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost before higher;
//  5. more pods of the workload on the same node before fewer;
//  6. ready for less time before ready for longer;
//  7. more container restarts before fewer;
//  8. newer before older;
//  9. by namespace and name, so that the order is total and repeatable.
//
// Kapacity's version allocated its ranks slice with length 0 and indexed into it, which panicked
// whenever there was anything to sort.
//
// The ReplicaSet controller's LogarithmicScaleDown feature buckets times 6 and 8 on a log scale and
// breaks ties by UID, which is random on purpose. Exact times and names are used here instead, so
// that a plan is repeatable and testable; the difference only matters between pods of nearly equal
// age, and pods Kapacity cuts off become not ready, which the ReplicaSet controller removes first
// anyway (rule 3).
func SortReplicaSet(pods, workloadPods []*corev1.Pod) {
	sortReplicaSet(pods, podsPerNode(workloadPods))
}

func sortReplicaSet(pods []*corev1.Pod, ranks map[string]int) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		return compareReplicaSet(a, b, ranks)
	})
}

func compareReplicaSet(a, b *corev1.Pod, ranks map[string]int) int {
	// 1. Unassigned first.
	if aa, ba := a.Spec.NodeName != "", b.Spec.NodeName != ""; aa != ba {
		return boolFirst(!aa)
	}
	// 2. Pending < Unknown < Running.
	if c := cmp.Compare(phaseOrdinal(a.Status.Phase), phaseOrdinal(b.Status.Phase)); c != 0 {
		return c
	}
	// 3. Not ready first.
	aReady, aSince := readySince(a)
	bReady, bSince := readySince(b)
	if aReady != bReady {
		return boolFirst(!aReady)
	}
	// 4. Lower deletion cost first.
	if c := cmp.Compare(deletionCost(a), deletionCost(b)); c != 0 {
		return c
	}
	// 5. More crowded node first (the rank of an unassigned pod is 0).
	if c := cmp.Compare(rank(b, ranks), rank(a, ranks)); c != 0 {
		return c
	}
	// 6. Ready for less time first: a later (or unknown) ready time first.
	if aReady && !aSince.Equal(bSince) {
		return laterOrZeroFirst(aSince, bSince)
	}
	// 7. More restarts first: regular containers, then restartable init (sidecar) containers.
	aRegular, aSidecar := maxRestarts(a)
	bRegular, bSidecar := maxRestarts(b)
	if c := cmp.Compare(bRegular, aRegular); c != 0 {
		return c
	}
	if c := cmp.Compare(bSidecar, aSidecar); c != 0 {
		return c
	}
	// 8. Newer first.
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return laterOrZeroFirst(a.CreationTimestamp.Time, b.CreationTimestamp.Time)
	}
	return byName(a, b)
}

// SortStatefulSet sorts pods by ordinal, highest first: the StatefulSet controller removes the
// highest ordinals on scale-in. Pods whose name has no ordinal come last.
func SortStatefulSet(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if c := cmp.Compare(ordinal(b.Name), ordinal(a.Name)); c != 0 {
			return c
		}
		return byName(a, b)
	})
}

// ordinal is the number after the last "-" of a StatefulSet pod's name, or -1. Kapacity read a bad
// suffix as 0, which tied such pods with the pod of ordinal 0.
func ordinal(name string) int {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// podsPerNode counts the active pods (not terminated, not being deleted) on each node.
func podsPerNode(pods []*corev1.Pod) map[string]int {
	ranks := make(map[string]int, len(pods))
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ranks[p.Spec.NodeName]++
	}
	return ranks
}

func rank(p *corev1.Pod, ranks map[string]int) int {
	if p.Spec.NodeName == "" {
		return 0
	}
	return ranks[p.Spec.NodeName]
}

func phaseOrdinal(phase corev1.PodPhase) int {
	switch phase {
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	default:
		return 0
	}
}

// readySince tells whether the pod is ready and since when (the Ready condition's transition time).
func readySince(p *corev1.Pod) (bool, time.Time) {
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok {
		return 0
	}
	// An invalid cost counts as 0, as for the ReplicaSet controller (the API server rejects it on
	// write anyway).
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

func maxRestarts(p *corev1.Pod) (regular, sidecar int32) {
	for _, s := range p.Status.ContainerStatuses {
		regular = max(regular, s.RestartCount)
	}
	sidecars := make(map[string]bool, len(p.Spec.InitContainers))
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		if sidecars[s.Name] {
			sidecar = max(sidecar, s.RestartCount)
		}
	}
	return regular, sidecar
}

// laterOrZeroFirst orders an unknown (zero) time first, then the later time first.
func laterOrZeroFirst(a, b time.Time) int {
	if a.IsZero() != b.IsZero() {
		return boolFirst(a.IsZero())
	}
	return b.Compare(a)
}

func byName(a, b *corev1.Pod) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// boolFirst returns -1 when the condition puts a first, 1 otherwise.
func boolFirst(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}
