package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/deploy/examples"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/manager"
	"github.com/kapacitystack/kapacity/localcluster"
	"github.com/kapacitystack/kapacity/localcluster/sim"
	"github.com/kapacitystack/kapacity/localcluster/stack"
)

// predictiveSample is Kapacity's predictive quick-start sample (2.2.1.3), as users copy it.
const predictiveSample = "dynamic-predictive-portrait-sample.yaml"

// The predictive sample's traffic and timing. The traffic rises often, so that a newcomer sees a
// predicted scale-up within minutes: a busy part of predictiveBusy every predictivePeriod (a
// period dividing a day, so that yesterday repeats it), the first one at least predictiveLead
// after the history is fed. The set-up (backfill, Prometheus loading it within about a minute,
// training, the first job) takes a minute or two, and the first result must begin before the
// predicted step up (a minute or two before the rise) for the step to be seen.
const (
	predictivePeriod = 10 * time.Minute
	predictiveBusy   = 5 * time.Minute
	predictiveLead   = 5 * time.Minute
	// The replica series is resampled every 2 minutes instead of 10 and scale-ups move 2 minutes
	// ahead; the job runs every 5 minutes instead of 30, so that its 10-minute forecast always
	// covers the next rise.
	predictiveScalingFreq = 2 * time.Minute
	predictiveAhead       = 2 * time.Minute
	predictiveSchedule    = "*/5 * * * *"
)

// predictive is the running predictive sample.
type predictive struct {
	ihpa, portrait, cronJob string
	traffic                 sim.Traffic
	changes                 []string // the sample's timing changes
	training                time.Duration
	firstResult             time.Time // when the portrait first had the job's result
	stops                   []func()
}

// stop stops the job runner and the traffic, last started first.
func (p *predictive) stop() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
}

// startPredictive sets up the predictive quick-start in Namespace, reporting its progress to out,
// and returns when the portrait holds the first job's result. The manager must be running.
func startPredictive(ctx context.Context, bed *localcluster.Cluster, out io.Writer) (_ *predictive, err error) {
	p := &predictive{}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	work, err := os.MkdirTemp(bed.Dir, "predictive-")
	if err != nil {
		return nil, err
	}
	if err := p.learn(ctx, bed, work, out); err != nil {
		return nil, err
	}
	if err := p.deploy(ctx, bed, work, out); err != nil {
		return nil, err
	}
	return p, nil
}

// learn gives StatefulSet nginx behind Ingress nginx-server 3 days of synthetic seasonal traffic,
// backfilled into Prometheus and continued live, trains the forecaster on it from the history API
// and stores the model as the sample's ConfigMap.
func (p *predictive) learn(ctx context.Context, bed *localcluster.Cluster, work string, out io.Writer) error {
	ns := Namespace
	now := time.Now()
	end := now.Truncate(time.Minute)
	start := end.Add(-stack.PredictiveHistoryLength)
	firstRise := now.Add(predictiveLead).Truncate(time.Minute).Add(time.Minute)
	p.traffic = sim.Traffic{Low: 20, High: 50, Rise: firstRise, Period: predictivePeriod, Busy: predictiveBusy,
		DailySwing: 0.3, Jitter: 0.03, Seed: 13}
	// Before the demo, nginx was scaled by a reactive autoscaler keeping 10 requests/s per pod, two
	// minutes late: per-pod traffic varies, which the replica estimator learns from.
	replicasBefore := func(at time.Time) int {
		return max(1, min(10, int(math.Ceil(p.traffic.At(at.Add(-2*time.Minute))/10))))
	}
	fmt.Fprintf(out, "  backfilling %s of synthetic seasonal traffic of Ingress %s/%s into Prometheus, one sample a minute…\n",
		days(stack.PredictiveHistoryLength), ns, stack.NginxIngress)
	stopFeed, err := stack.FeedHistory(ctx, bed, bed.Client, stack.PredictiveHistory{Namespaces: []string{ns}, Traffic: p.traffic,
		Replicas: replicasBefore, MaxReplicas: 10, Start: start, End: end})
	if err != nil {
		return err
	}
	p.stops = append(p.stops, stopFeed)
	if err := stack.CreateNginx(ctx, bed.Client, ns, int32(replicasBefore(end))); err != nil {
		return err
	}
	if err := stack.CreateNginxIngress(ctx, bed.Client, ns); err != nil {
		return err
	}
	fmt.Fprintln(out, "  waiting for Prometheus to load it (within about a minute)…")
	if err := stack.WaitTrafficHistory(ctx, bed.Config, []string{ns}, start, end, 3*time.Minute); err != nil {
		return err
	}
	fmt.Fprintln(out, "  training the forecaster from the history API (kapacity train; one line per epoch):")
	began := time.Now()
	modelDir, err := stack.TrainForecaster(ctx, bed.Kubeconfig, []string{ns}, work, &indented{w: out, prefix: "    "})
	if err != nil {
		return err
	}
	p.training = time.Since(began)
	fmt.Fprintf(out, "  trained in %s\n", p.training.Round(100*time.Millisecond))
	return stack.StoreModel(ctx, bed.Client, ns, modelDir)
}

// deploy starts a job runner standing in for the algorithm jobs' containers, creates the sample
// IHPA (timing tuned) and a Job from its CronJob at once, and waits until the portrait holds the
// job's result.
func (p *predictive) deploy(ctx context.Context, bed *localcluster.Cluster, work string, out io.Writer) error {
	ns := Namespace
	runs := make(chan stack.JobRun, 1)
	runner, err := stack.NewJobRunner(bed.Config, work, "")
	if err != nil {
		return err
	}
	stopRunner, err := runner.Watch(ctx, ns, func(run stack.JobRun) {
		klog.InfoS("algorithm job run", "namespace", run.Namespace, "job", run.Job, "took", run.Took, "err", run.Err, "output", run.Output)
		select {
		case runs <- run:
		default: // only the first run is waited for
		}
	})
	if err != nil {
		return err
	}
	p.stops = append(p.stops, stopRunner)

	raw, err := examples.QuickStartSample(predictiveSample)
	if err != nil {
		return err
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict(raw, ihpa); err != nil {
		return fmt.Errorf("decoding the predictive sample: %w", err)
	}
	if p.changes, err = stack.TunePredictiveSample(ihpa, stack.SampleTiming{ScalingFreq: predictiveScalingFreq, ScaleUpAhead: predictiveAhead,
		Schedule: predictiveSchedule}); err != nil {
		return err
	}
	ihpa.Namespace = ns
	c, err := newClient(bed)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, ihpa); err != nil {
		return fmt.Errorf("creating IHPA %s/%s: %w", ns, ihpa.Name, err)
	}
	p.ihpa = ihpa.Name
	p.portrait = ihpa.Name + "-" + strings.ToLower(string(v1alpha1.PredictivePortraitType))
	p.cronJob = algorithmjob.CronJobName(ns, p.portrait)
	fmt.Fprintf(out, "  IHPA %s/%s created; running a Job from its CronJob %s now, as `kubectl create job --from=cronjob/%s` does…\n",
		ns, p.ihpa, p.cronJob, p.cronJob)
	if err := waitFor(ctx, time.Minute, "the manager to create CronJob "+ns+"/"+p.cronJob, func() bool {
		_, err := bed.Client.BatchV1().CronJobs(ns).Get(ctx, p.cronJob, metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}
	if _, err := stack.TriggerCronJob(ctx, bed.Client, ns, p.cronJob); err != nil {
		return err
	}
	select {
	case run := <-runs:
		if run.Err != nil {
			return fmt.Errorf("the predictive sample's first job failed: %v", run)
		}
		fmt.Fprintf(out, "  the job ran `kapacity %s` in %s and wrote ConfigMap %s/%s\n", run.Args[0], run.Took.Round(100*time.Millisecond),
			ns, portraitresult.ConfigMapName(p.portrait))
	case <-time.After(3 * time.Minute):
		return errors.New("the predictive sample's first job did not run within 3 minutes")
	case <-ctx.Done():
		return ctx.Err()
	}
	hp := &v1alpha1.HorizontalPortrait{}
	if err := waitFor(ctx, time.Minute, "HorizontalPortrait "+ns+"/"+p.portrait+" to hold the job's result", func() bool {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: p.portrait}, hp); err != nil {
			return false
		}
		d := hp.Status.PortraitData
		return d != nil && d.TimeSeries != nil && len(d.TimeSeries.TimeSeries) > 0
	}); err != nil {
		return err
	}
	p.firstResult = time.Now()
	return nil
}

// instructions are the commands to watch the predictive sample.
func (p *predictive) instructions() string {
	ns := Namespace
	var b strings.Builder
	fmt.Fprintf(&b, `The predictive sample, the reason to choose Kapacity: IHPA %[1]s/%[2]s (Kapacity's
predictive quick-start, dynamic-predictive-portrait-sample.yaml) scales StatefulSet %[1]s/nginx behind
Ingress %[1]s/nginx-server. Its traffic rises from about %.0[3]f to %.0[4]f requests/s for %[5]s every
%[6]s (next at %[7]s), over quiet nights and busy afternoons; Prometheus holds %[8]s of it,
from which the forecaster learnt it at start-up. The sample's job forecasts the next 10 minutes and
turns them into replicas: ConfigMap %[1]s/%[9]s, read into
HorizontalPortrait %[1]s/%[10]s, which the IHPA follows, so nginx scales up
before its traffic rises. Its CronJob %[1]s/%[11]s ran it once at start;
its schedule keeps the forecast fresh. Only the sample's timing was changed for the demo:
`, ns, p.ihpa, p.traffic.Low, p.traffic.High, minutes(predictiveBusy), minutes(predictivePeriod),
		p.traffic.NextRise(time.Now()).Format("15:04"), days(stack.PredictiveHistoryLength),
		portraitresult.ConfigMapName(p.portrait), p.portrait, p.cronJob)
	for _, c := range p.changes {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	fmt.Fprintf(&b, `kwok runs no containers: the demo runs each Job's algorithm container inside the demo's process,
with a token of the Job's ServiceAccount (kubectl describe job shows how it went).

  kubectl get ihpa,hp -n %[1]s -w
  kubectl get statefulset -n %[1]s nginx -w
  kubectl get hp -n %[1]s %[2]s -o jsonpath='{.status.portraitData.timeSeries.timeSeries}{"\n"}'
  kubectl get configmap -n %[1]s %[3]s -o yaml
  kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2/namespaces/%[1]s/ingresses.networking.k8s.io/nginx-server/nginx_ingress_controller_requests_rate
  kubectl get jobs -n %[1]s -l %[4]s=%[5]s
`, ns, p.portrait, portraitresult.ConfigMapName(p.portrait), algorithmjob.ComponentLabelKey, algorithmjob.ComponentLabelValue)
	return b.String()
}

// newClient is a controller-runtime client of the bed that knows Kapacity's resources.
func newClient(bed *localcluster.Cluster) (client.Client, error) {
	scheme, err := manager.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(bed.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client for Kapacity's resources: %w", err)
	}
	return c, nil
}

// waitFor polls done every half second until it reports true, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if done() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// indented writes each line to w behind prefix.
type indented struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (i *indented) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !i.midLine {
			if _, err := io.WriteString(i.w, i.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(i.w, line); err != nil {
			return 0, err
		}
		i.midLine = !strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}

func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

func minutes(d time.Duration) string {
	return fmt.Sprintf("%d minutes", int(d.Minutes()))
}
