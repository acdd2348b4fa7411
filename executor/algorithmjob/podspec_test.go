package algorithmjob

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

const sa = "kapacity-algorithm-job"

var jobPath = field.NewPath("spec", "algorithm", "externalJob", "job")

const podPath = "spec.algorithm.externalJob.job.cronJob.template.spec.jobTemplate.spec.template.spec"

// quickStartJob is the algorithm job of Kapacity's predictive quick-start sample, unchanged.
func quickStartJob(t *testing.T) *v1alpha1.PortraitAlgorithmJob {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "quickstart", "dynamic-predictive-portrait-sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict(raw, ihpa); err != nil {
		t.Fatal(err)
	}
	return &ihpa.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob.Job
}

func TestValidateJobTemplate(t *testing.T) {
	c0 := func(j *v1alpha1.PortraitAlgorithmJob) *corev1.Container {
		return &j.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	}
	pod := func(j *v1alpha1.PortraitAlgorithmJob) *corev1.PodSpec {
		return &j.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec
	}
	tests := []struct {
		name   string
		mutate func(*v1alpha1.PortraitAlgorithmJob)
		// want are substrings of the one error expected (field path and message); none: valid.
		want []string
	}{
		{name: "quick-start sample", mutate: func(*v1alpha1.PortraitAlgorithmJob) {}},
		{name: "the jobs' own ServiceAccount", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).ServiceAccountName = sa }},
		{name: "explicit restricted settings", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			c0(j).SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
		}},
		{name: "foreign ServiceAccount", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).ServiceAccountName = "kapacity-manager" },
			want: []string{podPath + ".serviceAccountName: Invalid value: \"kapacity-manager\"", `run as ServiceAccount "kapacity-algorithm-job"`}},
		{name: "deprecated serviceAccount", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).DeprecatedServiceAccount = "default" },
			want: []string{podPath + ".serviceAccount: Invalid value: \"default\""}},
		{name: "privileged", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, want: []string{podPath + ": Forbidden", `privileged (container "algorithm" must not set securityContext.privileged=true)`}},
		{name: "hostPID", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).HostPID = true },
			want: []string{podPath + ": Forbidden", "host namespaces (hostPID=true)"}},
		{name: "hostNetwork", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).HostNetwork = true },
			want: []string{"host namespaces (hostNetwork=true)"}},
		{name: "hostIPC", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { pod(j).HostIPC = true },
			want: []string{"host namespaces (hostIPC=true)"}},
		{name: "hostPath", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).Volumes = append(pod(j).Volumes, corev1.Volume{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}, want: []string{`volume "root" uses restricted volume type "hostPath"`}},
		{name: "capabilities add", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		}, want: []string{`"SYS_ADMIN"`, "capabilities"}},
		{name: "runAsUser 0", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}
		}, want: []string{"runAsUser=0"}},
		{name: "runAsNonRoot false", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).SecurityContext = &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}
		}, want: []string{"runAsNonRoot != true"}},
		{name: "privilege escalation", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}
		}, want: []string{"allowPrivilegeEscalation != false"}},
		{name: "unconfined seccomp", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}, want: []string{"seccompProfile"}},
		{name: "privileged init container", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).InitContainers = []corev1.Container{{Name: "init", Image: "x", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}, want: []string{`container "init" must not set securityContext.privileged=true`}},
		{name: "Secret volume", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).Volumes = append(pod(j).Volumes, corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}})
		}, want: []string{podPath + ".volumes[1].secret: Forbidden", "Secret volumes"}},
		{name: "projected Secret", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).Volumes = append(pod(j).Volumes, corev1.Volume{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}}})
		}, want: []string{podPath + ".volumes[1].projected.sources[0].secret: Forbidden"}},
		{name: "PersistentVolumeClaim", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			pod(j).Volumes = append(pod(j).Volumes, corev1.Volume{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
		}, want: []string{podPath + ".volumes[1].persistentVolumeClaim: Forbidden"}},
		{name: "Secret env", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).Env = []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "pw"}}}}
		}, want: []string{podPath + ".containers[0].env[0].valueFrom.secretKeyRef: Forbidden"}},
		{name: "Secret envFrom", mutate: func(j *v1alpha1.PortraitAlgorithmJob) {
			c0(j).EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
		}, want: []string{podPath + ".containers[0].envFrom[0].secretRef: Forbidden"}},
		{name: "not a CronJob", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { j.Type = "Job" },
			want: []string{"spec.algorithm.externalJob.job.type: Unsupported value"}},
		{name: "no cronJob", mutate: func(j *v1alpha1.PortraitAlgorithmJob) { j.CronJob = nil },
			want: []string{"spec.algorithm.externalJob.job.cronJob: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := quickStartJob(t)
			tt.mutate(job)
			before := job.DeepCopy()
			errs := ValidateJobTemplate(job, sa, jobPath)
			if len(tt.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs.ToAggregate())
				}
			} else {
				if len(errs) == 0 {
					t.Fatalf("accepted, want an error with %q", tt.want)
				}
				msg := errs.ToAggregate().Error()
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q lacks %q", msg, w)
					}
				}
			}
			if !equalJobs(before, job) {
				t.Error("ValidateJobTemplate changed the template")
			}
		})
	}
}

func equalJobs(a, b *v1alpha1.PortraitAlgorithmJob) bool {
	ra, _ := yaml.Marshal(a)
	rb, _ := yaml.Marshal(b)
	return string(ra) == string(rb)
}

// TestDefaultsPassRestricted: the quick-start's pod spec, which sets no security field, passes
// Kubernetes' own restricted evaluator once the defaults are applied, and fails it without them
// (so the defaults, not a lenient check, make it pass).
func TestDefaultsPassRestricted(t *testing.T) {
	job := quickStartJob(t)
	tmpl := &job.CronJob.Template.Spec.JobTemplate.Spec.Template
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	if agg := policy.AggregateCheckResults(ev.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec)); agg.Allowed {
		t.Fatal("the sample passes restricted without defaults: the test proves nothing")
	}
	ApplyPodSecurityDefaults(&tmpl.Spec)
	if agg := policy.AggregateCheckResults(ev.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec)); !agg.Allowed {
		t.Errorf("with the defaults: %v %v", agg.ForbiddenReasons, agg.ForbiddenDetails)
	}
	// Explicit values are kept: defaults never loosen nor silently fix a template.
	c := &tmpl.Spec.Containers[0]
	c.SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	ApplyPodSecurityDefaults(&tmpl.Spec)
	if !*c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("an explicit allowPrivilegeEscalation=true was overwritten")
	}
}
