package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/adapter/servingcert"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// createWorkload creates a Deployment fed by the simulator and waits for its pods.
func createWorkload(ctx context.Context, t *testing.T, env *stack.Adapter, ns, name string, replicas int32, requestsPerSecond float64) {
	t.Helper()
	if err := stack.CreateWorkload(ctx, bed.Client, env.Sim, ns, name, replicas, requestsPerSecond); err != nil {
		t.Fatal(err)
	}
	waitReplicas(ctx, t, ns, name, replicas, time.Minute)
}

// waitReplicas polls until the Deployment wants and has exactly want ready replicas.
func waitReplicas(ctx context.Context, t *testing.T, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	poll.Until(ctx, t, timeout, fmt.Sprintf("deployment %s/%s at %d ready replicas", ns, name, want), func(ctx context.Context) (string, bool, error) {
		d, err := bed.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error(), false, nil
		}
		seen := fmt.Sprintf("spec=%d ready=%d; %s", ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas, describeHPA(ctx, ns, name))
		return seen, ptr.Deref(d.Spec.Replicas, 0) == want && d.Status.ReadyReplicas == want, nil
	})
}

// describeHPA summarises the HPA of a workload for failure messages.
func describeHPA(ctx context.Context, ns, name string) string {
	hpa, err := bed.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "no HPA"
	}
	var parts []string
	for _, c := range hpa.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	metrics, _ := json.Marshal(hpa.Status.CurrentMetrics)
	return fmt.Sprintf("hpa desired=%d current=%d metrics=%s conditions=[%s]", hpa.Status.DesiredReplicas, hpa.Status.CurrentReplicas, metrics, strings.Join(parts, "; "))
}

func createHPA(ctx context.Context, t *testing.T, ns, name string, minReplicas, maxReplicas int32, metric autoscalingv2.MetricSpec) {
	t.Helper()
	_, err := bed.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To(minReplicas),
			MaxReplicas:    maxReplicas,
			Metrics:        []autoscalingv2.MetricSpec{metric},
			// No scale-down stabilization: the test observes scale-down in seconds, not minutes.
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating HPA %s: %v", name, err)
	}
}

func averageValue(v string) autoscalingv2.MetricTarget {
	q := resource.MustParse(v)
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}
}

// TestAdapterPodsMetricScalesDeployment: the real HPA controller scales a Deployment on a Pods
// metric served by the adapter, up when traffic rises and down when it falls.
func TestAdapterPodsMetricScalesDeployment(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	ns := newNamespace(ctx, t)
	createWorkload(ctx, t, env, ns, "web", 1, 50)

	waitRaw(ctx, t, 90*time.Second, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second", func(body []byte) bool {
		return strings.Contains(string(body), `"kind":"MetricValueList"`) && strings.Contains(string(body), `"name":"web-`)
	})
	createHPA(ctx, t, ns, "web", 1, 10, autoscalingv2.MetricSpec{
		Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
			Target: averageValue("10"),
		},
	})
	// 50 req/s at 10 per pod: 5 pods.
	waitReplicas(ctx, t, ns, "web", 5, 2*time.Minute)
	env.Sim.SetTraffic(ns+"/web", 10)
	waitReplicas(ctx, t, ns, "web", 1, 2*time.Minute)
}

// TestAdapterExternalMetricScalesDeployment: an External-metric HPA follows a namespace-wide
// request rate.
func TestAdapterExternalMetricScalesDeployment(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	ns := newNamespace(ctx, t)
	createWorkload(ctx, t, env, ns, "ext", 1, 75)
	waitRaw(ctx, t, 90*time.Second, "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/requests_per_second", func(body []byte) bool {
		return strings.Contains(string(body), `"metricName":"requests_per_second"`)
	})
	createHPA(ctx, t, ns, "ext", 1, 10, autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
			Target: averageValue("25"),
		},
	})
	// 75 req/s at 25 per pod: 3 pods.
	waitReplicas(ctx, t, ns, "ext", 3, 2*time.Minute)
}

// TestAdapterWorkloadAggregateScalesDeployment: an Object metric on the Deployment itself, summed by
// the adapter over the pods matching the Deployment's pod-name pattern.
func TestAdapterWorkloadAggregateScalesDeployment(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	ns := newNamespace(ctx, t)
	createWorkload(ctx, t, env, ns, "agg", 2, 40)
	body := waitRaw(ctx, t, 90*time.Second, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/deployments.apps/agg/http_requests_per_second", func(body []byte) bool {
		return strings.Contains(string(body), `"kind":"Deployment"`)
	})
	t.Logf("workload aggregate: %s", body)
	waitRaw(ctx, t, time.Minute, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/deployments.apps/agg/http_requests_per_second", func(body []byte) bool {
		return strings.Contains(string(body), `"kind":"Deployment"`) && strings.Contains(string(body), `"kapacitystack.io/ready-pods-only":"true"`)
	}, "metricLabelSelector=kapacitystack.io/ready-pods-only=true")
	createHPA(ctx, t, ns, "agg", 1, 10, autoscalingv2.MetricSpec{
		Type: autoscalingv2.ObjectMetricSourceType,
		Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "agg"},
			Metric:          autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
			Target:          averageValue("10"),
		},
	})
	// 40 req/s in total at 10 per pod: 4 pods.
	waitReplicas(ctx, t, ns, "agg", 4, 2*time.Minute)
}

// TestAdapterServesKubectlTop: metrics.k8s.io answers `kubectl top pods` from Prometheus.
func TestAdapterServesKubectlTop(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	ns := newNamespace(ctx, t)
	createWorkload(ctx, t, env, ns, "top", 2, 20)
	kubectl := filepath.Join(bed.BinDir, "kubectl")
	poll.Until(ctx, t, 90*time.Second, "kubectl top pods lists both pods with CPU and memory", func(ctx context.Context) (string, bool, error) {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", bed.Kubeconfig, "top", "pods", "-n", ns, "--no-headers").CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out), false, nil
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		ok := len(lines) == 2
		for _, line := range lines {
			fields := strings.Fields(line)
			// name, CPU (e.g. 120m), memory (64Mi)
			ok = ok && len(fields) == 3 && strings.HasPrefix(fields[0], "top-") && strings.HasSuffix(fields[1], "m") && fields[2] == "64Mi"
		}
		return string(out), ok, nil
	})
}

// TestAdapterPrometheusDownKeepsReplicas: when Prometheus is unreachable the adapter answers an
// error, the HPA reports the failed metric, and the Deployment is not scaled down although the
// traffic dropped to nothing meanwhile.
func TestAdapterPrometheusDownKeepsReplicas(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	ns := newNamespace(ctx, t)
	createWorkload(ctx, t, env, ns, "steady", 1, 30)
	createHPA(ctx, t, ns, "steady", 1, 10, autoscalingv2.MetricSpec{
		Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
			Target: averageValue("10"),
		},
	})
	waitReplicas(ctx, t, ns, "steady", 3, 2*time.Minute)

	env.Prometheus.Stop()
	t.Cleanup(func() {
		if err := env.Prometheus.Start(); err != nil {
			t.Errorf("restarting the Prometheus proxy: %v", err)
		}
	})
	env.Sim.SetTraffic(ns+"/steady", 0)

	// The HPA controller records a FailedGetPodsMetric event on each failed sync; once it has
	// failed several syncs in a row the replicas must still be 3.
	poll.Until(ctx, t, 2*time.Minute, "HPA fails to get the metric on 3 syncs", func(ctx context.Context) (string, bool, error) {
		events, err := bed.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=steady"})
		if err != nil {
			return err.Error(), false, nil
		}
		var failed int32
		var seen []string
		for _, e := range events.Items {
			seen = append(seen, fmt.Sprintf("%s x%d: %s", e.Reason, e.Count, e.Message))
			if e.Reason == "FailedGetPodsMetric" {
				failed += max(e.Count, 1)
			}
		}
		return strings.Join(seen, " | ") + "; " + describeHPA(ctx, ns, "steady"), failed >= 3, nil
	})
	d, err := bed.Client.AppsV1().Deployments(ns).Get(ctx, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(d.Spec.Replicas, 0); got != 3 {
		t.Fatalf("replicas = %d while Prometheus was down, want 3 (unchanged); %s", got, describeHPA(ctx, ns, "steady"))
	}
	hpa, err := bed.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hpa.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive && (c.Status != corev1.ConditionFalse || c.Reason != "FailedGetPodsMetric") {
			t.Fatalf("ScalingActive = %s (%s), want False (FailedGetPodsMetric)", c.Status, c.Reason)
		}
	}
}

// TestAdapterExposesOwnMetrics: the adapter's /metrics carries its own health signals: discovery,
// Prometheus calls, requests per API and metric, and the config reload status.
func TestAdapterExposesOwnMetrics(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	config := rest.CopyConfig(bed.Config)
	config.Host = fmt.Sprintf("https://127.0.0.1:%d", env.Port)
	// The adapter's serving certificate is self-signed; the client certificate still
	// authenticates (the adapter trusts the cluster CA through delegated authentication).
	config.TLSClientConfig.CAData, config.TLSClientConfig.Insecure = nil, true
	client, err := rest.HTTPClientFor(config)
	if err != nil {
		t.Fatal(err)
	}
	// Make sure at least one metric request has been served.
	_, _ = getRaw(ctx, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/requests_per_second")
	want := []string{
		`kapacity_adapter_relist_duration_seconds_count{outcome="success"}`,
		`kapacity_adapter_discovered_series`,
		`kapacity_prometheus_request_duration_seconds_count{endpoint="series",outcome="success"}`,
		`kapacity_adapter_request_duration_seconds_count{api="external"`,
		`kapacity_adapter_config_last_reload_successful 1`,
	}
	poll.Until(ctx, t, time.Minute, "adapter /metrics", func(ctx context.Context) (string, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, config.Host+"/metrics", nil)
		if err != nil {
			return "", false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err.Error(), false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var missing []string
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = append(missing, w)
			}
		}
		return fmt.Sprintf("%s; missing %q", resp.Status, missing), resp.StatusCode == http.StatusOK && len(missing) == 0, nil
	})
}

// TestAdapterAPIServicesVerifyTheAdapter: no APIService of the adapter skips TLS verification;
// each carries the CA the adapter keeps in its Secret, and kube-apiserver, verifying the adapter's
// certificate against it, reports every one Available.
func TestAdapterAPIServicesVerifyTheAdapter(t *testing.T) {
	env := useAdapter(t)
	ctx := context.Background()
	secret, err := bed.Client.CoreV1().Secrets(env.Namespace).Get(ctx, "kapacity-adapter-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the adapter's certificate Secret: %v", err)
	}
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range servingcert.DefaultAPIServices {
		svc, err := apiServices.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.InsecureSkipTLSVerify || len(svc.Spec.CABundle) == 0 || !bytes.Equal(svc.Spec.CABundle, secret.Data[servingcert.CABundleKey]) {
			t.Errorf("%s: insecureSkipTLSVerify=%v, caBundle of %d bytes, want the Secret's bundle and verification", name,
				svc.Spec.InsecureSkipTLSVerify, len(svc.Spec.CABundle))
		}
		available := false
		for _, c := range svc.Status.Conditions {
			available = available || (c.Type == apiregistrationv1.Available && c.Status == apiregistrationv1.ConditionTrue)
		}
		if !available {
			t.Errorf("%s is not Available: %+v", name, svc.Status.Conditions)
		}
	}
}
