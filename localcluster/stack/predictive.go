package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/sim"
	"github.com/kapacitystack/kapacity/recommender/cli"
)

// The predictive quick-start on a test bed, shared by the predictive end-to-end test and
// `kapacity demo`: the workloads' past (backfilled) and present (scraped) metrics, the forecaster
// trained from the history API, the model stored as the sample's ConfigMap, and the sample's
// timing tuned so that a rise is predicted and acted on within minutes.
const (
	// NginxCPUPerRequest is the CPU time one request costs a ready nginx pod, in core-seconds:
	// the sample's per-pod target of 1m CPU is met with one pod per 10 requests/s.
	NginxCPUPerRequest = 1e-4
	// ModelConfigMap is the ConfigMap the sample mounts as its model volume.
	ModelConfigMap = "example-model"
	// PredictiveHistoryLength is how much history is backfilled and trained on: 3 days at one
	// minute, a few thousand points per series.
	PredictiveHistoryLength = 3 * 24 * time.Hour

	predictivePodsTarget    = "predictive-pods"
	predictiveIngressTarget = "predictive-ingress"
)

// PredictiveHistory is the past and present of StatefulSet nginx behind Ingress nginx-server in
// each of Namespaces: the same traffic in each.
type PredictiveHistory struct {
	Namespaces []string
	Traffic    sim.Traffic
	// Replicas is the number of ready pods in the past, at most MaxReplicas.
	Replicas    func(time.Time) int
	MaxReplicas int
	// Start and End (on the minute) bound the backfilled samples.
	Start, End time.Time
}

// FeedHistory gives every namespace's nginx its present and its past: the pods' CPU and readiness
// (a simulator, as cAdvisor and kube-state-metrics) and the Ingress' request counter are served
// live, each from a scrape target whose job and instance labels the backfilled history reuses, so
// that the live series continue it. The backfilled samples take up to a minute to become visible
// (WaitTrafficHistory). stop removes the scrape targets and stops the live series.
func FeedHistory(ctx context.Context, bed *localcluster.Cluster, client kubernetes.Interface, h PredictiveHistory) (stop func(), err error) {
	liveCtx, stopLive := context.WithCancel(context.Background())
	pods := sim.New(client)
	var ingresses []sim.Ingress
	for _, ns := range h.Namespaces {
		pods.AddWorkload(ns, sim.Workload{
			Namespace: ns, Selector: labels.SelectorFromSet(map[string]string{"app": NginxName}), Container: NginxName,
			CPUPerRequest: NginxCPUPerRequest, MemoryBytes: 64 << 20,
		})
		ingresses = append(ingresses, sim.Ingress{Namespace: ns, Name: NginxIngress, Traffic: h.Traffic, Origin: h.Start})
	}
	driverDone := make(chan struct{})
	go followTraffic(liveCtx, pods, h.Traffic, h.Namespaces, driverDone)
	stopAll := func() {
		_ = bed.RemoveScrapeTarget(predictivePodsTarget)
		_ = bed.RemoveScrapeTarget(predictiveIngressTarget)
		stopLive()
		<-driverDone
	}
	defer func() {
		if err != nil {
			stopAll()
		}
	}()
	podsAddr, err := pods.Serve(liveCtx)
	if err != nil {
		return nil, err
	}
	ingressAddr, err := sim.ServeIngresses(liveCtx, ingresses...)
	if err != nil {
		return nil, err
	}

	var histories []sim.History
	for _, ns := range h.Namespaces {
		histories = append(histories, sim.History{
			Namespace: ns, PodName: func(i int) string { return fmt.Sprintf("%s-%d", NginxName, i) }, Container: NginxName, Ingress: NginxIngress,
			PodLabels:     map[string]string{"job": predictivePodsTarget, "instance": podsAddr},
			IngressLabels: map[string]string{"job": predictiveIngressTarget, "instance": ingressAddr},
			Traffic:       h.Traffic, Replicas: h.Replicas, MaxReplicas: h.MaxReplicas,
			CPUPerRequest: NginxCPUPerRequest, CPUJitter: 0.03, Start: h.Start, End: h.End,
		})
	}
	var om bytes.Buffer
	if err := sim.WriteOpenMetrics(&om, histories...); err != nil {
		return nil, err
	}
	if err := bed.Backfill(ctx, &om); err != nil {
		return nil, fmt.Errorf("backfilling %s of history: %w", h.End.Sub(h.Start), err)
	}
	for name, addr := range map[string]string{predictivePodsTarget: podsAddr, predictiveIngressTarget: ingressAddr} {
		if err := bed.AddScrapeTarget(localcluster.ScrapeTarget{Name: name, Address: addr}); err != nil {
			return nil, err
		}
	}
	return stopAll, nil
}

// followTraffic sets the simulator's traffic of every namespace at each minute boundary until ctx
// ends, then closes done.
func followTraffic(ctx context.Context, pods *sim.Simulator, traffic sim.Traffic, namespaces []string, done chan<- struct{}) {
	defer close(done)
	for {
		now := time.Now()
		for _, ns := range namespaces {
			pods.SetTraffic(ns, traffic.At(now))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(now.Truncate(time.Minute).Add(time.Minute))):
		}
	}
}

// WaitTrafficHistory waits until the history API (through kube-apiserver, with cfg) answers the
// Ingress traffic of every namespace over [start, end] at one minute with every point: Prometheus
// loads backfilled blocks on its next reload, within about a minute. The first minutes are left
// out: a rate needs samples before it.
func WaitTrafficHistory(ctx context.Context, cfg *rest.Config, namespaces []string, start, end time.Time, timeout time.Duration) error {
	history, err := historyclient.NewHTTPForConfig(cfg)
	if err != nil {
		return fmt.Errorf("history API client: %w", err)
	}
	r := historyv1alpha1.Range{Start: start.Add(5 * time.Minute), End: end, Step: time.Minute}
	deadline := time.Now().Add(timeout)
	for _, ns := range namespaces {
		q := TrafficQuery(ns)
		for {
			got, err := history.Range(ctx, q, r)
			seen := fmt.Sprint(err)
			if err == nil {
				if len(got) == 1 && int64(len(got[0].Points)) == r.Points() {
					break
				}
				seen = fmt.Sprintf("%d series", len(got))
				if len(got) > 0 {
					seen += fmt.Sprintf(", %d of %d points", len(got[0].Points), r.Points())
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the backfilled traffic of %s is not readable through the history API within %s: %s", ns, timeout, seen)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	return nil
}

// TrafficQuery is the history query of the sample's qps metric: the request rate of Ingress
// nginx-server in ns.
func TrafficQuery(ns string) historyv1alpha1.Query {
	return historyv1alpha1.Query{Kind: historyv1alpha1.Object, Workload: schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"},
		Namespace: ns, Name: NginxIngress, Metric: "nginx_ingress_controller_requests_rate"}
}

// predictiveTrainConfig is the quick-start's tsf-model-train-config.yaml (3.2.1) for nginx in
// each namespace, at one-minute resolution so that a rise minutes away is forecast: freq 1min
// (10min), predictionLength 10 (3), contextLength 60 (7), historyLength 3D (24H), and a short
// training (15 epochs of 2000 windows, patience 3). validationFraction 0: with 3 days of history,
// a held-out tail would hold all of today's samples, so today's day-of-week embedding would never
// be trained and forecasts early in a UTC day would be off by a third.
const predictiveTrainConfig = `targets:
%s
freq: 1min
predictionLength: 10
contextLength: 60
hyperParams:
  learningRate: 0.001
  epochs: 15
  batchSize: 32
  patience: 3
  samplesPerEpoch: 2000
  validationFraction: 0
`

const predictiveTrainTarget = `- workloadNamespace: %s
  workloadRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: nginx
  historyLength: %dD
  metrics:
  - name: qps
    type: Object
    object:
      metric:
        name: nginx_ingress_controller_requests_rate
      describedObject:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        name: nginx-server
`

// PredictionLength is the number of one-minute steps the trained forecaster predicts: a job's
// result covers that long.
const PredictionLength = 10 * time.Minute

// TrainForecaster trains the traffic forecaster of nginx in every namespace as `kapacity train
// --config-file tsf-model-train-config.yaml` does from the history API (with kubeconfig), writing
// its progress (one line per epoch) to out, and returns the model's directory, made in dir.
func TrainForecaster(ctx context.Context, kubeconfig string, namespaces []string, dir string, out io.Writer) (string, error) {
	var targets []string
	for _, ns := range namespaces {
		targets = append(targets, fmt.Sprintf(predictiveTrainTarget, ns, int(PredictiveHistoryLength/(24*time.Hour))))
	}
	configFile := filepath.Join(dir, "tsf-model-train-config.yaml")
	if err := os.WriteFile(configFile, []byte(fmt.Sprintf(predictiveTrainConfig, strings.Join(targets, ""))), 0o600); err != nil {
		return "", err
	}
	modelDir := filepath.Join(dir, "model")
	train := cli.NewTrainCommand()
	train.SetArgs([]string{"--config-file=" + configFile, "--model-save-path=" + modelDir, "--kubeconfig=" + kubeconfig})
	train.SetOut(out)
	train.SetErr(out)
	train.SilenceUsage = true
	train.SilenceErrors = true
	if err := train.ExecuteContext(ctx); err != nil {
		return "", fmt.Errorf("kapacity train --config-file %s: %w", configFile, err)
	}
	return modelDir, nil
}

// StoreModel stores the model directory as the sample's model ConfigMap in namespace ns, as
// `kubectl create cm -n <ns> example-model --from-file=<dir>` does (binary files in binaryData),
// replacing an earlier one.
func StoreModel(ctx context.Context, client kubernetes.Interface, ns, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the model: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ModelConfigMap, Namespace: ns}, Data: map[string]string{}, BinaryData: map[string][]byte{}}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("reading the model: %w", err)
		}
		if utf8.Valid(b) {
			cm.Data[e.Name()] = string(b)
		} else {
			cm.BinaryData[e.Name()] = b
		}
	}
	cms := client.CoreV1().ConfigMaps(ns)
	if err := cms.Delete(ctx, ModelConfigMap, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("replacing ConfigMap %s/%s: %w", ns, ModelConfigMap, err)
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("storing the model as ConfigMap %s/%s: %w", ns, ModelConfigMap, err)
	}
	return nil
}

// SampleTiming is what may change in dynamic-predictive-portrait-sample.yaml: its timing only.
type SampleTiming struct {
	// ScalingFreq replaces --scaling-freq=10min: the replica series is resampled (max) this often,
	// so that a rise minutes away is seen within minutes. Whole minutes.
	ScalingFreq time.Duration
	// ScaleUpAhead adds --scale-up-ahead-seconds: scale-ups move this much earlier. The history is
	// sampled once a minute, so a rate at t covers the minute before t and the forecast rise lands
	// a minute after the traffic's; the shift puts the scale-up before it, as a pod start-up
	// allowance does in production.
	ScaleUpAhead time.Duration
	// Schedule, if set, replaces the CronJob's schedule ("0/30 * * * *").
	Schedule string
}

// TunePredictiveSample applies timing to the predictive sample IHPA and returns the changes made,
// one line each ("--scaling-freq=10min → --scaling-freq=2min").
func TunePredictiveSample(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, timing SampleTiming) ([]string, error) {
	if len(ihpa.Spec.PortraitProviders) == 0 || ihpa.Spec.PortraitProviders[0].Dynamic == nil ||
		ihpa.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob == nil || ihpa.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob.Job.CronJob == nil {
		return nil, errors.New("not the predictive sample: spec.portraitProviders[0] is no Dynamic provider with an ExternalJob CronJob")
	}
	cj := ihpa.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob.Job.CronJob
	c, err := AlgorithmContainer(&cj.Template.Spec.JobTemplate.Spec.Template.Spec)
	if err != nil {
		return nil, err
	}
	var changes []string
	if timing.ScalingFreq > 0 {
		const from = "--scaling-freq=10min"
		i := slices.Index(c.Args, from)
		if i < 0 {
			return nil, fmt.Errorf("the sample's algorithm args %q lack %q", c.Args, from)
		}
		c.Args[i] = fmt.Sprintf("--scaling-freq=%dmin", int(timing.ScalingFreq.Minutes()))
		changes = append(changes, from+" → "+c.Args[i])
	}
	if timing.ScaleUpAhead > 0 {
		arg := fmt.Sprintf("--scale-up-ahead-seconds=%d", int(timing.ScaleUpAhead.Seconds()))
		c.Args = append(c.Args, arg)
		changes = append(changes, "added "+arg)
	}
	if timing.Schedule != "" {
		changes = append(changes, fmt.Sprintf("schedule %q → %q", cj.Template.Spec.Schedule, timing.Schedule))
		cj.Template.Spec.Schedule = timing.Schedule
	}
	return changes, nil
}

// AlgorithmContainer is the container named "algorithm" of an algorithm job's pod.
func AlgorithmContainer(pod *corev1.PodSpec) (*corev1.Container, error) {
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == "algorithm" })
	if i < 0 {
		var names []string
		for _, c := range pod.Containers {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("no container named algorithm among %q", names)
	}
	return &pod.Containers[i], nil
}
