package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// Chaos parameters: 8 pods change in 25 % batches (2 pods) every 5 s; the manager is killed with
// SIGKILL after a random 0.3–3 s of every life, and at least minKills times across the changes.
const (
	chaosHigh, chaosLow = 10, 2
	chaosPercent        = 25
	chaosInterval       = 5
	minKills            = 20
)

// TestExecutorSurvivesSIGKILL runs `kapacity manager` as a child process and kills it with
// SIGKILL at random moments while an IHPA moves a StatefulSet from 10 to 2 online pods in gray
// Cutoff batches and back to 10 in gray Online batches (and again, until the manager was killed at
// least 20 times). A watch on the pods and on the ReplicaProfile checks, on every event, that
//   - no step of the plan (the ReplicaProfile's onlineReplicas) moves more than one batch;
//   - no pod leaves (or joins) Online beyond the plan in effect, and none is deleted while the
//     plan still counts it;
//   - the online pods never move more than one batch from the previous step's count;
//
// and each change completes. Once, during the first scale-down, the test also plays the lost
// ReplicaProfile write that random kills rarely hit (see loseProfileWrite).
func TestExecutorSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	m := useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	emulateKubeletReadiness(ctx, t, ns)
	binary := buildKapacity(t)
	createNginx(ctx, t, ns, chaosHigh)
	// The pod webhook fails open: pods the StatefulSet creates while the manager stops would lack
	// the readiness gate, and such pods are never cut off. Stop it once every pod has the gate.
	poll.Until(ctx, t, time.Minute, fmt.Sprintf("%d pods with the readiness gate", chaosHigh), func(ctx context.Context) (string, bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			return err.Error(), false, nil
		}
		gated := 0
		for i := range pods.Items {
			if hasOnlineGate(&pods.Items[i]) {
				gated++
			}
		}
		return fmt.Sprintf("%d pods, %d gated", len(pods.Items), gated), gated == chaosHigh, nil
	})

	m.Stop()
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	chaos := &killer{t: t, m: m, binary: binary, rng: rand.New(rand.NewSource(seed))}
	chaos.launch()
	t.Cleanup(func() {
		chaos.stop()
		if err := m.Start(); err != nil {
			t.Errorf("restarting the in-process manager: %v", err)
		}
	})

	a := &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chaos"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			MinReplicas:    1, MaxReplicas: 20,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: chaosHigh}},
			},
			Behavior: v1alpha1.IntelligentHorizontalPodAutoscalerBehavior{
				ScaleUp: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
					GrayState: v1alpha1.PodStateOnline, ChangeIntervalSeconds: chaosInterval, ChangePercent: chaosPercent}},
				ScaleDown: v1alpha1.ScalingBehavior{GrayStrategy: &v1alpha1.GrayStrategy{
					GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: chaosInterval, ChangePercent: chaosPercent, ObservationSeconds: 2}},
			},
		},
	}
	// The autoscalers' webhook fails closed: while the manager is down, writes are retried.
	poll.Until(ctx, t, time.Minute, "IHPA created", func(ctx context.Context) (string, bool, error) {
		err := crClient.Create(ctx, a.DeepCopy())
		return fmt.Sprint(err), err == nil || apierrors.IsAlreadyExists(err), nil
	})
	waitSteady(ctx, t, ns, chaosHigh, nil)
	chaos.start()

	bound := gray.BatchSize(chaosHigh-chaosLow, chaosPercent)
	w := startChaosWatch(ctx, t, ns, a.Name, bound)
	started := time.Now()
	changes := 0
	for target := int32(chaosLow); changes < 2 || chaos.kills() < minKills; changes++ {
		if changes == 6 {
			t.Fatalf("only %d kills in %d changes", chaos.kills(), changes)
		}
		begun, kills := time.Now(), chaos.kills()
		poll.Until(ctx, t, time.Minute, fmt.Sprintf("static portrait set to %d", target), func(ctx context.Context) (string, bool, error) {
			cur := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
			if err := crClient.Get(ctx, client.ObjectKeyFromObject(a), cur); err != nil {
				return err.Error(), false, nil
			}
			cur.Spec.PortraitProviders[0].Static.Replicas = target
			err := crClient.Update(ctx, cur)
			return fmt.Sprint(err), err == nil, nil
		})
		if changes == 0 {
			loseProfileWrite(ctx, t, chaos, a)
		}
		waitSteady(ctx, t, ns, target, w.failure)
		t.Logf("change %d to %d online pods took %s with %d kills", changes+1, target, time.Since(begun).Round(time.Second), chaos.kills()-kills)
		target = chaosHigh + chaosLow - target
	}
	chaos.stop()
	report := w.stop()
	t.Logf("%d changes with %d SIGKILLs in %s; %s", changes, chaos.kills(), time.Since(started).Round(time.Second), report)
	if err := w.failure(); err != nil {
		t.Fatal(err)
	}
}

// loseProfileWrite plays the write the manager loses when it is killed between the IHPA status
// and the ReplicaProfile, with the retry coming after changeIntervalSeconds: once a gray step of
// the scale-down is in effect, the manager is killed, the status is moved one step ahead of the
// profile (as the lost reconcile had written it) with its batch time an interval in the past, and
// the manager restarts. Planning from the status alone then moved two batches at once.
func loseProfileWrite(ctx context.Context, t *testing.T, chaos *killer, a *v1alpha1.IntelligentHorizontalPodAutoscaler) {
	t.Helper()
	diff := int32(chaosHigh - chaosLow)
	moved := func(percent int32) int32 { return max(1, diff*percent/100) }
	for attempt := 0; attempt < 5; attempt++ {
		var cur *v1alpha1.IntelligentHorizontalPodAutoscaler
		poll.Until(ctx, t, time.Minute, "a first gray batch in effect", func(ctx context.Context) (string, bool, error) {
			cur = &v1alpha1.IntelligentHorizontalPodAutoscaler{}
			if err := crClient.Get(ctx, client.ObjectKeyFromObject(a), cur); err != nil {
				return err.Error(), false, nil
			}
			g := cur.Status.Gray
			return fmt.Sprintf("gray %+v", g), g != nil && g.GrayPercent > 0 && g.GrayPercent+chaosPercent < 100, nil
		})
		chaos.pause()
		rp := &v1alpha1.ReplicaProfile{}
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(a), rp); err != nil {
			t.Fatal(err)
		}
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(a), cur); err != nil {
			t.Fatal(err)
		}
		g := cur.Status.Gray
		if g == nil || g.GrayPercent+chaosPercent >= 100 || rp.Spec.OnlineReplicas != chaosHigh-moved(g.GrayPercent) {
			// Killed while the step was being written: try at the next one.
			chaos.resume()
			continue
		}
		next := g.GrayPercent + chaosPercent
		cur.Status.Gray = &v1alpha1.GrayStatus{GrayPercent: next, LastUpdateTime: metav1.NewTime(time.Now().Add(-(chaosInterval + 1) * time.Second))}
		cur.Status.OnlineReplicas, cur.Status.CutoffReplicas = chaosHigh-moved(next), moved(next)
		if err := crClient.Status().Update(ctx, cur); err != nil {
			t.Fatalf("recording the lost step in the status: %v", err)
		}
		t.Logf("lost profile write: the status says %d%% (%d online), the ReplicaProfile %d%% (%d online)",
			next, cur.Status.OnlineReplicas, g.GrayPercent, rp.Spec.OnlineReplicas)
		chaos.resume()
		return
	}
	t.Fatal("no gray step to lose the write of")
}

// buildKapacity builds the kapacity command into the test's temporary directory.
func buildKapacity(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "kapacity")
	started := time.Now()
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = repoRoot(t)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	t.Logf("built %s in %s", out, time.Since(started).Round(100*time.Millisecond))
	return out
}

// waitSteady waits until the change to target online pods is complete: the IHPA has no gray
// change left, the ReplicaProfile asks for target online pods and nothing else, and the
// StatefulSet runs exactly that many pods, all online.
func waitSteady(ctx context.Context, t *testing.T, ns string, target int32, failure func() error) {
	t.Helper()
	poll.Until(ctx, t, 4*time.Minute, fmt.Sprintf("%d online pods and nothing in progress", target), func(ctx context.Context) (string, bool, error) {
		if failure != nil {
			if err := failure(); err != nil {
				return "", false, err
			}
		}
		o, err := observe(ctx, ns, "chaos")
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		want := fmt.Sprintf("online=%d cutoff=0 standby=0", target)
		return o.String(), o.rpSpec == want && !strings.Contains(o.ihpaConditions, "gray=") && o.specReplicas == target &&
			o.pods == int(target) && len(o.online) == int(target), nil
	})
}

// killer runs the manager as a child process and kills it with SIGKILL after a random time, again
// and again, until stopped.
type killer struct {
	t      *testing.T
	m      *stack.Manager
	binary string
	rng    *rand.Rand

	mu   sync.Mutex
	n    int
	proc *stack.ManagerProcess
	quit chan struct{}
	done chan struct{}
}

// launch starts the first manager process.
func (k *killer) launch() { k.restart() }

// start starts killing: each process lives a random 0.3–3 s after its webhooks answer.
func (k *killer) start() {
	k.quit, k.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(k.done)
		for {
			life := 300*time.Millisecond + time.Duration(k.rng.Int63n(int64(2700*time.Millisecond)))
			select {
			case <-k.quit:
				return
			case <-time.After(life):
			}
			k.mu.Lock()
			k.proc.Kill()
			k.n++
			k.mu.Unlock()
			k.restart()
		}
	}()
}

// pause ends the kills with a last SIGKILL, leaving the manager down until resume.
func (k *killer) pause() {
	close(k.quit)
	<-k.done
	k.quit = nil
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc.Kill()
	k.n++
}

// resume starts a manager process and the kills again.
func (k *killer) resume() {
	k.restart()
	k.start()
}

// restart starts a new manager process, retrying while the previous one's port is released.
func (k *killer) restart() {
	for attempt := 1; ; attempt++ {
		p, err := k.m.StartProcess(k.binary)
		if err == nil {
			k.mu.Lock()
			k.proc = p
			k.mu.Unlock()
			return
		}
		if attempt == 5 {
			k.t.Errorf("starting the manager process: %v", err)
			return
		}
		time.Sleep(time.Second)
	}
}

func (k *killer) kills() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// stop ends the kills and stops the last manager process gracefully.
func (k *killer) stop() {
	if k.quit != nil {
		close(k.quit)
		<-k.done
		k.quit = nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		k.proc.Stop()
		k.proc = nil
	}
}

// chaosWatch checks the invariants on every pod and ReplicaProfile event.
type chaosWatch struct {
	t      *testing.T
	ns     string
	name   string
	bound  int32
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	violations []string
	// Plan, from the ReplicaProfile watch: every spec.onlineReplicas in order.
	planOnline  int32
	planSteps   int
	maxPlanStep int32
	// Pods, from the pod watch.
	pods map[string]*corev1.Pod
	// The plan in effect when a pod changes, read fresh from the API server (the pod event may
	// arrive before the ReplicaProfile event that caused it): its generation, its online count and
	// the online count of the step before it.
	gen              int64
	curOnline, prev  int32
	maxPodBatch      int32
	transitions      int
	deletionsChecked int
}

func startChaosWatch(ctx context.Context, t *testing.T, ns, name string, bound int32) *chaosWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &chaosWatch{t: t, ns: ns, name: name, bound: bound, cancel: cancel, done: make(chan struct{}), pods: map[string]*corev1.Pod{}}
	dyn, err := dynamic.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	profiles := dyn.Resource(v1alpha1.GroupVersion.WithResource("replicaprofiles")).Namespace(ns)
	rps, err := profiles.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil || len(rps.Items) != 1 {
		t.Fatalf("listing the ReplicaProfile: %v (%d found)", err, len(rps.Items))
	}
	rp := toProfile(t, &rps.Items[0])
	w.planOnline, w.gen, w.curOnline, w.prev = rp.Spec.OnlineReplicas, rp.Generation, rp.Spec.OnlineReplicas, rp.Spec.OnlineReplicas
	rpWatch, err := toolswatch.NewRetryWatcherWithContext(ctx, rps.GetResourceVersion(), &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = "metadata.name=" + name
			return profiles.Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		w.pods[pods.Items[i].Name] = &pods.Items[i]
	}
	podWatch, err := toolswatch.NewRetryWatcherWithContext(ctx, pods.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = "app=nginx"
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer rpWatch.Stop()
		defer podWatch.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-rpWatch.ResultChan():
				if !ok {
					return
				}
				if u, isU := ev.Object.(*unstructured.Unstructured); isU && ev.Type == watch.Modified {
					w.onProfile(toProfile(t, u))
				}
			case ev, ok := <-podWatch.ResultChan():
				if !ok {
					return
				}
				if pod, isPod := ev.Object.(*corev1.Pod); isPod {
					w.onPod(ctx, ev.Type, pod)
				}
			}
		}
	}()
	return w
}

func toProfile(t *testing.T, u *unstructured.Unstructured) *v1alpha1.ReplicaProfile {
	rp := &v1alpha1.ReplicaProfile{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, rp); err != nil {
		t.Errorf("decoding a ReplicaProfile: %v", err)
	}
	return rp
}

func (w *chaosWatch) violate(format string, args ...any) {
	w.violations = append(w.violations, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// onProfile checks a step of the plan: one batch at most.
func (w *chaosWatch) onProfile(rp *v1alpha1.ReplicaProfile) {
	w.mu.Lock()
	defer w.mu.Unlock()
	online := rp.Spec.OnlineReplicas
	if online == w.planOnline {
		return
	}
	step := abs32(online - w.planOnline)
	w.planSteps++
	w.maxPlanStep = max(w.maxPlanStep, step)
	if step > w.bound {
		w.violate("the ReplicaProfile's onlineReplicas moved %d → %d, more than one batch (%d)", w.planOnline, online, w.bound)
	}
	w.planOnline = online
}

// isOnline tells whether a pod serves: running, not being deleted, labelled Online and with its
// traffic on (the ReplicaProfile cuts the traffic before it sets the label).
func isOnline(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Labels[v1alpha1.PodStateLabelKey] == "" &&
		stack.PodCondition(p, v1alpha1.PodOnlineConditionType) != corev1.ConditionFalse
}

func (w *chaosWatch) onPod(ctx context.Context, typ watch.EventType, pod *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.pods[pod.Name]
	wasOnline, wasThere := old != nil && isOnline(old), old != nil && old.DeletionTimestamp == nil
	if typ == watch.Deleted {
		delete(w.pods, pod.Name)
	} else {
		w.pods[pod.Name] = pod
	}
	nowOnline, nowThere := typ != watch.Deleted && isOnline(pod), typ != watch.Deleted && pod.DeletionTimestamp == nil
	if wasOnline == nowOnline && wasThere == nowThere {
		return
	}
	rp := &v1alpha1.ReplicaProfile{}
	if err := crClient.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: w.name}, rp); err != nil {
		if ctx.Err() == nil {
			w.t.Logf("reading the ReplicaProfile: %v", err)
		}
		return
	}
	if rp.Generation > w.gen {
		w.gen, w.prev, w.curOnline = rp.Generation, w.curOnline, rp.Spec.OnlineReplicas
	}
	var online, present int32
	for _, p := range w.pods {
		if isOnline(p) {
			online++
		}
		if p.DeletionTimestamp == nil {
			present++
		}
	}
	if wasThere && !nowThere {
		w.deletionsChecked++
		if total := rp.Spec.OnlineReplicas + rp.Spec.CutoffReplicas + rp.Spec.StandbyReplicas; present < total {
			w.violate("pod %s removed while the plan still counts it: %d pods left, the ReplicaProfile asks for %d", pod.Name, present, total)
		}
	}
	if wasOnline == nowOnline {
		return
	}
	w.transitions++
	switch {
	case !nowOnline && online < w.curOnline:
		w.violate("pod %s left Online beyond the plan: %d online, the ReplicaProfile asks for %d", pod.Name, online, w.curOnline)
	case nowOnline && online > w.curOnline:
		w.violate("pod %s joined Online beyond the plan: %d online, the ReplicaProfile asks for %d", pod.Name, online, w.curOnline)
	}
	// The pods moved since the previous step: pods that complete an interrupted step do not count.
	var batch int32
	if w.curOnline < w.prev {
		batch = max(0, w.prev-online)
	} else if w.curOnline > w.prev {
		batch = max(0, online-w.prev)
	}
	w.maxPodBatch = max(w.maxPodBatch, batch)
	if batch > w.bound {
		w.violate("%d online pods moved from the previous step's %d (now %d online), more than one batch (%d)", batch, w.prev, online, w.bound)
	}
}

// failure reports the violations seen so far.
func (w *chaosWatch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) == 0 {
		return nil
	}
	return fmt.Errorf("%d violations:\n%s", len(w.violations), strings.Join(w.violations, "\n"))
}

// stop ends the watches and summarizes what they saw.
func (w *chaosWatch) stop() string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d plan steps (largest %d pods), %d pod transitions (largest batch %d pods from the previous step), %d pod deletions checked; one batch is %d pods",
		w.planSteps, w.maxPlanStep, w.transitions, w.maxPodBatch, w.deletionsChecked, w.bound)
}

func abs32(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}
