package replicaprofile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/standby"
)

// bed is a ReplicaProfile, its StatefulSet's pods and a reconciler over a fake API server whose
// pods/resize subresource answers resizeErr (nil: accepted) and counts the calls.
type bed struct {
	t        *testing.T
	c        client.Client
	r        *Reconciler
	rec      *events.FakeRecorder
	key      client.ObjectKey
	resizes  int
	lastResp ctrl.Result
}

func newBed(t *testing.T, rp *v1alpha1.ReplicaProfile, resizeErr func(pod string) error, pods ...*corev1.Pod) *bed {
	b := &bed{t: t, key: client.ObjectKeyFromObject(rp), rec: events.NewFakeRecorder(100)}
	objs := []client.Object{rp}
	for _, p := range pods {
		objs = append(objs, p)
	}
	b.c = fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.ReplicaProfile{}, &corev1.Pod{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if sub == "resize" {
					b.resizes++
					if resizeErr != nil {
						if err := resizeErr(obj.GetName()); err != nil {
							return err
						}
					}
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	opts := standby.DefaultOptions()
	b.r = &Reconciler{Client: b.c, Reader: b.c, Scaler: &fakeScaler{replicas: int32(len(pods))}, Recorder: b.rec, Standby: &opts}
	return b
}

func (b *bed) reconcile() {
	b.t.Helper()
	res, err := b.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: b.key})
	if err != nil {
		b.t.Fatalf("reconcile: %v", err)
	}
	b.lastResp = res
}

// setSpec changes the profile's counts, as the IHPA controller would.
func (b *bed) setSpec(online, cutoff, standby int32) {
	b.t.Helper()
	rp := &v1alpha1.ReplicaProfile{}
	if err := b.c.Get(context.Background(), b.key, rp); err != nil {
		b.t.Fatal(err)
	}
	rp.Spec.OnlineReplicas, rp.Spec.CutoffReplicas, rp.Spec.StandbyReplicas = online, cutoff, standby
	if err := b.c.Update(context.Background(), rp); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bed) pod(name string) *corev1.Pod {
	b.t.Helper()
	p := &corev1.Pod{}
	if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, p); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// describe tells a pod's state, traffic, CPU request and standby annotations in one string.
func (b *bed) describe(name string) string {
	p := b.pod(name)
	q := p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
	traffic := "?"
	if c := onlineCondition(p); c != nil {
		traffic = string(c.Status)
	}
	s := fmt.Sprintf("%s traffic=%s cpu=%s", stateLabel(p), traffic, q.String())
	if v, ok := p.Annotations[standby.OriginalCPUAnnotation]; ok {
		s += " orig=" + v
	}
	if _, ok := p.Annotations[standby.KeptAnnotation]; ok {
		s += " kept"
	}
	return s
}

func stateLabel(p *corev1.Pod) string {
	if s, ok := p.Labels[v1alpha1.PodStateLabelKey]; ok {
		return s
	}
	return "Online"
}

// events drains the recorded events.
func (b *bed) events() []string {
	var out []string
	for {
		select {
		case e := <-b.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	return slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

func TestStandbyReleasesAndRestoresCPU(t *testing.T) {
	on := v1alpha1.PodStateOnline
	b := newBed(t, profile(2, 0, 2), nil, nginxPod(0, on), nginxPod(1, on), nginxPod(2, on), nginxPod(3, on))
	b.reconcile()
	want := map[string]string{
		"nginx-0": "Online traffic=True cpu=500m",
		"nginx-1": "Online traffic=True cpu=500m",
		"nginx-2": `Standby traffic=False cpu=50m orig={"nginx":"500m"}`,
		"nginx-3": `Standby traffic=False cpu=50m orig={"nginx":"500m"}`,
	}
	for name, w := range want {
		if got := b.describe(name); got != w {
			t.Errorf("%s: %s, want %s", name, got, w)
		}
	}
	if p := b.pod("nginx-3"); p.Spec.Containers[0].Resources.Limits.Cpu().String() != "1" || p.Spec.Containers[0].Resources.Requests.Memory().String() != "64Mi" {
		t.Errorf("the CPU limit and memory must not change: %+v", p.Spec.Containers[0].Resources)
	}
	evs := b.events()
	if !hasEvent(evs, "Normal "+EventStandbyReleased+" lowered the CPU requests of standby pods [nginx-2 nginx-3] to 10% of their CPU requests, at least 10m") {
		t.Errorf("events %q", evs)
	}

	// Reconciling again changes nothing: the pass is idempotent.
	before := b.resizes
	b.reconcile()
	if b.resizes != before {
		t.Errorf("a second reconcile resized again")
	}

	// Back to Online: the requests come back exactly, and the annotations go.
	b.setSpec(4, 0, 0)
	b.reconcile()
	for i := range 4 {
		name := fmt.Sprintf("nginx-%d", i)
		if got := b.describe(name); got != "Online traffic=True cpu=500m" {
			t.Errorf("%s after Online: %s", name, got)
		}
	}
	if evs := b.events(); !hasEvent(evs, "Normal "+EventResourcesRestored+" restored the CPU requests of pods [nginx-2 nginx-3]") {
		t.Errorf("events %q", evs)
	}
}

func TestStandbyToCutoffRestoresCPU(t *testing.T) {
	on, sb := v1alpha1.PodStateOnline, v1alpha1.PodStateStandby
	b := newBed(t, profile(2, 0, 1), nil, nginxPod(0, on), nginxPod(1, on), nginxPod(2, on))
	b.reconcile()
	if got := b.describe("nginx-2"); !strings.HasPrefix(got, string(sb)+" traffic=False cpu=50m") {
		t.Fatalf("nginx-2: %s", got)
	}
	b.setSpec(2, 1, 0)
	b.reconcile()
	if got := b.describe("nginx-2"); got != "Cutoff traffic=False cpu=500m" {
		t.Errorf("a pod going from Standby to Cutoff gets its CPU back: %s", got)
	}
}

func TestStandbyFallsBackWhenResizeRefused(t *testing.T) {
	podsResize := schema.GroupResource{Resource: "pods/resize"}
	tests := []struct {
		name       string
		err        func(pod string) error
		wantKept   bool
		wantReason string // in the event, shared by both pods
		wantDetail string // in each pod's annotation
	}{
		{"pods/resize unknown (404)", func(string) error { return apierrors.NewNotFound(podsResize, "") }, true,
			"the API server refused the resize: pods/resize \"\" not found", "not found"},
		{"RBAC (403)", func(pod string) error {
			return apierrors.NewForbidden(podsResize, pod, fmt.Errorf("cannot patch resource pods/resize"))
		}, true, "the API server refused the resize: pods/resize the pod is forbidden: cannot patch resource pods/resize", "forbidden"},
		{"node without resize support (422)", func(pod string) error {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod,
				field.ErrorList{field.Forbidden(field.NewPath("spec"), "Pod running on node without support for resize")})
		}, true, "the API server refused the resize: spec: Forbidden: Pod running on node without support for resize", "without support for resize"},
		{"method not allowed (405)", func(string) error { return apierrors.NewMethodNotSupported(podsResize, "patch") }, true,
			"the API server refused the resize: patch is not supported on resources of kind \"pods/resize\"", "not supported"},
		{"transient (500): retried, not given up", func(string) error { return apierrors.NewInternalError(fmt.Errorf("etcd leader changed")) }, false, "", ""},
		{"timeout: retried", func(string) error { return apierrors.NewTimeoutError("slow", 1) }, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on := v1alpha1.PodStateOnline
			b := newBed(t, profile(1, 0, 2), tt.err, nginxPod(0, on), nginxPod(1, on), nginxPod(2, on))
			b.reconcile()
			evs := b.events()
			for _, name := range []string{"nginx-1", "nginx-2"} {
				got := b.describe(name)
				// Whatever the cluster says, the state change happens: the pod is Standby, out of traffic.
				if !strings.HasPrefix(got, "Standby traffic=False cpu=500m") {
					t.Fatalf("%s: %s", name, got)
				}
				if !tt.wantKept {
					if strings.HasSuffix(got, " kept") || !strings.Contains(got, `orig={"nginx":"500m"}`) {
						t.Errorf("%s: %s, want the originals kept for a retry", name, got)
					}
					continue
				}
				if !strings.HasSuffix(got, " kept") || strings.Contains(got, "orig=") {
					t.Errorf("%s: %s, want kept without originals", name, got)
				}
				if detail := b.pod(name).Annotations[standby.KeptAnnotation]; !strings.Contains(strings.ToLower(detail), tt.wantDetail) {
					t.Errorf("%s: kept reason %q, want it to mention %q", name, detail, tt.wantDetail)
				}
			}
			if tt.wantKept {
				want := "Warning " + EventStandbyKept + " standby pods [nginx-1 nginx-2] keep their resources, their traffic is only cut off: " + tt.wantReason
				if !slices.Contains(evs, want) {
					t.Errorf("events %q\nwant %q", evs, want)
				}
				if b.lastResp.RequeueAfter != 0 {
					t.Errorf("a refusal is final, yet requeued after %s", b.lastResp.RequeueAfter)
				}
				// Not asked again while the pods stay Standby.
				before := b.resizes
				b.reconcile()
				if b.resizes != before {
					t.Error("a refused resize was tried again")
				}
			} else if b.lastResp.RequeueAfter != retryInterval {
				t.Errorf("requeue after %s, want %s", b.lastResp.RequeueAfter, retryInterval)
			}
			// Online again: nothing to restore, the marks go.
			b.setSpec(3, 0, 0)
			b.reconcile()
			for _, name := range []string{"nginx-1", "nginx-2"} {
				if got := b.describe(name); got != "Online traffic=True cpu=500m" {
					t.Errorf("%s back online: %s", name, got)
				}
			}
		})
	}
}

// Standby pods that cannot be resized keep their resources, with the reason, and no API call.
func TestStandbyKeepsResourcesOfPodsItCannotResize(t *testing.T) {
	on := v1alpha1.PodStateOnline
	guaranteed := nginxPod(2, on)
	guaranteed.Status.QOSClass = corev1.PodQOSGuaranteed
	b := newBed(t, profile(2, 0, 1), nil, nginxPod(0, on), nginxPod(1, on), guaranteed)
	b.reconcile()
	if got := b.describe("nginx-2"); got != "Standby traffic=False cpu=500m kept" {
		t.Errorf("nginx-2: %s", got)
	}
	if b.resizes != 0 {
		t.Errorf("%d resize calls for a pod that cannot be resized", b.resizes)
	}
	if evs := b.events(); !hasEvent(evs, "Warning "+EventStandbyKept+" standby pods [nginx-2] keep their resources, their traffic is only cut off: Guaranteed QoS class") {
		t.Errorf("events %q", evs)
	}
}

// The kubelet refuses the lowered requests as infeasible: the pod gets its requests back and
// keeps them.
func TestStandbyInfeasibleResizeIsUndone(t *testing.T) {
	on := v1alpha1.PodStateOnline
	b := newBed(t, profile(2, 0, 1), nil, nginxPod(0, on), nginxPod(1, on), nginxPod(2, on))
	b.reconcile()
	p := b.pod("nginx-2")
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: corev1.PodReasonInfeasible, Message: "static CPU manager policy",
	})
	if err := b.c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b.events()
	b.reconcile()
	if got := b.describe("nginx-2"); got != "Standby traffic=False cpu=500m kept" {
		t.Errorf("nginx-2: %s", got)
	}
	if evs := b.events(); !hasEvent(evs, "Warning "+EventStandbyKept+" standby pods [nginx-2] keep their resources, their traffic is only cut off: the kubelet refused the resize as infeasible: static CPU manager policy") {
		t.Errorf("events %q", evs)
	}
}

// A manager stopped between two writes leaves pods half-changed; the next reconcile finishes or
// undoes the change from what the pods carry.
func TestStandbyCompletesInterruptedChanges(t *testing.T) {
	on, sb := v1alpha1.PodStateOnline, v1alpha1.PodStateStandby
	// Stopped after the label, before the annotation.
	labelled := nginxPod(2, sb)
	// Stopped after the annotation, before the resize.
	annotated := nginxPod(3, sb)
	annotated.Annotations = map[string]string{standby.OriginalCPUAnnotation: `{"nginx":"500m"}`}
	// Stopped while returning to Online: traffic back on, label and requests not yet.
	returning := nginxPod(4, sb)
	returning.Annotations = map[string]string{standby.OriginalCPUAnnotation: `{"nginx":"500m"}`}
	returning.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("50m")
	returning.Status.Conditions[0].Status = corev1.ConditionTrue
	// Stopped after the traffic was cut, before the label: Online with traffic off.
	halfCut := nginxPod(1, on)
	halfCut.Status.Conditions[0].Status = corev1.ConditionFalse
	// Online with the originals still on it (the label went, the resize back did not).
	unrestored := nginxPod(0, on)
	unrestored.Annotations = map[string]string{standby.OriginalCPUAnnotation: `{"nginx":"500m"}`}
	unrestored.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("50m")

	b := newBed(t, profile(2, 0, 3), nil, unrestored, halfCut, labelled, annotated, returning)
	b.reconcile()
	want := map[string]string{
		"nginx-0": "Online traffic=True cpu=500m",
		"nginx-1": "Online traffic=True cpu=500m",
		"nginx-2": `Standby traffic=False cpu=50m orig={"nginx":"500m"}`,
		"nginx-3": `Standby traffic=False cpu=50m orig={"nginx":"500m"}`,
		"nginx-4": `Standby traffic=False cpu=50m orig={"nginx":"500m"}`,
	}
	for name, w := range want {
		if got := b.describe(name); got != w {
			t.Errorf("%s: %s, want %s", name, got, w)
		}
	}
}

// A pod whose traffic was cut by a manager stopped before it set the label is cut off for good when
// the plan still takes it out of service, without serving in between (its condition never changes),
// and serves again when the plan keeps it.
func TestHalfCutPodFollowsThePlan(t *testing.T) {
	on := v1alpha1.PodStateOnline
	cutAt := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		name      string
		rp        *v1alpha1.ReplicaProfile
		want      string
		untouched bool // the condition keeps its transition time: the pod never served again
	}{
		{"the plan cuts it", profile(1, 1, 0), "Cutoff traffic=False cpu=500m", true},
		{"the plan keeps it", profile(2, 0, 0), "Online traffic=True cpu=500m", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			halfCut := nginxPod(1, on)
			halfCut.Status.Conditions[0].Status = corev1.ConditionFalse
			halfCut.Status.Conditions[0].LastTransitionTime = cutAt
			b := newBed(t, tc.rp, nil, nginxPod(0, on), halfCut)
			b.reconcile()
			if got := b.describe("nginx-1"); got != tc.want {
				t.Errorf("nginx-1: %s, want %s", got, tc.want)
			}
			if got := b.describe("nginx-0"); got != "Online traffic=True cpu=500m" {
				t.Errorf("nginx-0: %s", got)
			}
			if changed := !onlineCondition(b.pod("nginx-1")).LastTransitionTime.Equal(&cutAt); changed == tc.untouched {
				t.Errorf("nginx-1's traffic condition changed: %t, want %t (it was switched back on and off)", changed, !tc.untouched)
			}
		})
	}
}

// Deleting the profile gives standby pods their requests back.
func TestDeletionRestoresStandbyPods(t *testing.T) {
	on := v1alpha1.PodStateOnline
	b := newBed(t, profile(1, 0, 1), nil, nginxPod(0, on), nginxPod(1, on))
	b.reconcile()
	if got := b.describe("nginx-1"); !strings.HasPrefix(got, "Standby traffic=False cpu=50m") {
		t.Fatalf("nginx-1: %s", got)
	}
	if err := b.c.Delete(context.Background(), profile(1, 0, 1)); err != nil {
		t.Fatal(err)
	}
	b.reconcile()
	if got := b.describe("nginx-1"); got != "Online traffic=True cpu=500m" {
		t.Errorf("nginx-1 after the profile's deletion: %s", got)
	}
}

// Without options (or with fraction 1) Standby only cuts traffic off, as in Kapacity.
func TestStandbyWithoutResizing(t *testing.T) {
	on := v1alpha1.PodStateOnline
	b := newBed(t, profile(1, 0, 1), nil, nginxPod(0, on), nginxPod(1, on))
	b.r.Standby = nil
	b.reconcile()
	if got := b.describe("nginx-1"); got != "Standby traffic=False cpu=500m" || b.resizes != 0 {
		t.Errorf("nginx-1: %s (%d resizes)", got, b.resizes)
	}
}

// Pods without the readiness gate are never counted or labelled as cut off, and are named in a
// Warning event; the StatefulSet's order is kept, so the profile stays one cut-off pod short.
func TestPodsWithoutReadinessGate(t *testing.T) {
	on, cut := v1alpha1.PodStateOnline, v1alpha1.PodStateCutoff
	noGate := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.ReadinessGates = nil
		p.Status.Conditions = nil
		return p
	}
	// nginx-4 was created while the webhook was down; nginx-2 was labelled Cutoff by a manager
	// that did not check the gate, and has served all along.
	b := newBed(t, profile(3, 2, 0), nil, nginxPod(0, on), nginxPod(1, on), noGate(nginxPod(2, cut)), nginxPod(3, on), noGate(nginxPod(4, on)))
	b.reconcile()
	got := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("nginx-%d", i)
		got[name] = stateLabel(b.pod(name))
	}
	want := map[string]string{"nginx-0": "Online", "nginx-1": "Online", "nginx-2": "Online", "nginx-3": "Cutoff", "nginx-4": "Online"}
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s is %s, want %s", name, got[name], want[name])
		}
	}
	rp := &v1alpha1.ReplicaProfile{}
	if err := b.c.Get(context.Background(), b.key, rp); err != nil {
		t.Fatal(err)
	}
	// Observed before the change: nginx-2's label did not make it cut off.
	if rp.Status.CutoffReplicas != 0 || rp.Status.OnlineReplicas != 5 {
		t.Errorf("status online=%d cutoff=%d, want 5 and 0", rp.Status.OnlineReplicas, rp.Status.CutoffReplicas)
	}
	evs := b.events()
	if !hasEvent(evs, "Warning "+ReasonWithoutReadinessGate+" pods [nginx-2 nginx-4] lack the kapacitystack.io/online readiness gate") {
		t.Errorf("no event naming nginx-2 and nginx-4: %q", evs)
	}
	b.reconcile()
	if err := b.c.Get(context.Background(), b.key, rp); err != nil {
		t.Fatal(err)
	}
	if rp.Status.CutoffReplicas != 1 || rp.Status.OnlineReplicas != 4 {
		t.Errorf("status online=%d cutoff=%d, want 4 and 1: only nginx-3 is cut off", rp.Status.OnlineReplicas, rp.Status.CutoffReplicas)
	}
}

// A 404 naming the pod means it went away meanwhile: nothing to fall back from, nothing to retry.
func TestStandbyPodGoneDuringResize(t *testing.T) {
	on := v1alpha1.PodStateOnline
	gone := func(pod string) error { return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, pod) }
	b := newBed(t, profile(1, 0, 1), gone, nginxPod(0, on), nginxPod(1, on))
	b.reconcile()
	if got := b.describe("nginx-1"); got != `Standby traffic=False cpu=500m orig={"nginx":"500m"}` || b.lastResp.RequeueAfter != 0 {
		t.Errorf("nginx-1: %s, requeue %s", got, b.lastResp.RequeueAfter)
	}
	if evs := b.events(); hasEvent(evs, "Warning") {
		t.Errorf("events %q", evs)
	}
}
