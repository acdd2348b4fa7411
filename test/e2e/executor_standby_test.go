package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/replicaprofile"
	"github.com/kapacitystack/kapacity/executor/standby"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// TestExecutorStandby runs a gray scale-down 4 → 2 with grayState Standby, then back to 4, on a
// StatefulSet whose containers request 100m CPU, with the manager's default standby share (10%,
// at least 10m):
//   - "resize supported": a kubelet stand-in reports the containers' resources in their status,
//     as a kubelet with in-place resize does (kwok v0.7 does not, see emulateKubeletResize). The
//     two standby pods (nginx-2, nginx-3) are out of the Service's endpoints and the API server
//     stores their CPU requests lowered to 10m through pods/resize, the originals in an
//     annotation; back to Online they get exactly 100m again.
//   - "node without resize support": plain kwok pods, which the API server refuses to resize
//     ("Pod running on node without support for resize"). Standby falls back to cutting traffic
//     off: the pods are labelled Standby and out of the endpoints with their requests unchanged,
//     and an event says why.
//
// What is asserted is what the API server stores (spec, annotations, and the status the stand-in
// writes): no kubelet runs here, so no cgroup is ever resized.
func TestExecutorStandby(t *testing.T) {
	for _, tt := range []struct {
		name      string
		supported bool
	}{
		{"resize supported", true},
		{"node without resize support", false},
	} {
		t.Run(tt.name, func(t *testing.T) { runStandby(t, tt.supported) })
	}
}

func runStandby(t *testing.T, resizeSupported bool) {
	ctx := context.Background()
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	emulateKubeletReadiness(ctx, t, ns)
	if resizeSupported {
		emulateKubeletResize(ctx, t, ns)
	}
	createNginx(ctx, t, ns, 4)

	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "standby"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			MinReplicas:    1,
			MaxReplicas:    10,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{{
				Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 1,
				Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 4},
			}},
			Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{
				ScaleDown: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
					// One batch; the long observation keeps the pods in Standby until the test
					// scales back up.
					GrayState: v1alpha1.PodStateStandby, ChangeIntervalSeconds: 5, ChangePercent: 100, ObservationSeconds: 600,
				}},
			},
		},
	}
	if err := crClient.Create(ctx, ihpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}
	setStatic := func(replicas int32) {
		t.Helper()
		patch := fmt.Appendf(nil, `{"spec":{"portraitProviders":[{"type":"Static","priority":1,"static":{"replicas":%d}}]}}`, replicas)
		if err := crClient.Patch(ctx, ihpa, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			t.Fatalf("setting the static portrait to %d: %v", replicas, err)
		}
	}
	wait := func(what string, timeout time.Duration, done func(standbyObservation) (bool, error)) {
		t.Helper()
		poll.Until(ctx, t, timeout, what, func(ctx context.Context) (string, bool, error) {
			o, err := observeStandby(ctx, ns)
			if err != nil {
				return observationError(ctx, err), false, nil
			}
			ok, err := done(o)
			return o.String(), ok, err
		})
	}
	const full, lowered = "100m", "10m"
	allOnline := func(o standbyObservation) (bool, error) {
		if len(o.pods) != 4 || o.readyEndpoints != 4 {
			return false, nil
		}
		for _, p := range o.pods {
			if p.state != "Online" || p.traffic != "True" || p.cpu != full || p.annotations != "" || (resizeSupported && p.statusCPU != full) {
				return false, nil
			}
		}
		return true, nil
	}

	wait("4 pods online with 100m each", 2*time.Minute, allOnline)

	setStatic(2)
	wait("nginx-2 and nginx-3 on standby, out of the endpoints", 2*time.Minute, func(o standbyObservation) (bool, error) {
		if len(o.pods) < 4 {
			return false, fmt.Errorf("a pod was removed during the observation: the plan keeps 4")
		}
		if o.readyEndpoints != 2 {
			return false, nil
		}
		for _, p := range o.pods {
			standbyPod := p.name == "nginx-2" || p.name == "nginx-3"
			switch {
			case !standbyPod:
				if p.state != "Online" || p.cpu != full {
					return false, fmt.Errorf("%s should stay online with its requests: %s", p.name, p)
				}
			case p.state != "Standby" || p.traffic != "False":
				return false, nil
			case resizeSupported:
				if p.cpu != lowered || p.annotations != `orig={"nginx":"100m"}` || p.statusCPU != lowered {
					return false, nil
				}
			default:
				if p.cpu != full || !strings.Contains(p.annotations, "kept=the API server refused the resize") ||
					!strings.Contains(p.annotations, "without support for resize") {
					return false, nil
				}
			}
		}
		return o.rpStatus == "online=2 cutoff=0 standby=2", nil
	})
	wantEvent := "Normal " + replicaprofile.EventStandbyReleased + ": lowered the CPU requests of standby pods [nginx-2 nginx-3] to 10% of their CPU requests, at least 10m"
	if !resizeSupported {
		wantEvent = "Warning " + replicaprofile.EventStandbyKept + ": standby pods [nginx-2 nginx-3] keep their resources, their traffic is only cut off: " +
			"the API server refused the resize: spec: Forbidden: Pod running on node without support for resize"
	}
	waitEvent(ctx, t, ns, ihpa.Name, wantEvent)

	setStatic(4)
	wait("all 4 pods back online with exactly 100m, no standby annotations", 2*time.Minute, allOnline)
	if resizeSupported {
		waitEvent(ctx, t, ns, ihpa.Name, "Normal "+replicaprofile.EventResourcesRestored+": restored the CPU requests of pods [nginx-2 nginx-3]")
	}
}

// waitEvent waits for an event of the named object whose "<type> <reason>: <message>" starts with
// prefix.
func waitEvent(ctx context.Context, t *testing.T, ns, name, prefix string) {
	t.Helper()
	poll.Until(ctx, t, 30*time.Second, "event "+prefix, func(ctx context.Context) (string, bool, error) {
		events := ihpaEvents(ctx, ns, name)
		return strings.Join(events, "\n"), slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) }), nil
	})
}

// standbyPod is what the API server stores of one pod.
type standbyPod struct {
	name, state, traffic string
	cpu                  string // spec.containers[0].resources.requests.cpu
	statusCPU            string // status.containerStatuses[0].resources.requests.cpu
	annotations          string // the standby annotations
}

func (p standbyPod) String() string {
	return fmt.Sprintf("%s %s traffic=%s cpu=%s status=%s %s", p.name, p.state, p.traffic, p.cpu, p.statusCPU, p.annotations)
}

type standbyObservation struct {
	pods           []standbyPod // not being deleted, by name
	readyEndpoints int
	rpStatus       string
}

func (o standbyObservation) String() string {
	parts := make([]string, len(o.pods))
	for i, p := range o.pods {
		parts[i] = p.String()
	}
	return fmt.Sprintf("pods=[%s] readyEndpoints=%d rp.status={%s}", strings.Join(parts, "; "), o.readyEndpoints, o.rpStatus)
}

func observeStandby(ctx context.Context, ns string) (standbyObservation, error) {
	var o standbyObservation
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		return o, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		sp := standbyPod{name: p.Name, state: "Online", traffic: string(stack.PodCondition(&p, v1alpha1.PodOnlineConditionType))}
		if s, ok := p.Labels[v1alpha1.PodStateLabelKey]; ok {
			sp.state = s
		}
		if len(p.Spec.Containers) > 0 {
			sp.cpu = p.Spec.Containers[0].Resources.Requests.Cpu().String()
		}
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Resources != nil {
			sp.statusCPU = p.Status.ContainerStatuses[0].Resources.Requests.Cpu().String()
		}
		var ann []string
		if v, ok := p.Annotations[standby.OriginalCPUAnnotation]; ok {
			ann = append(ann, "orig="+v)
		}
		if v, ok := p.Annotations[standby.KeptAnnotation]; ok {
			ann = append(ann, "kept="+v)
		}
		sp.annotations = strings.Join(ann, " ")
		o.pods = append(o.pods, sp)
	}
	sort.Slice(o.pods, func(i, j int) bool { return o.pods[i].name < o.pods[j].name })
	o.readyEndpoints = readyEndpoints(ctx, ns)
	rp := &v1alpha1.ReplicaProfile{}
	if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "standby"}, rp); err == nil {
		o.rpStatus = fmt.Sprintf("online=%d cutoff=%d standby=%d", rp.Status.OnlineReplicas, rp.Status.CutoffReplicas, rp.Status.StandbyReplicas)
	}
	return o, nil
}

// readyEndpoints counts the ready endpoints of Service nginx (-1 when they cannot be read).
func readyEndpoints(ctx context.Context, ns string) int {
	list, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=nginx"})
	if err != nil {
		return -1
	}
	n := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				n++
			}
		}
	}
	return n
}

// emulateKubeletResize plays the part of a kubelet that supports in-place resize, which kwok v0.7
// does not: it reports each running container's resources in status.containerStatuses[].resources
// and applies a resize at once (a real kubelet changes the cgroups first). The API server only
// accepts a resize for pods whose running containers report their resources (it takes their
// absence for a node without resize support), so without this every resize is refused.
func emulateKubeletResize(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	emulateKubelet(ctx, t, ns, syncResources)
}

func syncResources(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) {
	if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
		return
	}
	changed := false
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		idx := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == cs.Name })
		if idx < 0 {
			continue
		}
		want := pod.Spec.Containers[idx].Resources.DeepCopy()
		if cs.Resources == nil || !apiequality.Semantic.DeepEqual(*cs.Resources, *want) {
			cs.Resources = want
			changed = true
		}
	}
	if !changed {
		return
	}
	// A conflict (another writer of the status) is retried by the next round.
	_, _ = client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
}
