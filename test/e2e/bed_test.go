package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/test/poll"
)

// newNamespace creates a namespace for one test and deletes it when the test ends.
func newNamespace(ctx context.Context, t *testing.T) string {
	t.Helper()
	ns, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = bed.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// TestBedRunsDeploymentPods proves the scheduler, the controllers and kwok work together: a
// Deployment's pods are scheduled onto kwok nodes and become Running and Ready.
func TestBedRunsDeploymentPods(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(ctx, t)
	labelsWeb := map[string]string{"app": "web"}
	_, err := bed.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labelsWeb},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labelsWeb},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	poll.Until(ctx, t, time.Minute, "3 pods Running and Ready on kwok nodes", func(ctx context.Context) (string, bool, error) {
		pods, err := bed.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(labelsWeb).String()})
		if err != nil {
			return err.Error(), false, nil
		}
		var seen []string
		ready := 0
		for _, pod := range pods.Items {
			isReady := pod.Status.Phase == corev1.PodRunning && podReady(&pod)
			seen = append(seen, fmt.Sprintf("%s phase=%s ready=%t node=%q ip=%s", pod.Name, pod.Status.Phase, isReady, pod.Spec.NodeName, pod.Status.PodIP))
			if isReady && strings.HasPrefix(pod.Spec.NodeName, "kwok-node-") && pod.Status.PodIP != "" {
				ready++
			}
		}
		return strings.Join(seen, "; "), ready == 3 && len(pods.Items) == 3, nil
	})
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestBedAggregatesLoopbackAPIServer proves API aggregation reaches a server on 127.0.0.1 through
// an ExternalName Service, which is how the adapter is served in every later e2e test.
func TestBedAggregatesLoopbackAPIServer(t *testing.T) {
	ctx := context.Background()
	const group, version = "smoke.test.kapacitystack.io", "v1"
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/"+group+"/"+version {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: group + "/" + version,
			APIResources: []metav1.APIResource{{Name: "widgets", Kind: "Widget", Namespaced: true,
				Verbs: metav1.Verbs{"get", "list"}}},
		})
	}))
	defer server.Close()
	port := serverPort(t, server.URL)

	ns := newNamespace(ctx, t)
	_, err := bed.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke-api"},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service: %v", err)
	}
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		t.Fatalf("aggregator client: %v", err)
	}
	name := version + "." + group
	_, err = apiServices.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:               &apiregistrationv1.ServiceReference{Namespace: ns, Name: "smoke-api", Port: ptr.To(int32(port))},
			Group:                 group,
			Version:               version,
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       100,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating APIService: %v", err)
	}
	t.Cleanup(func() {
		_ = apiServices.ApiregistrationV1().APIServices().Delete(context.Background(), name, metav1.DeleteOptions{})
	})

	kubectl := filepath.Join(bed.BinDir, "kubectl")
	poll.Until(ctx, t, time.Minute, "kubectl get --raw through the aggregator", func(ctx context.Context) (string, bool, error) {
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", bed.Kubeconfig,
			"get", "--raw", "/apis/"+group+"/"+version).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out), false, nil
		}
		var list metav1.APIResourceList
		if err := json.Unmarshal(out, &list); err != nil {
			return fmt.Sprintf("undecodable answer %q: %v", out, err), false, nil
		}
		ok := len(list.APIResources) == 1 && list.APIResources[0].Name == "widgets"
		return string(out), ok, nil
	})
}

func serverPort(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parsing %s: %v", rawURL, err)
	}
	_, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatalf("splitting %s: %v", u.Host, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("port of %s: %v", rawURL, err)
	}
	return port
}

// TestBedPrometheusScrapes proves Prometheus runs, scrapes and answers queries.
func TestBedPrometheusScrapes(t *testing.T) {
	ctx := context.Background()
	query := bed.PrometheusURL + "/api/v1/query?query=" + url.QueryEscape(`up{job="prometheus"}`)
	poll.Until(ctx, t, time.Minute, "prometheus has scraped itself", func(ctx context.Context) (string, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, query, nil)
		if err != nil {
			return "", false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error(), false, nil
		}
		defer resp.Body.Close()
		var answer struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			return fmt.Sprintf("%s: undecodable: %v", resp.Status, err), false, nil
		}
		seen := fmt.Sprintf("%s %+v", answer.Status, answer.Data.Result)
		return seen, answer.Status == "success" && len(answer.Data.Result) == 1 && answer.Data.Result[0].Value[1] == "1", nil
	})
}
