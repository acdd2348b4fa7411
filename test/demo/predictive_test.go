package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster/demo"
	"github.com/kapacitystack/kapacity/test/poll"
)

// The predictive quick-start's objects, as the demo prints them.
const (
	predictiveIHPA     = "predictive-sample"
	predictivePortrait = "predictive-sample-predictive"
	predictiveResult   = "predictive-sample-predictive-result"
)

var hpResource = schema.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Resource: "horizontalportraits"}

// checkPredictiveOutput checks the demo printed the commands to watch the predictive sample and
// how long its training took: under a minute, as the issue asks of two cores.
func checkPredictiveOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"kubectl get ihpa,hp -n demo -w",
		"kubectl get statefulset -n demo nginx -w",
		"kubectl get hp -n demo " + predictivePortrait + " -o jsonpath=",
		"kubectl get configmap -n demo " + predictiveResult + " -o yaml",
		"epoch 1/", // training progress
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`The demo's training took (\S+);`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("the demo's closing note does not say how long its training took")
	}
	took, err := time.ParseDuration(m[1])
	if err != nil || took <= 0 || took >= time.Minute {
		t.Errorf("the demo's training took %q (%v), want under a minute", m[1], err)
	}
}

// checkPredictiveResult checks what a newcomer looks at: the HorizontalPortrait generated a
// replica time series from the job's result ConfigMap, and the job's run is reported on its Job.
func checkPredictiveResult(ctx context.Context, t *testing.T, kube kubernetes.Interface, dyn dynamic.Interface) {
	t.Helper()
	hp, err := dyn.Resource(hpResource).Namespace(demo.Namespace).Get(ctx, predictivePortrait, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("HorizontalPortrait %s/%s: %v", demo.Namespace, predictivePortrait, err)
	}
	series, _, _ := unstructured.NestedSlice(hp.Object, "status", "portraitData", "timeSeries", "timeSeries")
	conds, _, _ := unstructured.NestedSlice(hp.Object, "status", "conditions")
	generated := false
	for _, c := range conds {
		c, _ := c.(map[string]any)
		generated = generated || (c["type"] == string(v1alpha1.PortraitGenerated) && c["status"] == "True")
	}
	if len(series) == 0 || !generated {
		t.Errorf("HorizontalPortrait %s/%s: %d points, conditions %v; want a generated time series", demo.Namespace, predictivePortrait, len(series), conds)
	}
	cm, err := kube.CoreV1().ConfigMaps(demo.Namespace).Get(ctx, predictiveResult, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("result ConfigMap: %v", err)
	}
	if cm.Data["type"] != "TimeSeries" || cm.Data["timeSeries"] == "" {
		t.Errorf("ConfigMap %s/%s = %v, want a TimeSeries result", demo.Namespace, predictiveResult, cm.Data)
	}
	t.Logf("HorizontalPortrait %s/%s: %v; ConfigMap %s: %v", demo.Namespace, predictivePortrait, series, predictiveResult, cm.Data)
	poll.Until(ctx, t, time.Minute, "an event on a Job of the sample saying its algorithm ran", func(ctx context.Context) (string, bool, error) {
		events, err := kube.CoreV1().Events(demo.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Job"})
		if err != nil {
			return err.Error(), false, nil
		}
		var seen []string
		for _, e := range events.Items {
			seen = append(seen, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message))
			if e.Reason == "AlgorithmRun" && strings.Contains(e.Message, "wrote ConfigMap "+demo.Namespace+"/"+predictiveResult) {
				return strings.Join(seen, "; "), true, nil
			}
		}
		return strings.Join(seen, "; "), false, nil
	})
}

// observation is the predictive sample at one moment: the Ingress' request rate as the adapter
// serves it and the replicas the StatefulSet wants.
type observation struct {
	at       time.Time
	qps      float64
	replicas int32
}

func (o observation) String() string {
	return fmt.Sprintf("%s %.1f req/s %d replicas", o.at.Format(time.TimeOnly), o.qps, o.replicas)
}

// checkScaledAheadOfRise watches the StatefulSet's replicas and its Ingress' traffic, as the
// printed commands do, through one rise of the traffic: with the replicas sized for the quiet
// traffic, they must go up to what the busy traffic needs (within one: the forecast is not exact)
// before the traffic rises. A rise the watch did not see from a quiet start is not judged; the next
// one is (one every 10 minutes).
func checkScaledAheadOfRise(ctx context.Context, t *testing.T, kube kubernetes.Interface, out string) {
	t.Helper()
	m := regexp.MustCompile(`rises from about (\d+) to (\d+) requests/s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("the demo does not say how the predictive sample's traffic rises")
	}
	low, _ := strconv.ParseFloat(m[1], 64)
	high, _ := strconv.ParseFloat(m[2], 64)
	// Midway in ratio: the daily envelope (±30 %) moves both levels, never across it.
	busyAbove := math.Sqrt(low * high)
	needed := func(qps float64) int32 { return int32(math.Ceil(qps/10 - 1e-9)) } // 10 requests/s per pod
	var (
		history []observation
		armed   *observation // a quiet moment with the replicas sized for quiet traffic
		scaled  *observation // the first moment after it with more replicas, still quiet
		last    time.Time
	)
	// A rise within 10 minutes, and another 10 minutes later should the first be seen too late.
	poll.Until(ctx, t, 16*time.Minute, "nginx scaled up before its traffic rises", func(ctx context.Context) (string, bool, error) {
		if time.Since(last) < 2*time.Second {
			return "", false, nil
		}
		last = time.Now()
		o, err := observe(ctx, kube)
		if err != nil {
			return err.Error(), false, nil
		}
		history = append(history, o)
		seen := fmt.Sprintf("%d observations, the last %s", len(history), o)
		switch {
		case o.qps <= busyAbove && armed == nil:
			if o.replicas <= needed(o.qps)+1 {
				armed = &o
			}
		case o.qps <= busyAbove && scaled == nil:
			if o.replicas < armed.replicas {
				armed = &o // still scaling down for the quiet part
			} else if o.replicas > armed.replicas {
				scaled = &o
			}
		case o.qps <= busyAbove:
			scaled.replicas = max(scaled.replicas, o.replicas)
		case armed == nil:
			// Busy since the watch began: wait for the next quiet part.
		case scaled == nil:
			return seen, false, fmt.Errorf("the traffic rose at %s (%.1f requests/s) with nginx still at %d replicas since %s: not scaled ahead; observations: %v",
				o.at.Format(time.TimeOnly), o.qps, o.replicas, armed.at.Format(time.TimeOnly), history)
		default:
			if o.replicas < needed(o.qps)-1 || scaled.replicas < needed(o.qps)-1 {
				return seen, false, fmt.Errorf("nginx went up to %d replicas at %s, but the traffic that rose at %s (%.1f requests/s) needs %d; observations: %v",
					scaled.replicas, scaled.at.Format(time.TimeOnly), o.at.Format(time.TimeOnly), o.qps, needed(o.qps), history)
			}
			t.Logf("nginx went from %d replicas (%s) to %d at %s, %s before its traffic rose to %.1f requests/s (%d replicas' worth) at %s",
				armed.replicas, armed.at.Format(time.TimeOnly), scaled.replicas, scaled.at.Format(time.TimeOnly),
				o.at.Sub(scaled.at).Round(time.Second), o.qps, needed(o.qps), o.at.Format(time.TimeOnly))
			return seen, true, nil
		}
		return seen, false, nil
	})
}

// observe reads the Ingress' request rate from the adapter (custom.metrics.k8s.io, through
// kube-apiserver) and the StatefulSet's replicas.
func observe(ctx context.Context, kube kubernetes.Interface) (observation, error) {
	o := observation{at: time.Now()}
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/apis/custom.metrics.k8s.io/v1beta2/namespaces", demo.Namespace,
		"ingresses.networking.k8s.io", "nginx-server", "nginx_ingress_controller_requests_rate").DoRaw(ctx)
	if err != nil {
		return o, fmt.Errorf("the Ingress' request rate: %w: %s", err, raw)
	}
	var list struct {
		Items []struct {
			Value resource.Quantity `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Items) != 1 {
		return o, fmt.Errorf("the Ingress' request rate: %v: %s", err, raw)
	}
	o.qps = list.Items[0].Value.AsApproximateFloat64()
	sts, err := kube.AppsV1().StatefulSets(demo.Namespace).Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		return o, err
	}
	o.replicas = ptr.Deref(sts.Spec.Replicas, 0)
	return o, nil
}
