package hportrait

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]string
		want    []v1alpha1.ReplicaTimeSeriesPoint
		expire  string
		wantErr string
	}{
		{name: "sorted, python's expireTime format", data: map[string]string{
			"type": "TimeSeries", "expireTime": "2023-10-25T12:10:00.00Z", "timeSeries": `{"1698235200": 3, "1698234600": 5}`,
		}, want: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 1698234600, Replicas: 5}, {Timestamp: 1698235200, Replicas: 3}}, expire: "2023-10-25T12:10:00Z"},
		{name: "no expiry", data: map[string]string{"type": "TimeSeries", "timeSeries": `{"10": 1}`},
			want: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 10, Replicas: 1}}},
		{name: "float keys are rejected", data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1698231600.0": 1}`}, wantErr: "integer Unix seconds"},
		{name: "unsupported type", data: map[string]string{"type": "Static"}, wantErr: "unsupported result type"},
		{name: "no type", data: map[string]string{"timeSeries": `{"1": 1}`}, wantErr: `no "type"`},
		{name: "no series", data: map[string]string{"type": "TimeSeries"}, wantErr: `no "timeSeries"`},
		{name: "empty series", data: map[string]string{"type": "TimeSeries", "timeSeries": `{}`}, wantErr: "empty"},
		{name: "bad json", data: map[string]string{"type": "TimeSeries", "timeSeries": `[1]`}, wantErr: "invalid timeSeries"},
		{name: "negative replicas", data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1": -1}`}, wantErr: "negative"},
		{name: "bad expiry", data: map[string]string{"type": "TimeSeries", "expireTime": "tomorrow", "timeSeries": `{"1": 1}`}, wantErr: "invalid expireTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResult(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != v1alpha1.TimeSeriesHorizontalPortraitDataType || got.TimeSeries == nil {
				t.Fatalf("data %+v", got)
			}
			if len(got.TimeSeries.TimeSeries) != len(tt.want) {
				t.Fatalf("points %+v, want %+v", got.TimeSeries.TimeSeries, tt.want)
			}
			for i := range tt.want {
				if got.TimeSeries.TimeSeries[i] != tt.want[i] {
					t.Errorf("point %d = %+v, want %+v", i, got.TimeSeries.TimeSeries[i], tt.want[i])
				}
			}
			switch {
			case tt.expire == "" && got.ExpireTime != nil:
				t.Errorf("expireTime %v, want none", got.ExpireTime)
			case tt.expire != "" && (got.ExpireTime == nil || got.ExpireTime.UTC().Format(time.RFC3339) != tt.expire):
				t.Errorf("expireTime %v, want %s", got.ExpireTime, tt.expire)
			}
		})
	}
}

func predictiveHP() *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive", Namespace: "ns", Generation: 1},
		Spec: v1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
			PortraitSpec: v1alpha1.PortraitSpec{
				PortraitType: v1alpha1.PredictivePortraitType,
				Algorithm: v1alpha1.PortraitAlgorithm{
					Type: v1alpha1.ExternalJobPortraitAlgorithmType,
					ExternalJob: &v1alpha1.ExternalJobPortraitAlgorithm{
						Job: v1alpha1.PortraitAlgorithmJob{Type: v1alpha1.CronJobPortraitAlgorithmJobType, CronJob: &v1alpha1.CronJobPortraitAlgorithmJob{
							Template: v1alpha1.CronJobTemplateSpec{
								ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}},
								Spec: batchv1.CronJobSpec{
									Schedule: "0/30 * * * *",
									JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
										RestartPolicy: corev1.RestartPolicyOnFailure,
										Containers: []corev1.Container{{Name: "algorithm", Args: []string{"--scaling-freq=10min"},
											Env: []corev1.EnvVar{{Name: "HP_NAME", Value: "stale"}}}},
									}}}},
								},
							},
						}},
						ResultSource: v1alpha1.PortraitAlgorithmResultSource{Type: v1alpha1.ConfigMapPortraitAlgorithmResultSourceType},
					},
				},
			},
		},
	}
}

type jobEnv struct {
	c        client.Client
	r        *Reconciler
	recorder *events.FakeRecorder
}

func newJobEnv(t *testing.T, objs ...client.Object) *jobEnv {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	e := &jobEnv{recorder: events.NewFakeRecorder(100)}
	e.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&v1alpha1.HorizontalPortrait{}).Build()
	e.r = &Reconciler{Client: e.c, Recorder: e.recorder, Jobs: JobOptions{
		Namespace: "kapacity-system", ServiceAccount: "algo-sa", PredictiveImage: "kapacity/predictive:v1", MetricsServerAddr: "kapacity-grpc:9090",
	}}
	return e
}

func (e *jobEnv) reconcile(t *testing.T) (ctrl.Result, error) {
	t.Helper()
	return e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "sample-predictive"}})
}

func (e *jobEnv) hp(t *testing.T) *v1alpha1.HorizontalPortrait {
	t.Helper()
	hp := &v1alpha1.HorizontalPortrait{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "sample-predictive"}, hp); err != nil {
		t.Fatal(err)
	}
	return hp
}

func (e *jobEnv) cronJob(t *testing.T) (*batchv1.CronJob, error) {
	t.Helper()
	cj := &batchv1.CronJob{}
	err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "kapacity-system", Name: "ns-sample-predictive"}, cj)
	return cj, err
}

func env(c *corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if _, dup := out[e.Name]; dup {
			out[e.Name] = "DUPLICATE"
			continue
		}
		out[e.Name] = e.Value
	}
	return out
}

func TestExternalJobLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newJobEnv(t, predictiveHP())

	// 1. The CronJob is created from the template with the defaults; no result yet.
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	cj, err := e.cronJob(t)
	if err != nil {
		t.Fatalf("CronJob not created: %v", err)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	gotEnv := env(&c)
	if cj.Spec.Schedule != "0/30 * * * *" || cj.Labels["team"] != "a" || pod.ServiceAccountName != "algo-sa" || c.Image != "kapacity/predictive:v1" ||
		gotEnv["HP_NAME"] != "sample-predictive" || gotEnv["HP_NAMESPACE"] != "ns" || gotEnv["METRICS_SERVER_ADDR"] != "kapacity-grpc:9090" {
		t.Errorf("CronJob %s/%s: schedule %q labels %v sa %q image %q env %v", cj.Namespace, cj.Name, cj.Spec.Schedule, cj.Labels, pod.ServiceAccountName, c.Image, gotEnv)
	}
	hp := e.hp(t)
	if len(hp.Finalizers) != 1 {
		t.Errorf("finalizers %v, want the cleanup finalizer", hp.Finalizers)
	}
	cond := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated))
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != ReasonFailedFetchResult {
		t.Errorf("condition %+v, want False %s", cond, ReasonFailedFetchResult)
	}

	// 2. The job's result arrives.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive-result", Namespace: "ns"}, Data: map[string]string{
		"type": "TimeSeries", "expireTime": "2023-10-25T12:10:00.00Z", "timeSeries": `{"1698235200": 3, "1698234600": 5}`,
	}}
	if reqs := resultOwner(ctx, cm); len(reqs) != 1 || reqs[0].Name != "sample-predictive" || reqs[0].Namespace != "ns" {
		t.Errorf("the result maps to %v", reqs)
	}
	if err := e.c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	hp = e.hp(t)
	d := hp.Status.PortraitData
	if d == nil || d.TimeSeries == nil || len(d.TimeSeries.TimeSeries) != 2 || d.TimeSeries.TimeSeries[0].Replicas != 5 || d.ExpireTime == nil {
		t.Fatalf("portrait data %+v", d)
	}
	if c := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated)); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("condition %+v, want True", c)
	}

	// 3. A bad result is an error with a Warning; the last good data stays.
	cm.Data["timeSeries"] = `{"1.5": 1}`
	if err := e.c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reconcile(t); err == nil {
		t.Error("a bad result was accepted")
	}
	if hp := e.hp(t); hp.Status.PortraitData == nil || len(hp.Status.PortraitData.TimeSeries.TimeSeries) != 2 {
		t.Errorf("portrait data %+v, want the last good one", hp.Status.PortraitData)
	}
	if ev := drain(e.recorder); !strings.Contains(ev, ReasonFailedFetchResult) {
		t.Errorf("events %q", ev)
	}

	// 4. A template change is applied to the CronJob; labels added by others stay.
	cj, _ = e.cronJob(t)
	cj.Labels["extra"] = "kept"
	if err := e.c.Update(ctx, cj); err != nil {
		t.Fatal(err)
	}
	hp = e.hp(t)
	hp.Spec.Algorithm.ExternalJob.Job.CronJob.Template.Spec.Schedule = "0 * * * *"
	if err := e.c.Update(ctx, hp); err != nil {
		t.Fatal(err)
	}
	_, _ = e.reconcile(t)
	cj, _ = e.cronJob(t)
	if cj.Spec.Schedule != "0 * * * *" || cj.Labels["extra"] != "kept" || cj.Labels["team"] != "a" {
		t.Errorf("CronJob schedule %q labels %v", cj.Spec.Schedule, cj.Labels)
	}

	// 5. Deleting the portrait deletes its CronJob, then the finalizer.
	if err := e.c.Delete(ctx, e.hp(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cronJob(t); !apierrors.IsNotFound(err) {
		t.Errorf("CronJob after deletion: %v, want NotFound", err)
	}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "sample-predictive"}, &v1alpha1.HorizontalPortrait{}); !apierrors.IsNotFound(err) {
		t.Errorf("portrait after deletion: %v, want gone", err)
	}
}

func TestLeavingExternalJobRemovesTheCronJob(t *testing.T) {
	ctx := context.Background()
	e := newJobEnv(t, predictiveHP())
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	hp := e.hp(t)
	hp.Spec.PortraitType = v1alpha1.ReactivePortraitType
	hp.Spec.Algorithm = v1alpha1.PortraitAlgorithm{Type: v1alpha1.KubeHPAPortraitAlgorithmType}
	if err := e.c.Update(ctx, hp); err != nil {
		t.Fatal(err)
	}
	// The Reactive generation itself fails here (no workload); the job must be gone anyway.
	e.r.Scaler = noScaler{}
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cronJob(t); !apierrors.IsNotFound(err) {
		t.Errorf("CronJob: %v, want NotFound", err)
	}
	if hp := e.hp(t); len(hp.Finalizers) != 0 {
		t.Errorf("finalizers %v, want none", hp.Finalizers)
	}
}

// TestBuildCronJobDefaultImage: a Predictive algorithm container without an image gets the
// manager's default image, or else Kapacity's own with the recommend subcommand before the
// template's arguments; an image or a command in the template is left as it is.
func TestBuildCronJobDefaultImage(t *testing.T) {
	sampleArgs := []string{"--scaling-freq=10min"}
	tests := []struct {
		name              string
		opts              JobOptions
		image             string
		command           []string
		wantImage         string
		wantArgs, wantCmd []string
	}{
		{"manager default image", JobOptions{PredictiveImage: "kapacity/predictive:v1"}, "", nil, "kapacity/predictive:v1", sampleArgs, nil},
		{"built-in default image", JobOptions{}, "", nil, DefaultPredictiveImage, append([]string{"recommend"}, sampleArgs...), nil},
		{"built-in default image, template command", JobOptions{}, "", []string{"/kapacity", "recommend"}, DefaultPredictiveImage, sampleArgs, []string{"/kapacity", "recommend"}},
		{"template image", JobOptions{}, "example/algo:v2", nil, "example/algo:v2", sampleArgs, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hp := predictiveHP()
			c := &hp.Spec.Algorithm.ExternalJob.Job.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			c.Image, c.Command = tt.image, tt.command
			cj, err := tt.opts.BuildCronJob(hp)
			if err != nil {
				t.Fatal(err)
			}
			got := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			if got.Image != tt.wantImage || strings.Join(got.Args, " ") != strings.Join(tt.wantArgs, " ") || strings.Join(got.Command, " ") != strings.Join(tt.wantCmd, " ") {
				t.Errorf("image %q command %q args %q, want %q %q %q", got.Image, got.Command, got.Args, tt.wantImage, tt.wantCmd, tt.wantArgs)
			}
			if tmpl := hp.Spec.Algorithm.ExternalJob.Job.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec.Containers[0]; strings.Join(tmpl.Args, " ") != strings.Join(sampleArgs, " ") {
				t.Errorf("the portrait's template was changed: args %q", tmpl.Args)
			}
		})
	}
}

func TestBuildCronJobErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.HorizontalPortrait)
	}{
		{"unsupported job type", func(hp *v1alpha1.HorizontalPortrait) { hp.Spec.Algorithm.ExternalJob.Job.Type = "Job" }},
		{"no template", func(hp *v1alpha1.HorizontalPortrait) { hp.Spec.Algorithm.ExternalJob.Job.CronJob = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hp := predictiveHP()
			tt.mutate(hp)
			if _, err := (JobOptions{}).BuildCronJob(hp); err == nil {
				t.Error("no error")
			}
		})
	}
}

type noScaler struct{}

func (noScaler) GetScale(context.Context, string, autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error) {
	return nil, schema.GroupResource{}, errors.New("no workload")
}

func (noScaler) UpdateScale(context.Context, string, schema.GroupResource, *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return nil, errors.New("no workload")
}

func drain(r *events.FakeRecorder) string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}
