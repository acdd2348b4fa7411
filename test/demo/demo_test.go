package demo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/demo"
	"github.com/kapacitystack/kapacity/test/poll"
)

// lockedBuffer is the demo's output, written by the demo and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

var ihpaResource = schema.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Resource: "intelligenthorizontalpodautoscalers"}

// TestDemoRunsEverything is `make demo` as a user runs it: the printed kubeconfig reaches a cluster
// where the native HPA reads the adapter's metric, the sample IHPA is active, the manager's webhook
// gave the batch pods their readiness gate; the predictive sample's forecaster was trained in under
// a minute, its HorizontalPortrait holds a result, and its StatefulSet is scaled up before its
// traffic rises; and Ctrl-C (ctx) stops everything and removes the files.
func TestDemoRunsEverything(t *testing.T) {
	binDir, err := localcluster.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, out, localcluster.Options{BinDir: binDir, Nodes: 1, HPASyncPeriod: 5 * time.Second})
	}()
	stopped := false
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			stopped = true
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("the demo did not stop within a minute of Ctrl-C; output:\n%s", out)
		}
	}
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	// printed waits until the demo prints text, failing if it returns first.
	printed := func(timeout time.Duration, text string) {
		t.Helper()
		poll.Until(ctx, t, timeout, fmt.Sprintf("the demo to print %q", text), func(context.Context) (string, bool, error) {
			select {
			case err := <-done:
				stopped = true
				return out.String(), false, fmt.Errorf("the demo returned before it was ready: %v", err)
			default:
			}
			return out.String(), strings.Contains(out.String(), text), nil
		})
	}

	printed(3*time.Minute, "kubectl get nodes")
	t.Logf("the demo printed how to reach its cluster %s after the start", time.Since(began).Round(time.Second))
	m := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no KUBECONFIG in the demo's output:\n%s", out)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", m[1])
	if err != nil {
		t.Fatalf("loading the printed kubeconfig: %v", err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)

	poll.Until(ctx, t, 2*time.Minute, "HPA demo/web reading http_requests_per_second from the adapter", func(ctx context.Context) (string, bool, error) {
		hpa, err := kube.AutoscalingV2().HorizontalPodAutoscalers(demo.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false, nil
		}
		return fmt.Sprintf("conditions %s, metrics %d", hpaConditions(hpa), len(hpa.Status.CurrentMetrics)),
			len(hpa.Status.CurrentMetrics) > 0 && hpa.Status.CurrentMetrics[0].Pods != nil, nil
	})
	poll.Until(ctx, t, 2*time.Minute, "IHPA demo/batch active, its pods gated by the manager's webhook", func(ctx context.Context) (string, bool, error) {
		ihpa, err := dyn.Resource(ihpaResource).Namespace(demo.Namespace).Get(ctx, "batch", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false, nil
		}
		conds, _, _ := unstructured.NestedSlice(ihpa.Object, "status", "conditions")
		active := false
		var seen []string
		for _, c := range conds {
			c, _ := c.(map[string]any)
			seen = append(seen, fmt.Sprintf("%v=%v(%v)", c["type"], c["status"], c["reason"]))
			active = active || (c["type"] == "ScalingActive" && c["status"] == "True")
		}
		pods, err := kube.CoreV1().Pods(demo.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=batch"})
		if err != nil {
			return err.Error(), false, nil
		}
		gated := 0
		for _, p := range pods.Items {
			for _, g := range p.Spec.ReadinessGates {
				if g.ConditionType == corev1.PodConditionType(v1alpha1.PodOnlineConditionType) {
					gated++
				}
			}
		}
		return fmt.Sprintf("IHPA conditions %v; %d of %d batch pods gated", seen, gated, len(pods.Items)),
			active && len(pods.Items) > 0 && gated == len(pods.Items), nil
	})

	// The predictive sample: backfill, Prometheus loading it, training, the first job.
	printed(6*time.Minute, "Press Ctrl-C")
	t.Logf("the predictive sample was ready %s after the start; the demo's output:\n%s", time.Since(began).Round(time.Second), out)
	checkPredictiveOutput(t, out.String())
	checkPredictiveResult(ctx, t, kube, dyn)
	checkConsoleListsIHPAs(ctx, t, out.String(), "batch", "predictive-sample")
	checkScaledAheadOfRise(ctx, t, kube, out.String())

	bedDir := regexp.MustCompile(`Files and logs: (\S+)`).FindStringSubmatch(out.String())
	if err := stop(); err != nil {
		t.Fatalf("the demo failed: %v\noutput:\n%s", err, out)
	}
	if bedDir != nil {
		if _, err := os.Stat(bedDir[1]); !os.IsNotExist(err) {
			t.Errorf("the demo's folder %s is still there after Ctrl-C (stat: %v)", bedDir[1], err)
		}
	}
}

func hpaConditions(hpa *autoscalingv2.HorizontalPodAutoscaler) string {
	var s []string
	for _, c := range hpa.Status.Conditions {
		s = append(s, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return strings.Join(s, ",")
}

// checkConsoleListsIHPAs opens the web console at the URL the demo printed, as a browser would
// (its token becomes a cookie), and finds every named IHPA on its list page.
func checkConsoleListsIHPAs(ctx context.Context, t *testing.T, out string, names ...string) {
	t.Helper()
	m := regexp.MustCompile(`Web console[^:]*: (http://\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo printed no web console URL:\n%s", out)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	poll.Until(ctx, t, time.Minute, "the console listing the demo's IHPAs", func(ctx context.Context) (string, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m[1], nil)
		if err != nil {
			return "", false, err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return err.Error(), false, nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if err != nil {
			return err.Error(), false, nil
		}
		var missing []string
		for _, n := range names {
			if !strings.Contains(string(body), ">"+n+"<") {
				missing = append(missing, n)
			}
		}
		return fmt.Sprintf("%s, missing %v", resp.Status, missing), resp.StatusCode == http.StatusOK && len(missing) == 0, nil
	})
}
