//go:build scalebench

// This benchmark needs a whole test bed of its own for about 8 minutes (5,000 pods), so it sits
// behind a build tag, out of the default `go test ./...`; `make bench` runs it on its own line:
//
//	go test -tags scalebench -run '^$' -bench '^BenchmarkExecutorScale$' -benchtime=1x -timeout 30m ./test/e2e/

package e2e

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/ihpa"
	"github.com/kapacitystack/kapacity/executor/replicaprofile"
	"github.com/kapacitystack/kapacity/test/poll"
)

const (
	scaleWorkloads = 500
	scaleReplicas  = 10 // per workload: 5,000 pods
	scaleNodes     = 5  // extra kwok nodes, scaleNodePods pods each
	scaleNodePods  = 1100
	scaleNodeLabel = "kapacity-bench"
)

// scaleControllers are the controllers whose reconcile latency and queue depth are measured.
var scaleControllers = []string{ihpa.ControllerName, replicaprofile.ControllerName}

// BenchmarkExecutorScale is issue 5's scale target: 500 IHPAs over 5,000 kwok pods reconcile
// without a growing queue. Setup (outside the timer) creates extra kwok nodes, 500 Deployments of
// 10 replicas and 500 IHPAs with a Static provider of 10, and waits until every ReplicaProfile is
// ensured. Each iteration flips every Static provider (10 -> 8, then 8 -> 10, ...) and waits until
// every ReplicaProfile is ensured at the new count and every Deployment runs it. It reports the
// p99 reconcile latency of the ihpa and replicaprofile controllers (from controller-runtime's
// histogram buckets), the largest workqueue depth sampled while it ran and the depth at the end,
// which must be 0; it prints them, for the IHPAs' creation and for the flips, as a table.
//
// Most of the set-up time is kube-controller-manager's: its ReplicaSet controller creates the
// 5,000 pods at its default 20 requests per second.
func BenchmarkExecutorScale(b *testing.B) {
	ctx := context.Background()
	useManager(b)
	ns := scaleNamespace(ctx, b)
	scaleCreateNodes(ctx, b)

	started := time.Now()
	scaleCreateDeployments(ctx, b, ns)
	poll.Until(ctx, b, 15*time.Minute, fmt.Sprintf("%d deployments with %d ready replicas each", scaleWorkloads, scaleReplicas),
		func(ctx context.Context) (string, bool, error) { return deploymentsAt(ctx, ns, scaleReplicas) })
	b.Logf("%d pods running after %s", scaleWorkloads*scaleReplicas, time.Since(started).Round(time.Second))

	sampler := startDepthSampler()
	defer sampler.stop()
	created := scalePhase{name: fmt.Sprintf("create %d IHPAs", scaleWorkloads), before: reconcileHistograms(b)}
	started = time.Now()
	scaleCreateIHPAs(ctx, b, ns)
	poll.Until(ctx, b, 10*time.Minute, fmt.Sprintf("%d ReplicaProfiles ensured at %d", scaleWorkloads, scaleReplicas),
		func(ctx context.Context) (string, bool, error) { return profilesAt(ctx, ns, scaleReplicas) })
	created.took, created.after, created.maxDepth = time.Since(started), reconcileHistograms(b), sampler.takeMax()

	flips := scalePhase{name: fmt.Sprintf("flip %d Static providers (x%d)", scaleWorkloads, b.N), before: created.after}
	var converge time.Duration
	b.ResetTimer()
	for i := range b.N {
		target := int32(8)
		if i%2 == 1 {
			target = scaleReplicas
		}
		flipStarted := time.Now()
		scaleSetStatic(ctx, b, ns, target)
		poll.Until(ctx, b, 10*time.Minute, fmt.Sprintf("%d ReplicaProfiles ensured and Deployments at %d", scaleWorkloads, target),
			func(ctx context.Context) (string, bool, error) {
				seen, done, err := profilesAt(ctx, ns, target)
				if !done || err != nil {
					return seen, done, err
				}
				deploySeen, done, err := deploymentsAt(ctx, ns, target)
				return seen + "; " + deploySeen, done, err
			})
		converge += time.Since(flipStarted)
	}
	b.StopTimer()
	flips.took, flips.after, flips.maxDepth = converge, reconcileHistograms(b), sampler.takeMax()
	sampler.stop()

	// "Without a growing queue": once converged, the queues drain to 0.
	var final float64
	poll.Until(ctx, b, 30*time.Second, "workqueues drained", func(context.Context) (string, bool, error) {
		depths := queueDepths(b)
		final = 0
		for _, d := range depths {
			final += d
		}
		return fmt.Sprint(depths), final == 0, nil
	})

	// Printed, not logged: without -v, testing keeps only the first 10 lines of a benchmark's log.
	fmt.Printf("BenchmarkExecutorScale: reconcile latency and workqueue depth, %d IHPAs over %d pods, final queue depth %v:\n%s",
		scaleWorkloads, scaleWorkloads*scaleReplicas, final, scaleTable(created, flips))
	p99, overallMax := 0.0, 0.0
	for _, c := range scaleControllers {
		p99 = math.Max(p99, flips.after[c].minus(flips.before[c]).quantile(0.99)*1000)
		overallMax = math.Max(overallMax, flips.maxDepth[c])
	}
	b.ReportMetric(p99, "p99-reconcile-ms")
	b.ReportMetric(overallMax, "max-queue-depth")
	b.ReportMetric(final, "final-queue-depth")
	b.ReportMetric(converge.Seconds()/float64(b.N), "seconds-to-converge")
}

// scalePhase is what the controllers did during one part of the benchmark.
type scalePhase struct {
	name          string
	took          time.Duration
	before, after map[string]histogram
	maxDepth      map[string]float64
}

// scaleTable renders the phases as a table: one row per phase and controller.
func scaleTable(phases ...scalePhase) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\tcontroller\treconciles\tp50 ms\tp99 ms\tmax queue depth\tphase took\t")
	for _, p := range phases {
		for _, c := range scaleControllers {
			h := p.after[c].minus(p.before[c])
			fmt.Fprintf(w, "%s\t%s\t%d\t%.1f\t%.1f\t%.0f\t%s\t\n", p.name, c, h.count,
				h.quantile(0.5)*1000, h.quantile(0.99)*1000, p.maxDepth[c], p.took.Round(100*time.Millisecond))
		}
	}
	_ = w.Flush()
	return sb.String()
}

// scaleNamespace creates the benchmark's namespace and deletes it at the end.
func scaleNamespace(ctx context.Context, b *testing.B) string {
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-scale-"},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatalf("creating namespace: %v", err)
	}
	b.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// scaleCreateNodes adds kwok nodes big enough for the benchmark's pods (the bed's own nodes hold
// 250 pods each) and waits until they are Ready. The benchmark's pods select them only.
func scaleCreateNodes(ctx context.Context, b *testing.B) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods:   *resource.NewQuantity(scaleNodePods, resource.DecimalSI),
	}
	var names []string
	for i := range scaleNodes {
		name := fmt.Sprintf("kwok-bench-node-%d", i)
		names = append(names, name)
		_, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels: map[string]string{
					"type":                   "kwok",
					scaleNodeLabel:           "true",
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
				},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatalf("creating node %s: %v", name, err)
		}
	}
	b.Cleanup(func() {
		for _, name := range names {
			_ = kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	poll.Until(ctx, b, time.Minute, "benchmark nodes Ready", func(ctx context.Context) (string, bool, error) {
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: scaleNodeLabel + "=true"})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return fmt.Sprintf("%d of %d Ready", ready, scaleNodes), ready == scaleNodes, nil
	})
}

func scaleName(i int) string { return fmt.Sprintf("w-%03d", i) }

// parallel runs f(0..n-1) on 16 workers and fails the benchmark on the first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d of %d failed, first: %v", len(errs), n, errs[0])
	}
}

func scaleCreateDeployments(ctx context.Context, b *testing.B, ns string) {
	parallel(b, scaleWorkloads, func(i int) error {
		labels := map[string]string{"app": scaleName(i)}
		_, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: scaleName(i)},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](scaleReplicas),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{scaleNodeLabel: "true"},
						Containers:   []corev1.Container{{Name: "app", Image: "app"}},
					},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating deployment %s: %w", scaleName(i), err)
		}
		return nil
	})
}

func scaleCreateIHPAs(ctx context.Context, b *testing.B, ns string) {
	parallel(b, scaleWorkloads, func(i int) error {
		err := crClient.Create(ctx, &v1alpha1.IntelligentHorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: scaleName(i)},
			Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: scaleName(i)},
				MinReplicas:    1,
				MaxReplicas:    20,
				PortraitProviders: []v1alpha1.HorizontalPortraitProvider{{
					Type:     v1alpha1.StaticHorizontalPortraitProviderType,
					Priority: 1,
					Static:   &v1alpha1.StaticHorizontalPortraitProvider{Replicas: scaleReplicas},
				}},
			},
		})
		if err != nil {
			return fmt.Errorf("creating IHPA %s: %w", scaleName(i), err)
		}
		return nil
	})
}

// scaleSetStatic sets every IHPA's Static provider to replicas.
func scaleSetStatic(ctx context.Context, b *testing.B, ns string, replicas int32) {
	patch := fmt.Appendf(nil, `{"spec":{"portraitProviders":[{"type":"Static","priority":1,"static":{"replicas":%d}}]}}`, replicas)
	parallel(b, scaleWorkloads, func(i int) error {
		obj := &v1alpha1.IntelligentHorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: scaleName(i)}}
		if err := crClient.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			return fmt.Errorf("patching IHPA %s: %w", scaleName(i), err)
		}
		return nil
	})
}

// deploymentsAt reports whether every Deployment wants, has and readies replicas pods.
func deploymentsAt(ctx context.Context, ns string, replicas int32) (string, bool, error) {
	list, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return observationError(ctx, err), false, nil
	}
	at := 0
	for _, d := range list.Items {
		if ptr.Deref(d.Spec.Replicas, 0) == replicas && d.Status.Replicas == replicas && d.Status.ReadyReplicas == replicas &&
			d.Status.ObservedGeneration == d.Generation {
			at++
		}
	}
	return fmt.Sprintf("%d of %d deployments at %d", at, len(list.Items), replicas), at == scaleWorkloads, nil
}

// profilesAt reports whether every ReplicaProfile wants replicas online and is Ensured there.
func profilesAt(ctx context.Context, ns string, replicas int32) (string, bool, error) {
	list := &v1alpha1.ReplicaProfileList{}
	if err := crClient.List(ctx, list, client.InNamespace(ns)); err != nil {
		return observationError(ctx, err), false, nil
	}
	ensured := 0
	for _, rp := range list.Items {
		if rp.Spec.OnlineReplicas == replicas && rp.Status.OnlineReplicas == replicas &&
			meta.IsStatusConditionTrue(rp.Status.Conditions, string(v1alpha1.ReplicaProfileEnsured)) &&
			meta.IsStatusConditionTrue(rp.Status.Conditions, string(v1alpha1.ReplicaProfileApplied)) {
			ensured++
		}
	}
	return fmt.Sprintf("%d of %d ReplicaProfiles ensured at %d", ensured, len(list.Items), replicas), ensured == scaleWorkloads, nil
}

// histogram is a cumulative bucket histogram of controller_runtime_reconcile_time_seconds.
type histogram struct {
	bounds []float64 // upper bounds, ascending; the last is +Inf
	counts []uint64  // cumulative
	count  uint64
}

func (h histogram) minus(o histogram) histogram {
	d := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts)), count: h.count - o.count}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(o.counts) {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantile interpolates linearly inside the bucket that holds the q-quantile, as PromQL's
// histogram_quantile does; in the +Inf bucket it answers the largest finite bound.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	i := sort.Search(len(h.counts), func(i int) bool { return float64(h.counts[i]) >= rank })
	if i >= len(h.bounds) {
		i = len(h.bounds) - 1
	}
	if math.IsInf(h.bounds[i], 1) {
		if i == 0 {
			return 0
		}
		return h.bounds[i-1]
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = h.bounds[i-1], float64(h.counts[i-1])
	}
	inBucket := float64(h.counts[i]) - below
	if inBucket == 0 {
		return h.bounds[i]
	}
	return lower + (h.bounds[i]-lower)*(rank-below)/inBucket
}

// reconcileHistograms reads controller_runtime_reconcile_time_seconds per controller from
// controller-runtime's registry (the manager runs in this process).
func reconcileHistograms(b *testing.B) map[string]histogram {
	out := map[string]histogram{}
	for _, m := range gatherFamily(b, "controller_runtime_reconcile_time_seconds") {
		c := labelValue(m, "controller")
		ph := m.GetHistogram()
		h := histogram{count: ph.GetSampleCount()}
		for _, bk := range ph.GetBucket() {
			h.bounds = append(h.bounds, bk.GetUpperBound())
			h.counts = append(h.counts, bk.GetCumulativeCount())
		}
		h.bounds = append(h.bounds, math.Inf(1))
		h.counts = append(h.counts, ph.GetSampleCount())
		out[c] = h
	}
	return out
}

// queueDepths reads workqueue_depth per measured controller (summed over priorities).
func queueDepths(b testing.TB) map[string]float64 {
	out := map[string]float64{}
	for _, c := range scaleControllers {
		out[c] = 0
	}
	for _, m := range gatherFamily(b, "workqueue_depth") {
		c := labelValue(m, "controller")
		if c == "" {
			c = labelValue(m, "name")
		}
		if _, ok := out[c]; ok {
			out[c] += m.GetGauge().GetValue()
		}
	}
	return out
}

func gatherFamily(b testing.TB, name string) []*dto.Metric {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		b.Fatalf("gathering controller-runtime metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// depthSampler samples the measured controllers' queue depths every 100ms and keeps the maxima.
type depthSampler struct {
	mu   sync.Mutex
	max  map[string]float64
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func startDepthSampler() *depthSampler {
	s := &depthSampler{max: map[string]float64{}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			families, err := ctrlmetrics.Registry.Gather()
			if err == nil {
				s.record(families)
			}
			select {
			case <-s.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *depthSampler) record(families []*dto.MetricFamily) {
	depth := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "workqueue_depth" {
			continue
		}
		for _, m := range f.GetMetric() {
			c := labelValue(m, "controller")
			if c == "" {
				c = labelValue(m, "name")
			}
			depth[c] += m.GetGauge().GetValue()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range scaleControllers {
		s.max[c] = math.Max(s.max[c], depth[c])
	}
}

// takeMax returns the maxima since the last call and starts over.
func (s *depthSampler) takeMax() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.max
	s.max = map[string]float64{}
	return out
}

func (s *depthSampler) stop() {
	s.once.Do(func() { close(s.quit); <-s.done })
}
