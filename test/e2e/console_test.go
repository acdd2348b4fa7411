package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/console"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// ArtifactsEnv names the folder where browser tests leave screenshots and measurements
// (default: test/e2e/artifacts, ignored by git).
const ArtifactsEnv = "KAPACITY_ARTIFACTS"

// consoleIHPA keeps Deployment web at 3 replicas (Static) and has a Cron provider whose window
// opens once a year, so the page must show a provider that offers nothing.
const consoleIHPA = `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: IntelligentHorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  portraitProviders:
  - {type: Static, priority: 1, static: {replicas: 3}}
  - type: Cron
    priority: 2
    cron:
      crons:
      - {name: new-year, replicas: 8, start: "0 0 1 1 *", end: "0 1 1 1 *"}
  behavior:
    scaleDown:
      grayStrategy: {grayState: Cutoff, changeIntervalSeconds: 30, changePercent: 50, observationSeconds: 60}
`

// consoleForecastIHPA scales Deployment api with a Predictive portrait only, whose job never runs
// during the test (once a year): the test writes the job's result itself, as kapacity recommend
// does (through config/portraitresult), with the traffic forecast.
const consoleForecastIHPA = `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: IntelligentHorizontalPodAutoscaler
metadata:
  name: forecast
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 1
  maxReplicas: 10
  portraitProviders:
  - type: Dynamic
    priority: 1
    dynamic:
      portraitType: Predictive
      metrics:
      - {type: Resource, resource: {name: cpu, target: {type: AverageValue, averageValue: 1m}}}
      - {type: Pods, pods: {metric: {name: kube_pod_status_ready}, target: {type: AverageValue, averageValue: "1"}}}
      - name: qps
        type: External
        external: {metric: {name: requests_per_second}, target: {type: AverageValue, averageValue: "10"}}
      algorithm:
        type: ExternalJob
        externalJob:
          job:
            type: CronJob
            cronJob:
              template:
                spec:
                  schedule: "0 0 1 1 *"
                  jobTemplate:
                    spec:
                      template:
                        spec:
                          containers:
                          - {name: algorithm, args: [--scaling-freq=10min]}
                          restartPolicy: OnFailure
          resultSource: {type: ConfigMap}
`

// forecastResult is the result of consoleForecastIHPA's job, written at now: 2 replicas, and the
// traffic forecast every 10 minutes from half an hour ago to 3 hours ahead.
func forecastResult(t *testing.T, now time.Time) (map[string]string, float64, float64) {
	t.Helper()
	band := &portraitresult.Band{Quantile: 0.9, Upper: map[string][]portraitresult.Point{}, Median: map[string][]portraitresult.Point{}}
	start := now.Truncate(10 * time.Minute).Add(-30 * time.Minute)
	var upper, median float64
	for i := range 22 {
		at := start.Add(time.Duration(i) * 10 * time.Minute)
		upper, median = 60+float64(i), 40+float64(i)
		band.Upper["qps"] = append(band.Upper["qps"], portraitresult.Point{Time: at, Value: upper})
		band.Median["qps"] = append(band.Median["qps"], portraitresult.Point{Time: at, Value: median})
	}
	data, err := portraitresult.Encode(portraitresult.Result{ExpireTime: start.Add(22 * 10 * time.Minute),
		Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: now.Add(-time.Minute).Unix(), Replicas: 2}}, Band: band})
	if err != nil {
		t.Fatal(err)
	}
	return data, upper, median
}

// TestConsole drives `kapacity console` in Debian's chromium: the list, detail and cost pages
// against the cluster's state, as an admin and as a user who may read one namespace only.
func TestConsole(t *testing.T) {
	env := useAdapter(t)
	useManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	artifacts := artifactsDir(t)

	nsA, nsB := "console-a", "console-b"
	for _, ns := range []string{nsA, nsB} {
		createNamespace(ctx, t, ns)
		if err := stack.CreateWorkload(ctx, kube, env.Sim, ns, "web", 2, 30); err != nil {
			t.Fatal(err)
		}
		ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
		if err := yaml.UnmarshalStrict([]byte(consoleIHPA), ihpa); err != nil {
			t.Fatal(err)
		}
		ihpa.Namespace = ns
		if err := crClient.Create(ctx, ihpa); err != nil {
			t.Fatal(err)
		}
	}
	if err := stack.CreateWorkload(ctx, kube, env.Sim, nsA, "api", 1, 30); err != nil {
		t.Fatal(err)
	}
	forecastIHPA := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict([]byte(consoleForecastIHPA), forecastIHPA); err != nil {
		t.Fatal(err)
	}
	forecastIHPA.Namespace = nsA
	if err := crClient.Create(ctx, forecastIHPA); err != nil {
		t.Fatal(err)
	}
	resultData, lastUpper, lastMedian := forecastResult(t, time.Now())
	resultCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: portraitresult.ConfigMapName("forecast-predictive"),
		Labels: map[string]string{portraitresult.LabelKey: portraitresult.LabelValue}}, Data: resultData}
	if _, err := kube.CoreV1().ConfigMaps(nsA).Create(ctx, resultCM, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The executor scales web to the portrait's 3 replicas.
	for _, ns := range []string{nsA, nsB} {
		poll.Until(ctx, t, 2*time.Minute, ns+"/web at 3 online replicas", func(ctx context.Context) (string, bool, error) {
			ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
			if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, ihpa); err != nil {
				return "", false, err
			}
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return "", false, err
			}
			return fmt.Sprintf("online=%d pods=%d", ihpa.Status.OnlineReplicas, len(pods.Items)), ihpa.Status.OnlineReplicas == 3 && len(pods.Items) == 3, nil
		})
	}
	alice := restrictUser(ctx, t, "console-alice", nsA)

	admin := startConsole(ctx, t, bed.Config)
	limited := startConsole(ctx, t, alice)
	browser := newBrowser(ctx, t)

	t.Run("list", func(t *testing.T) {
		b := browser.open(t, admin.URL(), "table.list")
		rows := b.strings(t, `Array.from(document.querySelectorAll("tr[data-ihpa]")).map(e => e.dataset.ihpa)`)
		for _, want := range []string{nsA + "/web", nsB + "/web"} {
			if !slices.Contains(rows, want) {
				t.Errorf("the admin's list %v lacks %s", rows, want)
			}
		}
		ihpa := getIHPA(ctx, t, nsA, "web")
		row := `tr[data-ihpa="` + nsA + `/web"] `
		b.expectText(t, row+`[data-field=online]`, strconv.Itoa(int(ihpa.Status.OnlineReplicas)))
		b.expectText(t, row+`[data-field=source]`, ihpa.Status.CurrentPortraitValue.Provider)
		b.expectText(t, row+`[data-field=portrait]`, strconv.Itoa(int(ihpa.Status.CurrentPortraitValue.Replicas)))
		b.expectText(t, row+`[data-field=target]`, "Deployment/web")
		b.screenshot(t, filepath.Join(artifacts, "console-list-admin.png"))
	})

	t.Run("a user sees only the namespace they may read", func(t *testing.T) {
		b := browser.open(t, limited.URL(), "table.list")
		rows := b.strings(t, `Array.from(document.querySelectorAll("tr[data-ihpa]")).map(e => e.dataset.ihpa)`)
		if !slices.Contains(rows, nsA+"/web") || slices.ContainsFunc(rows, func(r string) bool { return !strings.HasPrefix(r, nsA+"/") }) {
			t.Errorf("alice may list IHPAs in %s only, and sees %v", nsA, rows)
		}
		if s := b.text(t, `[data-field=scope]`); !strings.Contains(s, "left out") {
			t.Errorf("the page does not say namespaces were left out: %q", s)
		}
		b.screenshot(t, filepath.Join(artifacts, "console-list-limited.png"))
		// The other namespace's page answers as if it did not exist.
		resp := getPage(t, limited, "/api/v1/namespaces/"+nsB+"/ihpas/web")
		if resp.code != http.StatusNotFound {
			t.Errorf("alice reading %s/web through the console: %d %s, want 404", nsB, resp.code, resp.body)
		}
	})

	t.Run("detail", func(t *testing.T) {
		b := browser.open(t, "http://"+admin.Addr()+"/ihpas/"+nsA+"/web", "#replica-chart svg")
		ihpa := getIHPA(ctx, t, nsA, "web")
		b.expectText(t, `[data-field=online]`, strconv.Itoa(int(ihpa.Status.OnlineReplicas)))
		b.expectText(t, `tr[data-provider="0"] [data-field=replicas]`, "3")
		b.expectText(t, `tr[data-provider="1"] [data-field=replicas]`, "—")
		if s := b.text(t, `[data-field=merged]`); !strings.Contains(s, "Static") {
			t.Errorf("merged: %q, want the Static provider selected", s)
		}
		// The chart's merged line ends at the value in effect (no cron window opens in 2 hours).
		if last := b.strings(t, `[document.querySelector('path[data-series^="merged"]').dataset.last]`); len(last) != 1 || last[0] != "3" {
			t.Errorf("merged line ends at %v, want 3", last)
		}
		pods, err := kube.CoreV1().Pods(nsA).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, p := range pods.Items {
			want = append(want, p.Name)
		}
		slices.Sort(want)
		if got := b.strings(t, `Array.from(document.querySelectorAll("tr[data-pod]")).map(e => e.dataset.pod)`); !slices.Equal(got, want) {
			t.Errorf("pods on the page %v, in the cluster %v", got, want)
		}
		b.expectText(t, `tr[data-condition="ScalingActive"] [data-field=status]`, "True")
		// Measured pods come from the history API once Prometheus has scraped the simulator.
		poll.Until(ctx, t, 2*time.Minute, "measured pods on the detail chart", func(context.Context) (string, bool, error) {
			b.reload(t, "#replica-chart svg")
			last := b.strings(t, `Array.from(document.querySelectorAll('path[data-series^="actual"]')).map(e => e.dataset.last || "")`)
			return fmt.Sprint(last), len(last) == 1 && last[0] == "3", nil
		})
		b.screenshot(t, filepath.Join(artifacts, "console-detail.png"))
	})

	// The job's result, written through the contract, is read by the manager (the predictive
	// provider offers its replicas) and drawn by the console (the forecast's median and band).
	t.Run("forecast", func(t *testing.T) {
		b := browser.open(t, "http://"+admin.Addr()+"/ihpas/"+nsA+"/forecast", "#replica-chart svg")
		poll.Until(ctx, t, 2*time.Minute, "the predictive provider offering the result's 2 replicas, and the measured traffic", func(context.Context) (string, bool, error) {
			b.reload(t, "#traffic-chart svg")
			got := b.text(t, `tr[data-provider="0"] [data-field=replicas]`)
			measured := b.strings(t, `Array.from(document.querySelectorAll('#traffic-chart path[data-series="requests_per_second (measured)"]')).map(e => e.dataset.last || "")`)
			return fmt.Sprintf("replicas %s, measured traffic ends at %v", got, measured), got == "2" && len(measured) == 1 && measured[0] != "", nil
		})
		last := b.strings(t, `["median forecast", "0.9 quantile (upper band)"].map(n => { const e = document.querySelector('#traffic-chart path[data-series="' + n + '"]'); return e ? (e.dataset.last || "") : "missing" })`)
		if want := []string{strconv.FormatFloat(lastMedian, 'f', -1, 64), strconv.FormatFloat(lastUpper, 'f', -1, 64)}; !slices.Equal(last, want) {
			t.Errorf("the traffic chart's median and band end at %v, want the forecast's last values %v", last, want)
		}
		if s := b.text(t, `[data-field=forecast]`); !strings.Contains(s, "the median (dashed) and the 0.9 quantile, the upper band (dotted); expires") {
			t.Errorf("the forecast caption says %q", s)
		}
		if s := b.text(t, `[data-field=forecastNotice]`); !strings.Contains(s, "its median and its 0.9 quantile") || !strings.Contains(s, resultCM.Name) {
			t.Errorf("the forecast notice says %q", s)
		}
		b.screenshot(t, filepath.Join(artifacts, "console-forecast.png"))
	})

	t.Run("cost", func(t *testing.T) {
		var cost struct {
			Error              string    `json:"error"`
			ActualReplicaHours float64   `json:"actualReplicaHours"`
			HPAReplicaHours    float64   `json:"hpaReplicaHours"`
			From               time.Time `json:"from"`
			To                 time.Time `json:"to"`
			Coverage           float64   `json:"coverage"`
		}
		// The last hour, every minute: two measurements a minute apart after the pods start.
		poll.Until(ctx, t, 3*time.Minute, "cost figures", func(context.Context) (string, bool, error) {
			r := getPage(t, admin, "/api/v1/namespaces/"+nsA+"/ihpas/web/cost?window=1h")
			cost.Error = "" // "error" is omitted when empty: do not keep the last answer's
			if err := json.Unmarshal([]byte(r.body), &cost); err != nil {
				return fmt.Sprintf("%d %q", r.code, r.body), false, nil
			}
			return fmt.Sprintf("%d error=%q actual=%v hpa=%v from=%s to=%s", r.code, cost.Error, cost.ActualReplicaHours, cost.HPAReplicaHours, cost.From, cost.To),
				r.code == http.StatusOK && cost.Error == "" && cost.ActualReplicaHours > 0, nil
		})
		// The workload ran 2 then 3 pods over the span compared.
		span := cost.To.Sub(cost.From).Hours()
		if cost.ActualReplicaHours < 2*span*cost.Coverage-1e-9 || cost.ActualReplicaHours > 3*span+1e-9 {
			t.Errorf("measured %v replica-hours over %v h (coverage %v), want 2 to 3 pods' worth", cost.ActualReplicaHours, span, cost.Coverage)
		}
		b := browser.open(t, "http://"+admin.Addr()+"/ihpas/"+nsA+"/web/cost?window=1h", "#cost-chart svg")
		b.expectText(t, `[data-field=actualReplicaHours]`, strconv.FormatFloat(cost.ActualReplicaHours, 'f', 2, 64))
		b.expectText(t, `[data-field=hpaReplicaHours]`, strconv.FormatFloat(cost.HPAReplicaHours, 'f', 2, 64))
		if s := b.text(t, `[data-field=assumptions]`); !strings.Contains(s, "60% CPU utilisation (assumed") {
			t.Errorf("assumptions %q do not say the target was assumed", s)
		}
		if s := b.text(t, `[data-field=noForecast]`); s == "" {
			t.Error("an IHPA without a predictive portrait must say there is no forecast to score")
		}
		b.screenshot(t, filepath.Join(artifacts, "console-cost.png"))
	})

	t.Run("no request leaves the console's origin", func(t *testing.T) {
		for _, u := range browser.requested() {
			parsed, err := url.Parse(u)
			if err != nil || (parsed.Scheme != "data" && parsed.Host != admin.Addr() && parsed.Host != limited.Addr()) {
				t.Errorf("the page requested %s", u)
			}
		}
	})

	// How fast the pages' API calls answer (the pages render from the same calls).
	t.Run("latency", func(t *testing.T) {
		var report strings.Builder
		for _, path := range []string{"/api/v1/ihpas", "/api/v1/namespaces/" + nsA + "/ihpas/web", "/api/v1/namespaces/" + nsA + "/ihpas/web/cost?window=1h",
			"/", "/ihpas/" + nsA + "/web"} {
			var ds []time.Duration
			for range 40 {
				began := time.Now()
				r := getPage(t, admin, path)
				if r.code != http.StatusOK || (strings.HasPrefix(path, "/api/") && !json.Valid([]byte(r.body))) {
					t.Fatalf("GET %s: %d %q", path, r.code, r.body)
				}
				ds = append(ds, time.Since(began))
			}
			slices.Sort(ds)
			line := fmt.Sprintf("%-50s p50 %6.1f ms  p99 %6.1f ms  (n=%d)", path, ms(ds[len(ds)/2]), ms(ds[len(ds)*99/100]), len(ds))
			t.Log(line)
			report.WriteString(line + "\n")
		}
		// The cost of a window not asked for yet is computed (history query and replay), then
		// cached for a minute: the first answer is the slow one.
		for _, window := range []string{"1d", "7d"} {
			began := time.Now()
			if r := getPage(t, admin, "/api/v1/namespaces/"+nsA+"/ihpas/web/cost?window="+window); r.code != http.StatusOK || !json.Valid([]byte(r.body)) {
				t.Fatalf("cost of %s: %d %q", window, r.code, r.body)
			}
			line := fmt.Sprintf("%-50s first answer %6.1f ms (computed, then cached)", "cost?window="+window, ms(time.Since(began)))
			t.Log(line)
			report.WriteString(line + "\n")
		}
		if err := os.WriteFile(filepath.Join(artifacts, "console-latency.txt"), []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	})
	// The manager's metrics about the same IHPAs (dashboards and alerts read them); those of a
	// deleted IHPA go with it.
	t.Run("manager metrics", func(t *testing.T) {
		scrape := managerScraper(ctx, t, nsA)
		poll.Until(ctx, t, time.Minute, "kapacity_ihpa_* of "+nsA+"/web", func(ctx context.Context) (string, bool, error) {
			body, err := scrape(ctx)
			if err != nil {
				return err.Error(), false, nil
			}
			want := []string{
				`kapacity_ihpa_replicas{name="web",namespace="` + nsA + `",state="online"} 3`,
				`kapacity_ihpa_provider_replicas{name="web",namespace="` + nsA + `",priority="1",provider="Static"} 3`,
				`kapacity_ihpa_desired_replicas{name="web",namespace="` + nsA + `"} 3`,
				`kapacity_ihpa_scaling_active{name="web",namespace="` + nsA + `"} 1`,
			}
			var missing []string
			for _, w := range want {
				if !strings.Contains(body, w) {
					missing = append(missing, w)
				}
			}
			if strings.Contains(body, `provider="Cron"`) {
				missing = append(missing, "no series for the Cron provider, which offers nothing")
			}
			if !strings.Contains(body, `kapacity_ihpa_replicas{name="web",namespace="`+nsB+`",state="online"} 3`) {
				missing = append(missing, nsB+"/web's online replicas (before it is deleted)")
			}
			return fmt.Sprintf("missing %v", missing), len(missing) == 0, nil
		})
		if err := crClient.Delete(ctx, &v1alpha1.IntelligentHorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "web"}}); err != nil {
			t.Fatal(err)
		}
		poll.Until(ctx, t, time.Minute, "no kapacity_ihpa_* of the deleted "+nsB+"/web", func(ctx context.Context) (string, bool, error) {
			body, err := scrape(ctx)
			if err != nil {
				return err.Error(), false, nil
			}
			left := 0
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "kapacity_ihpa_") && strings.Contains(line, `namespace="`+nsB+`"`) {
					left++
				}
			}
			return fmt.Sprintf("%d series left", left), left == 0, nil
		})
	})
	t.Logf("screenshots and latency in %s", artifacts)
}

// managerScraper returns a function reading the manager's /metrics as a ServiceAccount of ns bound
// to the metrics-reader ClusterRole (the endpoint authenticates and authorizes its callers).
func managerScraper(ctx context.Context, t *testing.T, ns string) func(context.Context) (string, error) {
	t.Helper()
	m := useManager(t)
	reader := readerRole(t)
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "console-metrics-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: ns}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	token := saToken(ctx, t, ns, "scraper", nil)
	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The endpoint's certificate is self-signed; the test reads what it serves.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.MetricsAddr+"/metrics", nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("/metrics: %d %.200s", resp.StatusCode, body)
		}
		return string(body), err
	}
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "test", "e2e", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func createNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

func getIHPA(ctx context.Context, t *testing.T, ns, name string) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	t.Helper()
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ihpa); err != nil {
		t.Fatal(err)
	}
	return ihpa
}

// restrictUser returns a client configuration impersonating user, who may list namespaces and
// read autoscaling objects, pods, events, Deployments and metric history in ns only.
func restrictUser(ctx context.Context, t *testing.T, user, ns string) *rest.Config {
	t.Helper()
	read := []string{"get", "list", "watch"}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user + "-namespaces"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}}}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user + "-namespaces"}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: read},
		{APIGroups: []string{"history.metrics.kapacitystack.io"}, Resources: []string{"*"}, Verbs: read},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}}
	for _, o := range []client.Object{cr, crb, role, rb} {
		if err := crClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{crb, cr} {
			_ = crClient.Delete(context.Background(), o)
		}
	})
	cfg := rest.CopyConfig(bed.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return cfg
}

func startConsole(ctx context.Context, t *testing.T, cfg *rest.Config) *console.Server {
	t.Helper()
	s, err := console.Start(ctx, console.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// A client that holds the console's cookie, for the API calls.
	jar, _ := cookiejar.New(nil)
	consoleClients[s] = &http.Client{Jar: jar, Timeout: time.Minute}
	if r := getPage(t, s, strings.TrimPrefix(s.URL(), "http://"+s.Addr())); r.code != http.StatusOK {
		t.Fatalf("opening %s: %d %s", s.URL(), r.code, r.body)
	}
	return s
}

var consoleClients = map[*console.Server]*http.Client{}

type page struct {
	code int
	body string
}

// getPage GETs a path of a console with its cookie.
func getPage(t *testing.T, s *console.Server, path string) page {
	t.Helper()
	resp, err := consoleClients[s].Get("http://" + s.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, string(b)}
}

// browser is a headless chromium driven over the DevTools protocol.
type browser struct {
	ctx  context.Context
	urls chan string
}

func newBrowser(ctx context.Context, t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Debian's chromium is not installed (make tools installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	b := &browser{ctx: bctx, urls: make(chan string, 10000)}
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			select {
			case b.urls <- e.Request.URL:
			default:
			}
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

func (b *browser) requested() []string {
	var out []string
	for {
		select {
		case u := <-b.urls:
			out = append(out, u)
		default:
			return out
		}
	}
}

// open navigates and waits for a selector.
func (b *browser) open(t *testing.T, u, ready string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("opening %s (waiting for %s): %v; page: %s", u, ready, err, body)
	}
	return b
}

func (b *browser) reload(t *testing.T, ready string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
		t.Fatalf("reloading: %v", err)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) expectText(t *testing.T, sel, want string) {
	t.Helper()
	if got := b.text(t, sel); got != want {
		t.Errorf("%s shows %q, want %q", sel, got, want)
	}
}

func (b *browser) strings(t *testing.T, js string) []string {
	t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return out
}

func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
