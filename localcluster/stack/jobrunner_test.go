package stack

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/hportrait"
)

// algorithmJob is a Job as the CronJob controller creates it from the manager's CronJob of the
// predictive sample, changed by edit.
func algorithmJob(edit func(*corev1.PodSpec)) *batchv1.Job {
	pod := corev1.PodSpec{
		ServiceAccountName: algorithmjob.DefaultServiceAccount,
		Containers: []corev1.Container{{
			Name: "algorithm", Image: hportrait.DefaultPredictiveImage,
			Args: []string{"recommend", "--tsf-model-path=/opt/kapacity/model", "--re-history-len=24H", "--re-time-delta-hours=8",
				"--scaling-freq=2min"},
			VolumeMounts: []corev1.VolumeMount{{Name: "model", MountPath: "/opt/kapacity/model", ReadOnly: true}},
			Env:          []corev1.EnvVar{{Name: "HP_NAMESPACE", Value: "shop"}},
		}},
		Volumes: []corev1.Volume{{Name: "model", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "example-model"}}}}},
	}
	if edit != nil {
		edit(&pod)
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "job-1", Namespace: "shop"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{algorithmjob.ComponentLabelKey: algorithmjob.ComponentLabelValue}},
			Spec:       pod,
		}},
	}
}

// fakeRunner is a runner on a fake API: ConfigMap shop/example-model holds a model file, and
// every ServiceAccount token request is granted.
func fakeRunner(t *testing.T) (*JobRunner, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "example-model", Namespace: "shop"},
		Data:       map[string]string{"manifest.json": "{}"},
		BinaryData: map[string][]byte{"weights.bin": {0xff, 0x00}},
	})
	client.PrependReactor("create", "serviceaccounts", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "token" {
			return false, nil, nil
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "job-token"}}, nil
	})
	// Nothing listens there: a run gets as far as its first request.
	return newJobRunner(client, &rest.Config{Host: "https://127.0.0.1:1"}, t.TempDir()), client
}

// TestJobRunnerEmulatesOnlyKapacity checks that the runner refuses, naming the reason, what it
// cannot run as a pod would: another image or entrypoint, volumes other than ConfigMaps and
// emptyDirs, subPath mounts, environment from references.
func TestJobRunnerEmulatesOnlyKapacity(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*corev1.PodSpec)
		want string
	}{
		{"another image", func(p *corev1.PodSpec) { p.Containers[0].Image = "python:3" },
			`image "python:3", command []: the job runner emulates only Kapacity's own image ghcr.io/kapacitystack/kapacity:latest with its entrypoint`},
		{"a command", func(p *corev1.PodSpec) { p.Containers[0].Command = []string{"/bin/sh"} }, "emulates only Kapacity's own image"},
		{"no algorithm container", func(p *corev1.PodSpec) { p.Containers[0].Name = "main" }, `no container named algorithm among ["main"]`},
		{"a Secret volume", func(p *corev1.PodSpec) {
			p.Volumes[0].VolumeSource = corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}
		}, "volume model: only ConfigMap and emptyDir volumes are emulated"},
		{"a missing ConfigMap", func(p *corev1.PodSpec) { p.Volumes[0].ConfigMap.Name = "other" }, `volume model: ConfigMap shop/other: configmaps "other" not found`},
		{"a subPath", func(p *corev1.PodSpec) { p.Containers[0].VolumeMounts[0].SubPath = "x" }, "volumeMount model: subPath is not emulated"},
		{"a mount of no volume", func(p *corev1.PodSpec) { p.Containers[0].VolumeMounts[0].Name = "cache" }, "volumeMount cache: no such volume"},
		{"env from a reference", func(p *corev1.PodSpec) {
			p.Containers[0].Env = append(p.Containers[0].Env, corev1.EnvVar{Name: "HP_NAME", ValueFrom: &corev1.EnvVarSource{}})
		}, "env HP_NAME: valueFrom is not emulated"},
		{"an unknown subcommand", func(p *corev1.PodSpec) { p.Containers[0].Args[0] = "serve" }, "no such recommender subcommand"},
	} {
		t.Run(c.name, func(t *testing.T) {
			runner, _ := fakeRunner(t)
			run := runner.Run(context.Background(), algorithmJob(c.edit))
			if run.Err == nil || !strings.Contains(run.Err.Error(), c.want) {
				t.Errorf("error = %v, want one containing %q", run.Err, c.want)
			}
		})
	}
}

// TestJobRunnerRunsAsThePod checks the command line a job gets: the model volume's files in a
// directory standing for the mount, the container's environment as the flags it defaults (this
// process' HP_NAME does not leak into the job), and a kubeconfig of the ServiceAccount's token.
func TestJobRunnerRunsAsThePod(t *testing.T) {
	t.Setenv("HP_NAME", "leaked-from-the-host")
	t.Setenv("HP_NAMESPACE", "leaked-from-the-host")
	runner, client := fakeRunner(t)
	var modelDir string
	// The run's files are removed when it ends: look while recommend fails on its flags.
	run := runner.Run(context.Background(), algorithmJob(func(p *corev1.PodSpec) {
		p.Containers[0].Args = append(p.Containers[0].Args, "--re-test-dataset-size-in-seconds=3600")
	}))
	if run.Err == nil || !strings.Contains(run.Err.Error(), "--hp-name (or $HP_NAME) is required") {
		t.Fatalf("error = %v, want the container's missing HP_NAME reported (not the host's)", run.Err)
	}
	if strings.Contains(run.Err.Error(), "--hp-namespace") {
		t.Errorf("error = %v: the container's HP_NAMESPACE was not given", run.Err)
	}
	for _, a := range run.Args {
		if v, ok := strings.CutPrefix(a, "--tsf-model-path="); ok {
			modelDir = v
		}
	}
	if !strings.HasPrefix(modelDir, runner.dir) || !strings.HasSuffix(modelDir, filepath.Join("volumes", "model")) {
		t.Errorf("--tsf-model-path=%s, want the model volume's directory under %s", modelDir, runner.dir)
	}
	if last := run.Args[len(run.Args)-1]; !strings.HasPrefix(last, "--kubeconfig="+runner.dir) {
		t.Errorf("last argument %q, want the job's own kubeconfig", last)
	}
	if _, err := os.Stat(modelDir); !os.IsNotExist(err) {
		t.Errorf("the run's files are still there after it: %v", err)
	}
	requested := slices.ContainsFunc(client.Actions(), func(a clienttesting.Action) bool {
		return a.GetVerb() == "create" && a.GetSubresource() == "token" && a.GetNamespace() == "shop"
	})
	if !requested {
		t.Errorf("no token of ServiceAccount shop/%s requested; actions: %v", algorithmjob.DefaultServiceAccount, client.Actions())
	}
}

// TestJobRunnerWritesVolumes checks ConfigMap volumes as the kubelet writes them: every key, or
// only the items listed under their paths, binary data as is, and no path leaving the volume.
func TestJobRunnerWritesVolumes(t *testing.T) {
	runner, _ := fakeRunner(t)
	dir := t.TempDir()
	got, err := runner.volumes(context.Background(), "shop", []corev1.Volume{
		{Name: "all", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "example-model"}}}},
		{Name: "some", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "example-model"},
			Items: []corev1.KeyToPath{{Key: "weights.bin", Path: "nested/w.bin"}}}}},
		{Name: "optional", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"},
			Optional: ptr.To(true)}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		want string // "" means absent
	}{
		{filepath.Join(got["all"], "manifest.json"), "{}"},
		{filepath.Join(got["all"], "weights.bin"), "\xff\x00"},
		{filepath.Join(got["some"], "nested", "w.bin"), "\xff\x00"},
		{filepath.Join(got["some"], "manifest.json"), ""},
	} {
		b, err := os.ReadFile(c.file)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s exists, want it left out", c.file)
			}
			continue
		}
		if err != nil || string(b) != c.want {
			t.Errorf("%s = %q (%v), want %q", c.file, b, err, c.want)
		}
	}
	for _, v := range []string{"optional", "scratch"} {
		if fi, err := os.Stat(got[v]); err != nil || !fi.IsDir() {
			t.Errorf("volume %s: %v, want an empty directory", v, err)
		}
	}
	_, err = runner.volumes(context.Background(), "shop", []corev1.Volume{{Name: "evil", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "example-model"}, Items: []corev1.KeyToPath{{Key: "weights.bin", Path: "../../escape"}}}}}}, dir)
	if err == nil || !strings.Contains(err.Error(), "leaves the volume") {
		t.Errorf("an item path with ../ gave %v, want it refused", err)
	}
}

// TestTriggerCronJob checks the Job is the one `kubectl create job --from=cronjob/…` creates.
func TestTriggerCronJob(t *testing.T) {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "sample", Namespace: "shop", UID: "cj-uid"},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}},
			Spec:       algorithmJob(nil).Spec,
		}},
	}
	client := fake.NewClientset(cj)
	job, err := TriggerCronJob(context.Background(), client, "shop", "sample")
	if err != nil {
		t.Fatal(err)
	}
	if job.GenerateName != "sample-manual-" || job.Labels["team"] != "a" || job.Annotations["note"] != "x" ||
		job.Annotations[ManualInstantiateAnnotation] != "manual" {
		t.Errorf("job metadata %+v, want the template's labels and annotations, marked manual", job.ObjectMeta)
	}
	if !metav1.IsControlledBy(job, cj) {
		t.Errorf("ownerReferences %+v, want the CronJob as controller", job.OwnerReferences)
	}
	if !IsAlgorithmJob(job) || job.Spec.Template.Spec.Containers[0].Image != hportrait.DefaultPredictiveImage {
		t.Errorf("job spec %+v, want the CronJob's job template", job.Spec)
	}
	if _, err := TriggerCronJob(context.Background(), client, "shop", "absent"); err == nil || !strings.Contains(err.Error(), "CronJob shop/absent") {
		t.Errorf("a missing CronJob gave %v", err)
	}
}
