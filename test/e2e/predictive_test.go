package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/sim"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/recommender/cli"
	"github.com/kapacitystack/kapacity/test/poll"
)

// The predictive test's workloads: StatefulSet "nginx" behind Ingress "nginx-server" (the
// quick-start's), whose traffic follows a sim.Traffic; each ready pod uses
// stack.NginxCPUPerRequest core-seconds per request, so the sample's per-pod target of 1m CPU is
// met with one pod per 10 requests/s.
const (
	// predictiveLead bounds when the traffic rises: 4 to 5 minutes after the test starts, on the
	// minute. The set-up (backfill, Prometheus loading the blocks within about a minute, training,
	// two recommender runs) takes 1 to 1.5 minutes, the predicted step up comes 1 to 2 minutes
	// before the rise, and the series must start before it.
	predictiveLead = 5 * time.Minute
	// predictiveScalingFreq and predictiveAhead replace the sample's --scaling-freq=10min and add
	// --scale-up-ahead-seconds (stack.SampleTiming says why).
	predictiveScalingFreq = 2 * time.Minute
	predictiveAhead       = 2 * time.Minute
	algorithmJobNS        = "kapacity-system" // where older managers ran every job (--algorithm-job-namespace)
	jobServiceAcct        = "kapacity-algorithm-job"
)

// predictiveWorkload is one workload of the test and the portrait that scales it.
type predictiveWorkload struct {
	ns       string
	portrait string // HorizontalPortrait name
	scaler   string // what scales it: "IHPA" or "HPA"
	ihpa     string // the IHPA's name, if an IHPA scales it
}

// TestPredictiveScalesAheadOfRise is the end-to-end test of the predictive recommender (issue 6),
// on Kapacity's predictive quick-start (2.2.1.3): Prometheus is backfilled with 3 days of traffic,
// CPU and readiness of two StatefulSets "nginx"; `kapacity train` learns the traffic from the
// history API; `kapacity recommend` runs for each portrait, once in a Job created from the CronJob
// the manager made for the sample IHPA (its container run by stack.JobRunner, as the job's pod
// would run it) and once in process with the sample's flags; each HorizontalPortrait gets a
// replica time series that rises before the traffic does; and the sample IHPA, and separately a
// native HPA on kapacity_predicted_replicas, scale their workload up before the traffic rises.
func TestPredictiveScalesAheadOfRise(t *testing.T) {
	ctx := context.Background()
	env := useAdapter(t)
	useManager(t)
	began := time.Now()
	rise := began.Add(predictiveLead).Truncate(time.Minute)
	// Quiet nights and busy afternoons, and in every hour a busy part starting at the minute of
	// the rise, like the quick-start's periodic client: 3 days hold 72 rises to learn from in a
	// few seconds of training (a once-a-day rise would give 3).
	traffic := sim.Traffic{Low: 20, High: 50, Rise: rise, Busy: 20 * time.Minute, DailySwing: 0.3, Jitter: 0.03, Seed: 6}
	// Before the test the workloads were scaled by a reactive autoscaler keeping 10 requests/s per
	// pod, five minutes late: per-pod traffic varies, which the replica estimator learns from.
	replicasBefore := func(at time.Time) int {
		return max(1, min(10, int(math.Ceil(traffic.At(at.Add(-5*time.Minute))/10))))
	}
	historyEnd := began.Truncate(time.Minute)
	historyStart := historyEnd.Add(-stack.PredictiveHistoryLength)
	t.Logf("traffic rises from %.0f to %.0f requests/s (times a daily envelope) at minute %d of every hour; the rise under test is at %s",
		traffic.Low, traffic.High, rise.Minute(), rise.Format(time.TimeOnly))

	sample := loadSample(t, "dynamic-predictive-portrait-sample.yaml")
	changes, err := stack.TunePredictiveSample(sample, stack.SampleTiming{ScalingFreq: predictiveScalingFreq, ScaleUpAhead: predictiveAhead})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the sample's timing: %s", strings.Join(changes, "; "))
	ihpaWL := predictiveWorkload{ns: newNamespace(ctx, t), portrait: strings.ToLower(sample.Name + "-" + string(v1alpha1.PredictivePortraitType)),
		scaler: "IHPA", ihpa: sample.Name}
	hpaWL := predictiveWorkload{ns: newNamespace(ctx, t), portrait: "hpa-sample-predictive", scaler: "HPA"}
	workloads := []predictiveWorkload{ihpaWL, hpaWL}
	for _, w := range workloads {
		dumpOnFailure(t, w.ns)
	}

	var nss []string
	for _, w := range workloads {
		nss = append(nss, w.ns)
	}
	stopFeed, err := stack.FeedHistory(ctx, bed, kube, stack.PredictiveHistory{Namespaces: nss, Traffic: traffic, Replicas: replicasBefore,
		MaxReplicas: int(sample.Spec.MaxReplicas), Start: historyStart, End: historyEnd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopFeed)
	for _, w := range workloads {
		createNginx(ctx, t, w.ns, int32(replicasBefore(historyEnd)))
		if err := stack.CreateNginxIngress(ctx, kube, w.ns); err != nil {
			t.Fatal(err)
		}
	}
	waitHistory(ctx, t, workloads, traffic, replicasBefore, historyEnd)
	t.Logf("history readable through the history API %s after the start", time.Since(began).Round(time.Second))

	modelDir := trainModel(ctx, t, workloads)

	// The sample IHPA creates its portrait, whose CronJob the manager creates; the HPA's workload
	// gets a portrait of the same spec, created directly.
	sample.Namespace = ihpaWL.ns
	dynamic := sample.Spec.PortraitProviders[0].Dynamic
	if err := crClient.Create(ctx, sample); err != nil {
		t.Fatalf("creating the sample IHPA: %v", err)
	}
	hp := &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Name: hpaWL.portrait, Namespace: hpaWL.ns},
		Spec:       v1alpha1.HorizontalPortraitSpec{ScaleTargetRef: sample.Spec.ScaleTargetRef, PortraitSpec: *dynamic.PortraitSpec.DeepCopy()},
	}
	if err := crClient.Create(ctx, hp); err != nil {
		t.Fatalf("creating portrait %s: %v", hpaWL.portrait, err)
	}
	template := dynamic.Algorithm.ExternalJob.Job.CronJob.Template
	jobs := map[string]*batchv1.CronJob{}
	for _, w := range workloads {
		jobs[w.ns] = checkCronJob(ctx, t, w, template)
	}

	// In process: `kapacity recommend` with the sample's flags, history over the adapter's gRPC
	// ProviderService (Kapacity's METRICS_SERVER_ADDR).
	args := slices.Clone(algorithmContainer(t, &template.Spec.JobTemplate.Spec.Template.Spec).Args)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--tsf-model-path="); ok {
			args[i] = "--tsf-model-path=" + modelDir
			t.Logf("in-process run: --tsf-model-path %s replaced by the trained model's directory", v)
		}
	}
	args = append(args, "--hp-namespace="+hpaWL.ns, "--hp-name="+hpaWL.portrait, "--kubeconfig="+bed.Kubeconfig, "--metrics-server-addr="+env.GRPCAddr,
		"--metrics-server-token-file="+env.GRPCTokenFile)
	out := runKapacity(ctx, t, cli.NewRecommendCommand(), args...)
	t.Logf("kapacity recommend (in process) %s:\n%s", strings.Join(args, " "), out)

	// CronJob path: a Job created from the CronJob (`kubectl create job --from=cronjob/…`), its
	// container run as its pod would run it (history through kube-apiserver, since the manager
	// sets no METRICS_SERVER_ADDR here).
	runAlgorithmJob(ctx, t, jobs[ihpaWL.ns])

	target := sample.Spec.PortraitProviders[0].Dynamic.Metrics[0].Resource.Target.AverageValue.AsApproximateFloat64()
	neededFor := func(rps float64) int32 { return int32(math.Ceil(stack.NginxCPUPerRequest*rps/target - 1e-9)) }
	want := map[string]int32{}
	for _, w := range workloads {
		points := checkResult(ctx, t, w, began)
		series := waitPortrait(ctx, t, w, points)
		want[w.ns] = checkPredictedSeries(t, w, series, traffic, rise, neededFor)
	}
	t.Logf("set-up done %s after the start; the traffic rises at %s, in %s", time.Since(began).Round(time.Second),
		rise.Format(time.TimeOnly), time.Until(rise).Round(time.Second))

	createPredictedReplicasHPA(ctx, t, hpaWL.ns, hpaWL.portrait, ptr.To(sample.Spec.MinReplicas), sample.Spec.MaxReplicas)
	scaled := waitScaledAhead(ctx, t, workloads, want, rise)
	for _, w := range workloads {
		at := scaled[w.ns]
		if !at.Before(rise) {
			t.Errorf("%s: the %s scaled nginx to %d replicas at %s, not before the traffic rose at %s", w.ns, w.scaler, want[w.ns],
				at.Format(time.TimeOnly), rise.Format(time.TimeOnly))
			continue
		}
		t.Logf("%s: the %s scaled nginx to %d replicas at %s, %s before the traffic rose (%.1f -> %.1f requests/s)", w.ns, w.scaler,
			want[w.ns], at.Format(time.TimeOnly), rise.Sub(at).Round(time.Second), traffic.At(at), traffic.At(rise))
	}
	events := ihpaEvents(ctx, ihpaWL.ns, sample.Name)
	t.Logf("IHPA events:\n%s", strings.Join(events, "\n"))
	if !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, fmt.Sprintf("%d, cutoffReplicas", want[ihpaWL.ns])) }) {
		t.Errorf("no IHPA event of a ReplicaProfile update to %d online replicas", want[ihpaWL.ns])
	}
}

// trainModel trains the forecaster as `kapacity train` does from the history API, stores the model
// as the sample's ConfigMap in each workload's namespace, where its job runs (`kubectl create cm
// -n <namespace> example-model --from-file=<model>`) and returns its directory.
func trainModel(ctx context.Context, t *testing.T, workloads []predictiveWorkload) string {
	t.Helper()
	var nss []string
	for _, w := range workloads {
		nss = append(nss, w.ns)
	}
	var out bytes.Buffer
	began := time.Now()
	modelDir, err := stack.TrainForecaster(ctx, bed.Kubeconfig, nss, t.TempDir(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("kapacity train (%s):\n%s", time.Since(began).Round(time.Millisecond), out.String())
	for _, ns := range nss {
		if err := stack.StoreModel(ctx, kube, ns, modelDir); err != nil {
			t.Fatal(err)
		}
	}
	return modelDir
}

// algorithmContainer is the container named "algorithm" of pod.
func algorithmContainer(t *testing.T, pod *corev1.PodSpec) *corev1.Container {
	t.Helper()
	c, err := stack.AlgorithmContainer(pod)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// waitHistory waits until Prometheus has loaded the backfilled blocks and the history API answers
// the three queries the recommender makes for each workload, then checks the last day of each
// against the synthetic truth: request rate, ready pods, and CPU within the jitter.
func waitHistory(ctx context.Context, t *testing.T, workloads []predictiveWorkload, traffic sim.Traffic, replicas func(time.Time) int, end time.Time) {
	t.Helper()
	prom, err := promclient.New(bed.PrometheusURL, nil, "GET", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nss []string
	for _, w := range workloads {
		nss = append(nss, w.ns)
	}
	poll.Until(ctx, t, 3*time.Minute, "backfilled history visible in Prometheus", func(ctx context.Context) (string, bool, error) {
		v, err := prom.Query(ctx, fmt.Sprintf(`count(nginx_ingress_controller_requests{namespace=~%q})`, strings.Join(nss, "|")), end.Add(-48*time.Hour))
		if err != nil {
			return err.Error(), false, nil
		}
		vec, _ := v.(model.Vector)
		return v.String(), len(vec) == 1 && int(vec[0].Value) == len(workloads), nil
	})
	history := historyHTTP(t, bed.Config)
	// One rounding step (0.001) and a little. VictoriaMetrics 1.79 (Debian's) rounds some values
	// one step further: round(vector(64.7434), 0.001) is 64.742 there, 64.743 in Prometheus.
	roundingTolerance := 0.0011
	if bed.MetricsBackend() == localcluster.VictoriaMetrics {
		roundingTolerance = 0.0021
	}
	sts := schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	r := historyv1alpha1.Range{Start: end.Add(-24 * time.Hour), End: end, Step: time.Minute}
	for _, w := range workloads {
		checks := []struct {
			name  string
			q     historyv1alpha1.Query
			check func(at time.Time, v float64) bool
		}{
			{"qps", historyv1alpha1.Query{Kind: historyv1alpha1.Object, Workload: schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"},
				Namespace: w.ns, Name: "nginx-server", Metric: "nginx_ingress_controller_requests_rate"},
				// A rate at t covers the minute before it; the rule rounds to 0.001.
				func(at time.Time, v float64) bool {
					return math.Abs(v-traffic.At(at.Add(-time.Minute))) < roundingTolerance
				}},
			{"ready replicas", historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadExternal, Workload: sts, Namespace: w.ns, Name: "nginx", Metric: "kube_pod_status_ready"},
				func(at time.Time, v float64) bool { return v == float64(replicas(at.Add(-time.Minute))) }},
			{"cpu of ready pods", historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadResource, Workload: sts, Namespace: w.ns, Name: "nginx", Resource: "cpu", ReadyPodsOnly: true},
				func(at time.Time, v float64) bool {
					return math.Abs(v/(stack.NginxCPUPerRequest*traffic.At(at.Add(-time.Minute)))-1) <= 0.0301
				}},
		}
		for _, c := range checks {
			var got []historyv1alpha1.Series
			poll.Until(ctx, t, time.Minute, fmt.Sprintf("%s history of %s", c.name, w.ns), func(ctx context.Context) (string, bool, error) {
				got, err = history.Range(ctx, c.q, r)
				if err != nil {
					return err.Error(), false, nil
				}
				return summarize(got), len(got) == 1 && int64(len(got[0].Points)) == r.Points(), nil
			})
			bad := 0
			for _, p := range got[0].Points {
				at := time.UnixMilli(p.Timestamp)
				if !c.check(at, float64(p.Value)) {
					if bad++; bad <= 3 {
						t.Errorf("%s %s at %s = %v; synthetic traffic %.3f, replicas %d", w.ns, c.name, at.Format(time.DateTime), p.Value,
							traffic.At(at.Add(-time.Minute)), replicas(at.Add(-time.Minute)))
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%s %s: %d of %d points differ from the backfilled history", w.ns, c.name, bad, len(got[0].Points))
			}
		}
	}
}

// runKapacity runs a kapacity subcommand in this process and returns its output.
func runKapacity(ctx context.Context, t *testing.T, cmd *cobra.Command, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage = true
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("kapacity %s %s: %v\n%s", cmd.Name(), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// checkCronJob waits for the CronJob of w's portrait, in the portrait's namespace, and checks it
// is the sample's template with the manager's defaults: Kapacity's image running its recommend
// subcommand with the sample's arguments, the portrait in HP_NAMESPACE and HP_NAME, the jobs'
// service account.
func checkCronJob(ctx context.Context, t *testing.T, w predictiveWorkload, template v1alpha1.CronJobTemplateSpec) *batchv1.CronJob {
	t.Helper()
	key := client.ObjectKey{Namespace: w.ns, Name: algorithmjob.CronJobName(w.ns, w.portrait)}
	cj := &batchv1.CronJob{}
	poll.Until(ctx, t, time.Minute, "CronJob "+key.String(), func(ctx context.Context) (string, bool, error) {
		if err := crClient.Get(ctx, key, cj); err != nil {
			return err.Error(), false, nil
		}
		return "created", true, nil
	})
	want := template.Spec.JobTemplate.Spec.Template.Spec
	got := cj.Spec.JobTemplate.Spec.Template.Spec
	wantC, gotC := algorithmContainer(t, &want), algorithmContainer(t, &got)
	env := map[string]string{}
	for _, e := range gotC.Env {
		env[e.Name] = e.Value
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"schedule", cj.Spec.Schedule, template.Spec.Schedule},
		{"image", gotC.Image, jobImage()},
		{"command", len(gotC.Command), 0},
		{"args", gotC.Args, append([]string{"recommend"}, wantC.Args...)},
		{"volumeMounts", gotC.VolumeMounts, wantC.VolumeMounts},
		{"volumes", volumeSources(got.Volumes), volumeSources(want.Volumes)},
		{"restartPolicy", got.RestartPolicy, want.RestartPolicy},
		{"serviceAccountName", got.ServiceAccountName, jobServiceAcct},
		{"HP_NAMESPACE", env["HP_NAMESPACE"], w.ns},
		{"HP_NAME", env["HP_NAME"], w.portrait},
	} {
		if !equality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("CronJob %s %s = %v, want %v", key, c.what, c.got, c.want)
		}
	}
	t.Logf("CronJob %s: schedule %q, args %q, env %v", key, cj.Spec.Schedule, gotC.Args, gotC.Env)
	return cj
}

// volumeSources summarises volumes as name: ConfigMap name, ignoring server-side defaults.
func volumeSources(vs []corev1.Volume) []string {
	var out []string
	for _, v := range vs {
		src := "not a ConfigMap"
		if v.ConfigMap != nil {
			src = "ConfigMap " + v.ConfigMap.Name
		}
		out = append(out, v.Name+": "+src)
	}
	return out
}

// jobImage is the image the manager gives the jobs of Predictive portraits whose template names
// none: its --kapacity-image (the chart's image), or else Kapacity's default.
func jobImage() string {
	if image, ok := mgr.Flag("kapacity-image"); ok {
		return image
	}
	return hportrait.DefaultPredictiveImage
}

// runAlgorithmJob creates a Job from the CronJob, as `kubectl create job --from=cronjob/…` does,
// and runs its algorithm container with the stack's job runner, as its pod would run it: kwok runs
// no containers. The job has exactly the rights the manager gave its ServiceAccount.
func runAlgorithmJob(ctx context.Context, t *testing.T, cj *batchv1.CronJob) {
	t.Helper()
	job, err := stack.TriggerCronJob(ctx, kube, cj.Namespace, cj.Name)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := stack.NewJobRunner(bed.Config, t.TempDir(), jobImage())
	if err != nil {
		t.Fatal(err)
	}
	run := runner.Run(ctx, job)
	if run.Err != nil {
		t.Fatalf("CronJob %s/%s's container run: %v", cj.Namespace, cj.Name, run)
	}
	t.Logf("CronJob %s/%s's container run: %v", cj.Namespace, cj.Name, run)
}

var unixSeconds = regexp.MustCompile(`^[0-9]+$`)

// checkResult checks the result ConfigMap of w's portrait: type TimeSeries, an RFC 3339
// expireTime one scaling period after the last point, and timeSeries keyed by integer
// Unix seconds from about now on; it returns the points in time order.
func checkResult(ctx context.Context, t *testing.T, w predictiveWorkload, began time.Time) []v1alpha1.ReplicaTimeSeriesPoint {
	t.Helper()
	name := portraitresult.ConfigMapName(w.portrait)
	cm, err := kube.CoreV1().ConfigMaps(w.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("result ConfigMap %s/%s: %v", w.ns, name, err)
	}
	t.Logf("ConfigMap %s/%s: %v", w.ns, name, cm.Data)
	if cm.Data["type"] != "TimeSeries" {
		t.Errorf("type = %q, want TimeSeries", cm.Data["type"])
	}
	if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "HorizontalPortrait" || cm.OwnerReferences[0].Name != w.portrait {
		t.Errorf("ownerReferences = %+v, want the HorizontalPortrait %s", cm.OwnerReferences, w.portrait)
	}
	var raw map[string]json.Number
	if err := json.Unmarshal([]byte(cm.Data["timeSeries"]), &raw); err != nil || len(raw) == 0 {
		t.Fatalf("timeSeries %q: %v, want a non-empty JSON object", cm.Data["timeSeries"], err)
	}
	var points []v1alpha1.ReplicaTimeSeriesPoint
	for k, v := range raw {
		var ts, replicas int64
		_, errK := fmt.Sscan(k, &ts)
		replicas, errV := v.Int64()
		if !unixSeconds.MatchString(k) || errK != nil || errV != nil {
			t.Fatalf("timeSeries entry %q: %s: want integer Unix seconds and an integer replica count", k, v)
		}
		at := time.Unix(ts, 0)
		if at.Before(began.Add(-5*time.Minute)) || at.After(time.Now().Add(15*time.Minute)) {
			t.Errorf("timeSeries point at %s is not within minutes of now", at.Format(time.DateTime))
		}
		points = append(points, v1alpha1.ReplicaTimeSeriesPoint{Timestamp: ts, Replicas: int32(replicas)})
	}
	slices.SortFunc(points, func(a, b v1alpha1.ReplicaTimeSeriesPoint) int { return int(a.Timestamp - b.Timestamp) })
	expire, err := time.Parse(time.RFC3339, cm.Data["expireTime"])
	if wantExpire := time.Unix(points[len(points)-1].Timestamp, 0).Add(predictiveScalingFreq); err != nil || !expire.Equal(wantExpire) {
		t.Errorf("expireTime = %q (%v), want %s", cm.Data["expireTime"], err, wantExpire.UTC().Format(time.RFC3339))
	}
	return points
}

// waitPortrait waits until the manager has read the result into the portrait's status.
func waitPortrait(ctx context.Context, t *testing.T, w predictiveWorkload, want []v1alpha1.ReplicaTimeSeriesPoint) []v1alpha1.ReplicaTimeSeriesPoint {
	t.Helper()
	hp := &v1alpha1.HorizontalPortrait{}
	poll.Until(ctx, t, time.Minute, fmt.Sprintf("HorizontalPortrait %s/%s has the result's time series", w.ns, w.portrait), func(ctx context.Context) (string, bool, error) {
		if err := crClient.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: w.portrait}, hp); err != nil {
			return err.Error(), false, nil
		}
		var conds []string
		for _, c := range hp.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
		}
		d := hp.Status.PortraitData
		ok := d != nil && d.Type == v1alpha1.TimeSeriesHorizontalPortraitDataType && d.TimeSeries != nil &&
			equality.Semantic.DeepEqual(d.TimeSeries.TimeSeries, want) && generated(hp.Status.Conditions)
		return fmt.Sprintf("data=%s conditions=[%s]", portraitString(d), strings.Join(conds, "; ")), ok, nil
	})
	return hp.Status.PortraitData.TimeSeries.TimeSeries
}

// generated tells whether the PortraitGenerated condition is True.
func generated(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == string(v1alpha1.PortraitGenerated) {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func portraitString(d *v1alpha1.HorizontalPortraitData) string {
	if d == nil || d.TimeSeries == nil {
		return "none"
	}
	var parts []string
	for _, p := range d.TimeSeries.TimeSeries {
		parts = append(parts, fmt.Sprintf("%s:%d", time.Unix(p.Timestamp, 0).Format("15:04:05"), p.Replicas))
	}
	return strings.Join(parts, " ")
}

// inEffect is the replica count of the series at t (its last point at or before t), 0 before it.
func inEffect(series []v1alpha1.ReplicaTimeSeriesPoint, t time.Time) int32 {
	var r int32
	for _, p := range series {
		if p.Timestamp <= t.Unix() {
			r = p.Replicas
		}
	}
	return r
}

// checkPredictedSeries checks w's predicted series against the synthetic truth: it starts with the
// replicas the quiet traffic needs, asks for those the busy traffic needs (within one replica: the
// forecast is not exact) in the busy part, steps up to them before the traffic rises and does not
// fall back before the busy part. It returns the replicas for the busy part.
func checkPredictedSeries(t *testing.T, w predictiveWorkload, series []v1alpha1.ReplicaTimeSeriesPoint, traffic sim.Traffic, rise time.Time, neededFor func(float64) int32) int32 {
	t.Helper()
	at := func(p v1alpha1.ReplicaTimeSeriesPoint) time.Time { return time.Unix(p.Timestamp, 0) }
	quiet, busy := series[0].Replicas, inEffect(series, rise.Add(2*time.Minute))
	wantQuiet, wantBusy := neededFor(traffic.At(at(series[0]))), neededFor(traffic.At(rise.Add(2*time.Minute)))
	t.Logf("%s %s: %s; the quiet traffic needs %d replicas, the busy traffic %d", w.ns, w.portrait, portraitString(&v1alpha1.HorizontalPortraitData{
		TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: series}}), wantQuiet, wantBusy)
	for _, c := range []struct {
		what      string
		got, want int32
	}{{"before the rise", quiet, wantQuiet}, {"in the busy part", busy, wantBusy}} {
		if d := c.got - c.want; d < -1 || d > 1 {
			t.Errorf("%s: %d replicas %s, the traffic needs %d", w.ns, c.got, c.what, c.want)
		}
	}
	if busy <= quiet {
		t.Fatalf("%s: %d replicas in the busy part, not more than the %d before the rise", w.ns, busy, quiet)
	}
	// The series must reach what the busy part needs before the rise. A forecast that follows
	// yesterday's jitter may ask for one more a few minutes into the busy part (50 requests/s is
	// exactly 5 pods' worth, 50.1 needs 6): the step that matters is to the replicas the traffic needs.
	busy = min(busy, wantBusy)
	step := slices.IndexFunc(series, func(p v1alpha1.ReplicaTimeSeriesPoint) bool { return p.Replicas >= busy })
	switch {
	case step == 0:
		t.Fatalf("%s: the series starts at %s with the busy part's replicas: the set-up took too long to see the step up (lead %s)",
			w.ns, at(series[0]).Format(time.TimeOnly), predictiveLead)
	case !at(series[step]).Before(rise):
		t.Errorf("%s: the series steps up to %d replicas at %s, not before the traffic rises at %s", w.ns, busy,
			at(series[step]).Format(time.TimeOnly), rise.Format(time.TimeOnly))
	}
	for _, p := range series[step:] {
		if at(p).After(rise.Add(2 * time.Minute)) {
			break
		}
		if p.Replicas <= quiet {
			t.Errorf("%s: the series falls back to %d replicas at %s, after stepping up at %s and before the busy part", w.ns, p.Replicas,
				at(p).Format(time.TimeOnly), at(series[step]).Format(time.TimeOnly))
		}
	}
	return busy
}

// createPredictedReplicasHPA creates a plain autoscaling/v2 HPA of StatefulSet nginx on the
// portrait's kapacity_predicted_replicas (deploy/examples/hpa-predicted-replicas.yaml).
func createPredictedReplicasHPA(ctx context.Context, t *testing.T, ns, portrait string, minReplicas *int32, maxReplicas int32) {
	t.Helper()
	_, err := kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			MinReplicas:    minReplicas,
			MaxReplicas:    maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{
						Name:     "kapacity_predicted_replicas",
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"portrait": portrait}},
					},
					Target: averageValue("1"),
				},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the HPA: %v", err)
	}
}

// waitScaledAhead watches every workload until its StatefulSet wants want[ns] replicas, and
// returns when each first did. It waits until a minute after the rise, so that a late scale-up
// is reported as late rather than as missing.
func waitScaledAhead(ctx context.Context, t *testing.T, workloads []predictiveWorkload, want map[string]int32, rise time.Time) map[string]time.Time {
	t.Helper()
	scaled := map[string]time.Time{}
	poll.Until(ctx, t, time.Until(rise.Add(time.Minute)), "workloads scaled for the rise", func(ctx context.Context) (string, bool, error) {
		var seen []string
		for _, w := range workloads {
			sts, err := kube.AppsV1().StatefulSets(w.ns).Get(ctx, "nginx", metav1.GetOptions{})
			if err != nil {
				seen = append(seen, fmt.Sprintf("%s: %s", w.ns, observationError(ctx, err)))
				continue
			}
			replicas := ptr.Deref(sts.Spec.Replicas, 0)
			if _, done := scaled[w.ns]; !done && replicas >= want[w.ns] {
				scaled[w.ns] = time.Now()
			}
			detail := ""
			if w.ihpa == "" {
				detail = describeHPA(ctx, w.ns, "nginx")
			} else if o, err := observe(ctx, w.ns, w.ihpa); err == nil {
				detail = o.String()
			}
			seen = append(seen, fmt.Sprintf("%s (%s): %d replicas, want %d; %s", w.ns, w.scaler, replicas, want[w.ns], detail))
		}
		return strings.Join(seen, " | "), len(scaled) == len(workloads), nil
	})
	return scaled
}
