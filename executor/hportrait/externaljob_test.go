package hportrait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
)

func predictiveHP() *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive", Namespace: "ns", Generation: 1, UID: "hp-uid"},
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
	e.r = &Reconciler{Client: e.c, Reader: e.c, Recorder: e.recorder,
		Access: &algorithmjob.Access{Reader: e.c, Writer: e.c, ServiceAccount: "algo-sa"},
		Jobs: JobOptions{
			LegacyNamespace: "kapacity-system", ServiceAccount: "algo-sa", PredictiveImage: "kapacity/predictive:v1", MetricsServerAddr: "kapacity-grpc:9090",
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
	err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: algorithmjob.CronJobName("ns", "sample-predictive")}, cj)
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

	// 1. The CronJob is created from the template with the defaults, in the portrait's namespace
	// and owned by it, with the jobs' ServiceAccount and its RoleBinding; no result yet.
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	cj, err := e.cronJob(t)
	if err != nil {
		t.Fatalf("CronJob not created: %v", err)
	}
	podTmpl := cj.Spec.JobTemplate.Spec.Template
	pod := podTmpl.Spec
	c := pod.Containers[0]
	gotEnv := env(&c)
	if cj.Spec.Schedule != "0/30 * * * *" || cj.Labels["team"] != "a" || pod.ServiceAccountName != "algo-sa" || c.Image != "kapacity/predictive:v1" ||
		gotEnv["HP_NAME"] != "sample-predictive" || gotEnv["HP_NAMESPACE"] != "ns" || gotEnv["METRICS_SERVER_ADDR"] != "kapacity-grpc:9090" {
		t.Errorf("CronJob %s/%s: schedule %q labels %v sa %q image %q env %v", cj.Namespace, cj.Name, cj.Spec.Schedule, cj.Labels, pod.ServiceAccountName, c.Image, gotEnv)
	}
	hp := e.hp(t)
	if !metav1.IsControlledBy(cj, hp) {
		t.Errorf("CronJob owner references %+v, want the portrait as controller", cj.OwnerReferences)
	}
	if cj.Labels[algorithmjob.ComponentLabelKey] != algorithmjob.ComponentLabelValue || podTmpl.Labels[algorithmjob.ComponentLabelKey] != algorithmjob.ComponentLabelValue {
		t.Errorf("CronJob labels %v, pod labels %v: want %s=%s on both", cj.Labels, podTmpl.Labels, algorithmjob.ComponentLabelKey, algorithmjob.ComponentLabelValue)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil ||
		c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("pod security context %+v, container %+v: want the restricted defaults", pod.SecurityContext, c.SecurityContext)
	}
	if len(hp.Finalizers) != 0 {
		t.Errorf("finalizers %v, want none: the owner reference removes the CronJob", hp.Finalizers)
	}
	sa := &corev1.ServiceAccount{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "algo-sa"}, sa); err != nil || len(sa.OwnerReferences) != 1 ||
		sa.OwnerReferences[0].UID != hp.UID || sa.Labels[algorithmjob.ManagedByLabelKey] != algorithmjob.ManagedByLabelValue {
		t.Errorf("ServiceAccount ns/algo-sa: %v, owners %+v labels %v", err, sa.OwnerReferences, sa.Labels)
	}
	rb := &rbacv1.RoleBinding{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "algo-sa"}, rb); err != nil || rb.RoleRef.Name != algorithmjob.ClusterRoleName ||
		len(rb.Subjects) != 1 || rb.Subjects[0].Name != "algo-sa" || rb.Subjects[0].Namespace != "ns" {
		t.Errorf("RoleBinding ns/algo-sa: %v, roleRef %+v subjects %+v", err, rb.RoleRef, rb.Subjects)
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

	// 5. Nothing holds the portrait's deletion (its CronJob goes by garbage collection).
	if err := e.c.Delete(ctx, e.hp(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
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
// manager's default algorithm image, or else Kapacity's own (this release's, or the built-in
// default) with the recommend subcommand before the template's arguments; an image or a command
// in the template is left as it is.
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
		// The chart runs every component from its image (its repository and tag): the jobs run it
		// too, as `kapacity recommend`.
		{"this release's image", JobOptions{KapacityImage: "registry.example/kapacity:v0.1.0"}, "", nil, "registry.example/kapacity:v0.1.0",
			append([]string{"recommend"}, sampleArgs...), nil},
		{"an algorithm image before this release's", JobOptions{KapacityImage: "registry.example/kapacity:v0.1.0", PredictiveImage: "kapacity/predictive:v1"},
			"", nil, "kapacity/predictive:v1", sampleArgs, nil},
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

// legacyCronJob is a CronJob an older manager made for portrait ns/name in kapacity-system.
func legacyCronJob(ns, name string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kapacity-system", Name: ns + "-" + name},
		Spec: batchv1.CronJobSpec{Schedule: "0/30 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{ServiceAccountName: "kapacity-manager", Containers: []corev1.Container{{Name: "algorithm", Image: "x",
				Env: []corev1.EnvVar{{Name: "HP_NAMESPACE", Value: ns}, {Name: "HP_NAME", Value: name}}}}},
		}}}},
	}
}

// TestUpgradeRemovesLegacyJobs: a portrait carrying the finalizer of a manager that ran every job
// in kapacity-system gets its job in its own namespace, its old CronJob deleted and the finalizer
// removed, also when it is being deleted; an old CronJob whose name collides but whose
// environment names another portrait is left to that portrait.
func TestUpgradeRemovesLegacyJobs(t *testing.T) {
	ctx := context.Background()
	withFinalizer := func(ns, name string) *v1alpha1.HorizontalPortrait {
		hp := predictiveHP()
		hp.Namespace, hp.Name, hp.UID = ns, name, types.UID("uid-"+ns+"-"+name)
		hp.Finalizers = []string{v1alpha1.FinalizerName}
		return hp
	}
	legacyKey := func(ns, name string) client.ObjectKey {
		return client.ObjectKey{Namespace: "kapacity-system", Name: ns + "-" + name}
	}
	// team-a/b-web and team-a-b/web had the same CronJob, team-a-b-web; it holds team-a-b/web's.
	e := newJobEnv(t, withFinalizer("ns", "sample-predictive"), withFinalizer("team-a", "b-web"), withFinalizer("team-a-b", "web"),
		legacyCronJob("ns", "sample-predictive"), legacyCronJob("team-a-b", "web"))
	reconcile := func(ns, name string) {
		t.Helper()
		if _, err := e.r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}); err != nil {
			t.Fatalf("reconcile %s/%s: %v", ns, name, err)
		}
	}
	exists := func(key client.ObjectKey) bool {
		err := e.c.Get(ctx, key, &batchv1.CronJob{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	finalizers := func(ns, name string) []string {
		hp := &v1alpha1.HorizontalPortrait{}
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hp); err != nil {
			t.Fatal(err)
		}
		return hp.Finalizers
	}

	reconcile("ns", "sample-predictive")
	if exists(legacyKey("ns", "sample-predictive")) || len(finalizers("ns", "sample-predictive")) != 0 {
		t.Errorf("legacy CronJob kept (%t) or finalizers %v left", exists(legacyKey("ns", "sample-predictive")), finalizers("ns", "sample-predictive"))
	}
	if !exists(client.ObjectKey{Namespace: "ns", Name: algorithmjob.CronJobName("ns", "sample-predictive")}) {
		t.Error("no CronJob in the portrait's namespace")
	}

	reconcile("team-a", "b-web")
	if !exists(legacyKey("team-a-b", "web")) {
		t.Error("team-a/b-web removed team-a-b/web's legacy CronJob")
	}
	if f := finalizers("team-a", "b-web"); len(f) != 0 {
		t.Errorf("team-a/b-web finalizers %v", f)
	}

	// team-a-b/web is deleted before the new manager sees it: its legacy job goes, and so does it.
	hp := &v1alpha1.HorizontalPortrait{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "team-a-b", Name: "web"}, hp); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Delete(ctx, hp); err != nil {
		t.Fatal(err)
	}
	reconcile("team-a-b", "web")
	if exists(legacyKey("team-a-b", "web")) {
		t.Error("the deleted portrait's legacy CronJob is left")
	}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "team-a-b", Name: "web"}, hp); !apierrors.IsNotFound(err) {
		t.Errorf("deleted portrait: %v, want gone", err)
	}
}

// TestInvalidTemplateIsRefused: a template asking for another ServiceAccount or privileges gets
// no CronJob and no ServiceAccount; the condition and a Warning event name the field; a CronJob
// of the earlier, valid template is removed.
func TestInvalidTemplateIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newJobEnv(t, predictiveHP())
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cronJob(t); err != nil {
		t.Fatalf("valid template: %v", err)
	}
	drain(e.recorder)
	hp := e.hp(t)
	pod := &hp.Spec.Algorithm.ExternalJob.Job.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec
	pod.ServiceAccountName = "kapacity-manager"
	pod.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	pod.HostPID = true
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
	hp.Generation++
	if err := e.c.Update(ctx, hp); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reconcile(t); err != nil {
		t.Fatalf("an invalid template is not retried, got %v", err)
	}
	if _, err := e.cronJob(t); !apierrors.IsNotFound(err) {
		t.Errorf("CronJob of the earlier template: %v, want deleted", err)
	}
	const field = "spec.algorithm.externalJob.job.cronJob.template.spec.jobTemplate.spec.template.spec.serviceAccountName"
	cond := meta.FindStatusCondition(e.hp(t).Status.Conditions, string(v1alpha1.PortraitGenerated))
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != ReasonInvalidJobTemplate ||
		!strings.Contains(cond.Message, field) || !strings.Contains(cond.Message, "privileged") || len(cond.Message) <= maxEventNote {
		t.Errorf("condition %+v, want False %s naming %s and privileged, longer than an event may be", cond, ReasonInvalidJobTemplate, field)
	}
	// The event fits the API server's 1024-byte limit on notes (a longer one is refused and
	// lost), and still names the first field.
	ev := drain(e.recorder)
	if !strings.Contains(ev, "Warning "+ReasonInvalidJobTemplate) || !strings.Contains(ev, field) || len(ev) > maxEventNote+100 {
		t.Errorf("events (%d bytes) %q", len(ev), ev)
	}

	fresh := newJobEnv(t, e.hp(t))
	if _, err := fresh.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if err := fresh.c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "algo-sa"}, &corev1.ServiceAccount{}); !apierrors.IsNotFound(err) {
		t.Errorf("ServiceAccount for an invalid template: %v, want none", err)
	}
}

// labelledOnly stands for the manager's cache, which holds only labelled result ConfigMaps.
type labelledOnly struct{ client.Client }

func (c labelledOnly) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Labels[portraitresult.LabelKey] == "" {
		return apierrors.NewNotFound(corev1.Resource("configmaps"), key.Name)
	}
	return nil
}

// TestResultWithoutLabel: a result the cache does not hold (written without the label) is read
// from the API server and re-read periodically, since its changes are not watched; a labelled
// one needs no periodic read.
func TestResultWithoutLabel(t *testing.T) {
	for _, labelled := range []bool{false, true} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive-result", Namespace: "ns"},
			Data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1698235200": 3}`}}
		if labelled {
			cm.Labels = map[string]string{portraitresult.LabelKey: portraitresult.LabelValue}
		}
		e := newJobEnv(t, predictiveHP(), cm)
		e.r.Client = labelledOnly{e.c}
		res, err := e.reconcile(t)
		if err != nil {
			t.Fatal(err)
		}
		want := UnlabelledResultResync
		if labelled {
			want = 0
		}
		if d := e.hp(t).Status.PortraitData; d == nil || d.TimeSeries == nil || res.RequeueAfter != want {
			t.Errorf("labelled %t: data %+v, requeue after %s, want the result and %s", labelled, d, res.RequeueAfter, want)
		}
	}
}

// TestOutOfBoundsResultIsRefused: a result the job's author did not bound is refused with a
// condition naming the key, and never reaches the status: a timestamp past year 9999 (its point's
// time cannot be written as a Kubernetes timestamp), two keys naming one second ("05" and "5",
// duplicate points), more than a week of minutely points.
func TestOutOfBoundsResultIsRefused(t *testing.T) {
	week := make([]string, 0, v1alpha1.MaxTimeSeriesPoints+1)
	for i := range v1alpha1.MaxTimeSeriesPoints + 1 {
		week = append(week, fmt.Sprintf(`"%d": 1`, 1698234600+60*i))
	}
	for _, tc := range []struct{ name, series, want string }{
		{"after year 9999", `{"253402300800": 1}`, `timeSeries: timestamp "253402300800"`},
		{"one second twice", `{"05": 1, "5": 2}`, `timeSeries: timestamp "05"`},
		{"more than a week of minutes", "{" + strings.Join(week, ",") + "}", "timeSeries: 10081 points, more than the limit of 10080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive-result", Namespace: "ns"},
				Data: map[string]string{"type": "TimeSeries", "timeSeries": tc.series}}
			e := newJobEnv(t, predictiveHP(), cm)
			if _, err := e.reconcile(t); err == nil {
				t.Error("the result was accepted")
			}
			hp := e.hp(t)
			c := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated))
			if hp.Status.PortraitData != nil || c == nil || c.Reason != ReasonFailedFetchResult || !strings.Contains(c.Message, tc.want) {
				t.Errorf("data %+v, condition %+v: want no data and %s saying %q", hp.Status.PortraitData, c, ReasonFailedFetchResult, tc.want)
			}
		})
	}
}

// TestBrokenBandKeepsTheReplicas: the replicas of a result whose trafficBand cannot be read still
// reach the portrait (the band is the Burst generator's, which reports it).
func TestBrokenBandKeepsTheReplicas(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sample-predictive-result", Namespace: "ns"},
		Data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1698234600": 4}`, portraitresult.KeyTrafficBand: `{"quantile": 2}`}}
	e := newJobEnv(t, predictiveHP(), cm)
	if _, err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if d := e.hp(t).Status.PortraitData; d == nil || d.TimeSeries == nil || len(d.TimeSeries.TimeSeries) != 1 || d.TimeSeries.TimeSeries[0].Replicas != 4 {
		t.Errorf("portrait data %+v, want the result's 4 replicas", d)
	}
}
