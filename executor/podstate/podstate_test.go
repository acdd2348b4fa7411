package podstate

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podsort"
)

// StatefulSet order (highest ordinal first) keeps the expected pods obvious.
var order podsort.Order = podsort.SortStatefulSet

func pod(ordinal int, state v1alpha1.PodState) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", ordinal), Namespace: "default"},
		Spec:       corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: v1alpha1.PodOnlineConditionType}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if state != "" && state != v1alpha1.PodStateOnline {
		p.Labels = map[string]string{v1alpha1.PodStateLabelKey: string(state)}
	}
	return p
}

// sts builds pods web-0… with the given numbers of online, cutoff and standby pods, in that order.
func sts(online, cutoff, standby int) []*corev1.Pod {
	var pods []*corev1.Pod
	for i := 0; i < online+cutoff+standby; i++ {
		state := v1alpha1.PodStateOnline
		switch {
		case i >= online+cutoff:
			state = v1alpha1.PodStateStandby
		case i >= online:
			state = v1alpha1.PodStateCutoff
		}
		pods = append(pods, pod(i, state))
	}
	return pods
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func web(ordinals ...int) []string {
	out := []string{}
	for _, o := range ordinals {
		out = append(out, fmt.Sprintf("web-%d", o))
	}
	slices.Sort(out)
	return out
}

func TestStateOf(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   v1alpha1.PodState
	}{
		{nil, v1alpha1.PodStateOnline},
		{map[string]string{v1alpha1.PodStateLabelKey: ""}, v1alpha1.PodStateOnline},
		{map[string]string{v1alpha1.PodStateLabelKey: "Online"}, v1alpha1.PodStateOnline},
		{map[string]string{v1alpha1.PodStateLabelKey: "Cutoff"}, v1alpha1.PodStateCutoff},
		{map[string]string{v1alpha1.PodStateLabelKey: "Standby"}, v1alpha1.PodStateStandby},
		{map[string]string{v1alpha1.PodStateLabelKey: "Deleted"}, v1alpha1.PodStateOnline},
		{map[string]string{v1alpha1.PodStateLabelKey: "cutoff"}, v1alpha1.PodStateOnline},
	}
	for _, tt := range tests {
		if got := StateOf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels}}); got != tt.want {
			t.Errorf("StateOf(%v) = %s, want %s", tt.labels, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	pending := pod(5, v1alpha1.PodStateCutoff)
	pending.Status.Phase = corev1.PodPending
	deleting := pod(6, "")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	pods := append(sts(2, 1, 1), pending, deleting)
	if got := Classify(pods).Counts(); got != (Counts{2, 1, 1}) {
		t.Errorf("Classify counts %+v, want 2/1/1", got)
	}
}

// ungated drops the readiness gate of the pods with the given ordinals, as for pods created while
// the webhook was down.
func ungated(pods []*corev1.Pod, ordinals ...int) []*corev1.Pod {
	for _, p := range pods {
		for _, o := range ordinals {
			if p.Name == fmt.Sprintf("web-%d", o) {
				p.Spec.ReadinessGates = nil
			}
		}
	}
	return pods
}

func TestClassifyUngated(t *testing.T) {
	// web-1 (Cutoff) and web-2 (Standby) were labelled but never had the gate: they serve.
	pods := ungated(sts(1, 1, 1), 1, 2)
	g := Classify(pods)
	if got := g.Counts(); got != (Counts{Online: 3}) {
		t.Errorf("counts %+v, want 3 online: a pod without the gate is never cut off", got)
	}
	if got := EffectiveState(pods[1]); got != v1alpha1.PodStateOnline {
		t.Errorf("EffectiveState(ungated Cutoff) = %s", got)
	}
	if got := StateOf(pods[1]); got != v1alpha1.PodStateCutoff {
		t.Errorf("StateOf reads the label: %s", got)
	}
}

func TestCalculateTransitionUngated(t *testing.T) {
	tests := []struct {
		name                                string
		pods                                []*corev1.Pod
		desired                             Counts
		preferGated                         bool
		cutoff, standby, deleteSet, ungated []string
	}{
		{"StatefulSet order: the ungated pod stays online, one short", ungated(sts(5, 0, 0), 4), Counts{3, 2, 0}, false,
			web(3), nil, nil, web(4)},
		{"ReplicaSet-like: gated pods are cut off instead", ungated(sts(5, 0, 0), 4), Counts{3, 2, 0}, true,
			web(2, 3), nil, nil, nil},
		{"not enough gated pods even so", ungated(sts(3, 0, 0), 1, 2), Counts{1, 2, 0}, true,
			web(0), nil, nil, web(1)},
		{"standby: the same", ungated(sts(4, 0, 0), 3), Counts{2, 0, 2}, false,
			nil, web(2), nil, web(3)},
		{"deletion does not need the gate", ungated(sts(5, 0, 0), 4), Counts{3, 0, 0}, true,
			nil, nil, web(3, 4), nil},
		{"an ungated pod labelled Cutoff counts online and is cut off no more", ungated(sts(3, 2, 0), 4), Counts{3, 2, 0}, false,
			nil, nil, nil, web(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := CalculateTransition(Classify(tt.pods), tt.desired, order, tt.preferGated)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"cutoff", names(tr.Cutoff), tt.cutoff}, {"standby", names(tr.Standby), tt.standby},
				{"delete", names(tr.Delete), tt.deleteSet}, {"ungated", names(tr.Ungated), tt.ungated}} {
				if !slices.Equal(c.got, orEmpty(c.want)) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestCalculateTransition(t *testing.T) {
	tests := []struct {
		name                               string
		pods                               []*corev1.Pod
		desired                            Counts
		online, cutoff, standby, deleteSet []string
	}{
		{"online → cutoff (20 online to 10+10)", sts(20, 0, 0), Counts{10, 10, 0},
			nil, web(10, 11, 12, 13, 14, 15, 16, 17, 18, 19), nil, nil},
		{"cutoff → delete (10+10 to 10)", sts(10, 10, 0), Counts{10, 0, 0},
			nil, nil, nil, web(10, 11, 12, 13, 14, 15, 16, 17, 18, 19)},
		{"cutoff → online, the last to scale in first", sts(15, 5, 0), Counts{18, 0, 0},
			web(15, 16, 17), nil, nil, web(18, 19)},
		{"cascade: online excess goes straight to deletion", sts(15, 5, 0), Counts{10, 0, 0},
			nil, nil, nil, web(10, 11, 12, 13, 14, 15, 16, 17, 18, 19)},
		{"cascade into standby: the deepest state gets the first to scale in", sts(10, 0, 0), Counts{6, 2, 2},
			nil, web(6, 7), web(8, 9), nil},
		{"online pulls from cutoff before standby", sts(2, 2, 2), Counts{5, 0, 0},
			web(2, 3, 4), nil, nil, web(5)},
		{"standby → cutoff, the last to scale in first", sts(2, 0, 3), Counts{2, 2, 1},
			nil, web(2, 3), nil, nil},
		{"more desired than pods present: nothing to move, the scale creates pods", sts(3, 0, 0), Counts{10, 2, 0},
			nil, nil, nil, nil},
		{"to zero", sts(2, 1, 0), Counts{0, 0, 0},
			nil, nil, nil, web(0, 1, 2)},
		{"nothing to do", sts(3, 2, 0), Counts{3, 2, 0}, nil, nil, nil, nil},
		{"no pods", nil, Counts{1, 1, 1}, nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current := Classify(tt.pods)
			before := slices.Clone(current.Online)
			tr, err := CalculateTransition(current, tt.desired, order, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"online", names(tr.Online), tt.online}, {"cutoff", names(tr.Cutoff), tt.cutoff},
				{"standby", names(tr.Standby), tt.standby}, {"delete", names(tr.Delete), tt.deleteSet}} {
				if c.want == nil {
					c.want = []string{}
				}
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if !slices.Equal(before, current.Online) {
				t.Error("the input slices were modified")
			}
			if tr.Empty() != (len(tt.online)+len(tt.cutoff)+len(tt.standby)+len(tt.deleteSet) == 0) {
				t.Errorf("Empty() = %v", tr.Empty())
			}
		})
	}

	if _, err := CalculateTransition(Pods{}, Counts{}, nil, false); err == nil {
		t.Error("nil order: want an error")
	}
	if _, err := CalculateTransition(Pods{}, Counts{Online: -1}, order, false); err == nil {
		t.Error("negative counts: want an error")
	}
}

// apply labels the pods as the controller would and drops the deleted ones (as the StatefulSet
// controller would once the scale is lowered).
func apply(pods []*corev1.Pod, d Decision) []*corev1.Pod {
	set := func(ps []*corev1.Pod, s v1alpha1.PodState) {
		for _, p := range ps {
			p.Labels = map[string]string{v1alpha1.PodStateLabelKey: string(s)}
		}
	}
	set(d.Transition.Online, v1alpha1.PodStateOnline)
	set(d.Transition.Cutoff, v1alpha1.PodStateCutoff)
	set(d.Transition.Standby, v1alpha1.PodStateStandby)
	var out []*corev1.Pod
	for _, p := range pods {
		if !slices.Contains(d.Transition.Delete, p) {
			out = append(out, p)
		}
	}
	return out
}

// The quick-start's StatefulSet: 5 → 3 online + 2 cutoff → 1 online + 4 cutoff → 1.
func TestDecideQuickStart(t *testing.T) {
	pods := sts(5, 0, 0)
	replicas := int32(5)
	steps := []struct {
		spec            Counts
		cutoff, deleted []string
		scale           int32
	}{
		{Counts{Online: 3, Cutoff: 2}, web(3, 4), nil, 5},
		{Counts{Online: 1, Cutoff: 4}, web(1, 2), nil, 5},
		{Counts{Online: 1}, nil, web(1, 2, 3, 4), 1},
	}
	for i, st := range steps {
		c := Counts(st.spec)
		spec := &v1alpha1.ReplicaProfileSpec{OnlineReplicas: c.Online, CutoffReplicas: c.Cutoff, StandbyReplicas: c.Standby,
			AllowedScalingDirection: v1alpha1.ScalingDirectionBoth}
		d, err := Decide(spec, pods, replicas, order, false)
		if err != nil {
			t.Fatal(err)
		}
		if d.Ensured || d.StateChangeSkipped || !d.StateChangeNeeded {
			t.Fatalf("step %d: %+v", i, d)
		}
		if got := names(d.Transition.Cutoff); !slices.Equal(got, orEmpty(st.cutoff)) {
			t.Errorf("step %d: cutoff %v, want %v", i, got, st.cutoff)
		}
		if got := names(d.Transition.Delete); !slices.Equal(got, orEmpty(st.deleted)) {
			t.Errorf("step %d: delete %v, want %v", i, got, st.deleted)
		}
		if d.ScaleReplicas != st.scale || d.UpdateScale != (st.scale != replicas) {
			t.Errorf("step %d: scale %d (update %v), want %d", i, d.ScaleReplicas, d.UpdateScale, st.scale)
		}
		pods, replicas = apply(pods, d), d.ScaleReplicas
		again, err := Decide(spec, pods, replicas, order, false)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Ensured {
			t.Errorf("step %d: not ensured after applying: %+v", i, again)
		}
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestDecide(t *testing.T) {
	withPending := append(sts(5, 0, 0), func() *corev1.Pod { p := pod(5, ""); p.Status.Phase = corev1.PodPending; return p }())
	tests := []struct {
		name      string
		spec      v1alpha1.ReplicaProfileSpec
		pods      []*corev1.Pod
		replicas  int32
		want      Decision // Transition is checked by count only
		wantMoves int
	}{
		{"ensured", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 3, CutoffReplicas: 2}, sts(3, 2, 0), 5,
			Decision{Observed: Counts{3, 2, 0}, Ensured: true, DesiredOnline: 3, ScaleReplicas: 5}, 0},
		{"plain scale-down needs no state change", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 3}, sts(5, 0, 0), 5,
			Decision{Observed: Counts{5, 0, 0}, DesiredOnline: 3, ScaleReplicas: 3, UpdateScale: true}, 0},
		{"more desired than pods present: scale up, nothing to move", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 10}, sts(5, 0, 0), 5,
			Decision{Observed: Counts{5, 0, 0}, DesiredOnline: 10, ScaleReplicas: 10, UpdateScale: true}, 0},
		{"direction Up keeps online pods above the spec", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 3, AllowedScalingDirection: v1alpha1.ScalingDirectionUp}, sts(5, 0, 0), 5,
			Decision{Observed: Counts{5, 0, 0}, Ensured: true, DesiredOnline: 5, ScaleReplicas: 5}, 0},
		{"direction Down refuses to add online pods", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 8, AllowedScalingDirection: v1alpha1.ScalingDirectionDown}, sts(5, 0, 0), 5,
			Decision{Observed: Counts{5, 0, 0}, Ensured: true, DesiredOnline: 5, ScaleReplicas: 5}, 0},
		{"direction Neither still moves cutoff pods", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 8, CutoffReplicas: 0, AllowedScalingDirection: v1alpha1.ScalingDirectionNeither}, sts(3, 2, 0), 5,
			Decision{Observed: Counts{3, 2, 0}, DesiredOnline: 3, StateChangeNeeded: true, ScaleReplicas: 3, UpdateScale: true}, 2},
		{"state change skipped while pods start", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 3, CutoffReplicas: 2}, withPending, 6,
			Decision{Observed: Counts{5, 0, 0}, DesiredOnline: 3, StateChangeNeeded: true, StateChangeSkipped: true, ScaleReplicas: 5, UpdateScale: true}, 0},
		{"replicas that never started are scaled away", v1alpha1.ReplicaProfileSpec{OnlineReplicas: 5}, withPending, 6,
			Decision{Observed: Counts{5, 0, 0}, DesiredOnline: 5, ScaleReplicas: 5, UpdateScale: true}, 0},
		{"zero replicas", v1alpha1.ReplicaProfileSpec{}, nil, 0,
			Decision{Ensured: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(&tt.spec, tt.pods, tt.replicas, order, false)
			if err != nil {
				t.Fatal(err)
			}
			moves := len(d.Transition.Online) + len(d.Transition.Cutoff) + len(d.Transition.Standby) + len(d.Transition.Delete)
			d.Transition = Transition{}
			if !reflect.DeepEqual(d, tt.want) || moves != tt.wantMoves {
				t.Errorf("Decide = %+v with %d moves,\nwant      %+v with %d moves", d, moves, tt.want, tt.wantMoves)
			}
		})
	}

	if _, err := Decide(&v1alpha1.ReplicaProfileSpec{AllowedScalingDirection: "Sideways"}, nil, 0, order, false); err == nil {
		t.Error("unknown direction: want an error")
	}
}

func TestStabilize(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	desired := Counts{Online: 1, Cutoff: 4}
	observed := Counts{Online: 3, Cutoff: 2}
	tests := []struct {
		name       string
		anomaly    *Anomaly
		want       Counts
		wantResume time.Duration
		wantErr    bool
	}{
		{"no anomaly", nil, desired, 0, false},
		{"pause holds the observed counts", &Anomaly{Action: v1alpha1.StabilizationActionPause, DetectedAt: now.Add(-10 * time.Second), CoolDown: time.Minute},
			observed, 50 * time.Second, false},
		{"rollback returns cutoff pods online", &Anomaly{Action: v1alpha1.StabilizationActionRollback, DetectedAt: now, CoolDown: time.Minute},
			Counts{Online: 5}, time.Minute, false},
		{"cool-down over", &Anomaly{Action: v1alpha1.StabilizationActionRollback, DetectedAt: now.Add(-time.Minute), CoolDown: time.Minute},
			desired, 0, false},
		{"unknown action", &Anomaly{Action: "Panic", DetectedAt: now, CoolDown: time.Minute}, Counts{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, resume, err := Stabilize(desired, observed, tt.anomaly, now)
			if (err != nil) != tt.wantErr || got != tt.want || resume != tt.wantResume {
				t.Errorf("Stabilize = %+v, %v, %v; want %+v, %v, error %v", got, resume, err, tt.want, tt.wantResume, tt.wantErr)
			}
		})
	}
}
