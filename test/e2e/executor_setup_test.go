package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/manager"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

var (
	managerOnce sync.Once
	managerErr  error
	mgr         *stack.Manager
	crClient    client.Client
	// kube is a client of its own with a high rate limit: the executor tests poll several objects
	// and emulate the kubelet's readiness, which would starve the bed's shared client.
	kube kubernetes.Interface
)

// useManager starts `kapacity manager` in this process on first use (CRDs, pod webhook and all);
// later tests share it. With KAPACITY_E2E_INSTALL=chart it runs as the chart's manager
// (install_test.go).
func useManager(t testing.TB) *stack.Manager {
	t.Helper()
	managerOnce.Do(func() {
		var opts stack.ManagerOptions
		if chartMode() {
			if opts.Chart, managerErr = installChart(); managerErr != nil {
				return
			}
		}
		mgr, managerErr = stack.StartManagerWith(context.Background(), bed, opts)
		if managerErr != nil {
			return
		}
		suiteCleanups = append(suiteCleanups, mgr.Close)
		var scheme *runtime.Scheme
		if scheme, managerErr = manager.Scheme(); managerErr != nil {
			return
		}
		cfg := rest.CopyConfig(bed.Config)
		cfg.QPS, cfg.Burst = 200, 400
		if kube, managerErr = kubernetes.NewForConfig(cfg); managerErr != nil {
			return
		}
		crClient, managerErr = client.New(cfg, client.Options{Scheme: scheme})
	})
	if managerErr != nil {
		t.Fatalf("starting the manager: %v", managerErr)
	}
	if err := mgr.Err(); err != nil {
		t.Fatal(err)
	}
	return mgr
}

// emulateKubeletReadiness makes the pods of ns Ready only while their readiness gates are True,
// as a kubelet does and kwok does not, until the test ends.
func emulateKubeletReadiness(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	emulateKubelet(ctx, t, ns, stack.SyncReadiness)
}

// emulateKubelet applies sync to every pod of ns until the test ends.
func emulateKubelet(ctx context.Context, t *testing.T, ns string, sync stack.PodSync) {
	t.Helper()
	t.Cleanup(stack.RunKubeletStandIn(ctx, kube, ns, sync))
}

// createNginx creates the quick-start's workload: StatefulSet "nginx" (pods labelled for the
// readiness gate) and Service "nginx".
func createNginx(ctx context.Context, t *testing.T, ns string, replicas int32) {
	t.Helper()
	if err := stack.CreateNginx(ctx, kube, ns, replicas); err != nil {
		t.Fatal(err)
	}
}

// loadSample reads a quick-start sample IHPA from the API's testdata.
func loadSample(t *testing.T, name string) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "examples", "quickstart", name))
	if err != nil {
		t.Fatal(err)
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict(raw, ihpa); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return ihpa
}

// observation is what a test sees of an autoscaled StatefulSet at one moment.
type observation struct {
	specReplicas   int32
	pods           int // pods not being deleted
	online, cutoff []string
	readyEndpoints int
	rpSpec         string
	ihpaConditions string
}

func (o observation) String() string {
	return fmt.Sprintf("sts.spec.replicas=%d pods=%d online=%v cutoff=%v readyEndpoints=%d rp={%s} ihpa=[%s]",
		o.specReplicas, o.pods, o.online, o.cutoff, o.readyEndpoints, o.rpSpec, o.ihpaConditions)
}

// observe reads the StatefulSet, its pods (state label and online condition must agree), the
// Service's ready endpoints, the ReplicaProfile and the IHPA's conditions.
func observe(ctx context.Context, ns, ihpaName string) (observation, error) {
	var o observation
	sts, err := kube.AppsV1().StatefulSets(ns).Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		return o, err
	}
	o.specReplicas = ptr.Deref(sts.Spec.Replicas, 0)
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		return o, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		o.pods++
		online := stack.PodCondition(&p, v1alpha1.PodOnlineConditionType)
		switch p.Labels[v1alpha1.PodStateLabelKey] {
		case string(v1alpha1.PodStateCutoff):
			if online == corev1.ConditionFalse {
				o.cutoff = append(o.cutoff, p.Name)
			}
		case "":
			if p.Status.Phase == corev1.PodRunning && online == corev1.ConditionTrue {
				o.online = append(o.online, p.Name)
			}
		}
	}
	sort.Strings(o.online)
	sort.Strings(o.cutoff)
	slices, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=nginx"})
	if err != nil {
		return o, err
	}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, false) {
				o.readyEndpoints++
			}
		}
	}
	rp := &v1alpha1.ReplicaProfile{}
	if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: ihpaName}, rp); err == nil {
		o.rpSpec = fmt.Sprintf("online=%d cutoff=%d standby=%d", rp.Spec.OnlineReplicas, rp.Spec.CutoffReplicas, rp.Spec.StandbyReplicas)
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: ihpaName}, ihpa); err == nil {
		var parts []string
		for _, c := range ihpa.Status.Conditions {
			parts = append(parts, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
		}
		if g := ihpa.Status.Gray; g != nil {
			parts = append(parts, fmt.Sprintf("gray=%d%%@%s", g.GrayPercent, g.LastUpdateTime.Format(time.TimeOnly)))
		}
		o.ihpaConditions = strings.Join(parts, " ")
	}
	return o, nil
}

// ihpaEvents lists the messages of the IHPA's events, oldest first.
func ihpaEvents(ctx context.Context, ns, name string) []string {
	list, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return []string{err.Error()}
	}
	sort.Slice(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).Before(eventTime(&list.Items[j])) })
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Message))
	}
	return out
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// minuteOfHour is the cron minute field of t (UTC) plus offset minutes.
func minuteOfHour(t time.Time, offset int) int {
	return (t.UTC().Minute() + offset + 60) % 60
}

// observationError describes a failed observation, or nothing when the poll's deadline caused it
// (so that the failure message keeps the last real observation).
func observationError(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return ""
	}
	return err.Error()
}

// dumpOnFailure logs the namespace's events when the test fails.
func dumpOnFailure(t *testing.T, ns string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		list, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Logf("listing events: %v", err)
			return
		}
		sort.Slice(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).Before(eventTime(&list.Items[j])) })
		var lines []string
		for _, e := range list.Items {
			lines = append(lines, fmt.Sprintf("%s %s %s/%s %s: %s", eventTime(&e).Format(time.TimeOnly), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message))
		}
		t.Logf("events of %s:\n%s", ns, strings.Join(lines, "\n"))
	})
}
