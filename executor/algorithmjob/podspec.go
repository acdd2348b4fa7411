package algorithmjob

import (
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// Names and labels of what the manager creates for algorithm jobs.
const (
	// DefaultServiceAccount is the ServiceAccount algorithm jobs run as, in their portrait's
	// namespace (the manager's --algorithm-job-default-service-account).
	DefaultServiceAccount = "kapacity-algorithm-job"
	// ClusterRoleName is the ClusterRole (deploy/manager/algorithm-job-rbac.yaml) the manager binds
	// to that ServiceAccount in each namespace with an ExternalJob portrait.
	ClusterRoleName = "kapacity-algorithm-job"
	// ComponentLabelKey and ComponentLabelValue mark the CronJobs and the job pods, so that a
	// NetworkPolicy can let only algorithm jobs reach the adapter's gRPC service.
	ComponentLabelKey   = "app.kubernetes.io/component"
	ComponentLabelValue = "kapacity-algorithm-job"
	// ManagedByLabelKey and ManagedByLabelValue mark the ServiceAccounts and RoleBindings the
	// manager created (and may therefore change and let the garbage collector remove).
	ManagedByLabelKey   = "app.kubernetes.io/managed-by"
	ManagedByLabelValue = "kapacity-manager"
)

// restricted is the Pod Security level every algorithm job passes: the newest policy version
// this module knows.
var restricted = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// evaluator is Kubernetes' own Pod Security evaluator (the one the PodSecurity admission plugin
// runs), built once: it is immutable.
var evaluator = sync.OnceValues(func() (policy.Evaluator, error) {
	return policy.NewEvaluator(policy.DefaultChecks(), nil)
})

// ApplyPodSecurityDefaults sets the fields Pod Security "restricted" requires where pod leaves
// them unset, so that templates written before Kapacity enforced it (the quick-start's among
// them) keep working: runAsNonRoot true and the RuntimeDefault seccomp profile for the pod, and
// for every container allowPrivilegeEscalation false and all capabilities dropped. It never
// changes a value the template sets: an explicit violation stays, for ValidateJobTemplate to
// reject.
func ApplyPodSecurityDefaults(pod *corev1.PodSpec) {
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil {
		sc.RunAsNonRoot = ptr.To(true)
	}
	if sc.SeccompProfile == nil {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	defaultContainer := func(c *corev1.Container) {
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		csc := c.SecurityContext
		if csc.AllowPrivilegeEscalation == nil {
			csc.AllowPrivilegeEscalation = ptr.To(false)
		}
		if csc.Capabilities == nil {
			csc.Capabilities = &corev1.Capabilities{}
		}
		// Dropping ALL is only ever stricter than what the template drops.
		if !slices.Contains(csc.Capabilities.Drop, "ALL") {
			csc.Capabilities.Drop = append(csc.Capabilities.Drop, "ALL")
		}
	}
	for i := range pod.InitContainers {
		defaultContainer(&pod.InitContainers[i])
	}
	for i := range pod.Containers {
		defaultContainer(&pod.Containers[i])
	}
}

// ValidateJobTemplate checks the algorithm job of an ExternalJob portrait (job is at fldPath,
// e.g. spec.algorithm.externalJob.job of a HorizontalPortrait) as the manager will run it as
// serviceAccount: a CronJob whose pod
//   - names no ServiceAccount but serviceAccount (the manager fills it in);
//   - mounts no Secret, PersistentVolumeClaim, ephemeral or CSI volume and reads no Secret into
//     its environment: the kubelet hands those over whatever the job's ServiceAccount may read,
//     so they would give whoever writes a portrait the namespace's Secrets and data;
//   - passes Pod Security "restricted" once ApplyPodSecurityDefaults has filled in what the
//     template leaves unset (so privileged containers, host namespaces, hostPath volumes, added
//     capabilities and runAsUser 0 are refused).
//
// Each error names the field and what to do instead. It changes nothing.
func ValidateJobTemplate(job *v1alpha1.PortraitAlgorithmJob, serviceAccount string, fldPath *field.Path) field.ErrorList {
	if job.Type != v1alpha1.CronJobPortraitAlgorithmJobType {
		return field.ErrorList{field.NotSupported(fldPath.Child("type"), job.Type, []v1alpha1.PortraitAlgorithmJobType{v1alpha1.CronJobPortraitAlgorithmJobType})}
	}
	if job.CronJob == nil {
		return field.ErrorList{field.Required(fldPath.Child("cronJob"), "cronJob must be set when type is CronJob: add cronJob.template")}
	}
	tmplPath := fldPath.Child("cronJob", "template", "spec", "jobTemplate", "spec", "template")
	podTmpl := &job.CronJob.Template.Spec.JobTemplate.Spec.Template
	var errs field.ErrorList
	errs = append(errs, validateServiceAccount(&podTmpl.Spec, serviceAccount, tmplPath.Child("spec"))...)
	errs = append(errs, validateCredentials(&podTmpl.Spec, serviceAccount, tmplPath.Child("spec"))...)
	errs = append(errs, validatePodSecurity(&podTmpl.ObjectMeta, &podTmpl.Spec, tmplPath)...)
	return errs
}

// ValidateServiceAccountName checks the manager's --algorithm-job-default-service-account.
func ValidateServiceAccountName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("invalid ServiceAccount name %q: %v", name, msgs)
	}
	return nil
}

func validateServiceAccount(pod *corev1.PodSpec, serviceAccount string, podPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	fix := fmt.Sprintf("algorithm jobs run as ServiceAccount %q of the portrait's namespace: remove the field or set it to %q, "+
		"and bind any extra rights the job needs to %q with a RoleBinding in that namespace", serviceAccount, serviceAccount, serviceAccount)
	if n := pod.ServiceAccountName; n != "" && n != serviceAccount {
		errs = append(errs, field.Invalid(podPath.Child("serviceAccountName"), n, fix))
	}
	if n := pod.DeprecatedServiceAccount; n != "" && n != serviceAccount {
		errs = append(errs, field.Invalid(podPath.Child("serviceAccount"), n, fix))
	}
	return errs
}

func validateCredentials(pod *corev1.PodSpec, serviceAccount string, podPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	forbid := func(p *field.Path, what string) {
		errs = append(errs, field.Forbidden(p, fmt.Sprintf("algorithm jobs may not use %s: the kubelet provides them whatever the job's ServiceAccount may read; "+
			"grant ServiceAccount %q access with a Role in the portrait's namespace and read it through the API instead", what, serviceAccount)))
	}
	for i := range pod.Volumes {
		v, p := &pod.Volumes[i], podPath.Child("volumes").Index(i)
		switch {
		case v.Secret != nil:
			forbid(p.Child("secret"), "Secret volumes")
		case v.PersistentVolumeClaim != nil:
			forbid(p.Child("persistentVolumeClaim"), "PersistentVolumeClaim volumes")
		case v.Ephemeral != nil:
			forbid(p.Child("ephemeral"), "ephemeral volumes")
		case v.CSI != nil:
			forbid(p.Child("csi"), "CSI volumes")
		case v.Projected != nil:
			for j, s := range v.Projected.Sources {
				if s.Secret != nil {
					forbid(p.Child("projected", "sources").Index(j).Child("secret"), "projected Secrets")
				}
			}
		}
	}
	containers := func(cs []corev1.Container, p *field.Path) {
		for i := range cs {
			cp := p.Index(i)
			for j, e := range cs[i].Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					forbid(cp.Child("env").Index(j).Child("valueFrom", "secretKeyRef"), "Secret environment variables")
				}
			}
			for j, e := range cs[i].EnvFrom {
				if e.SecretRef != nil {
					forbid(cp.Child("envFrom").Index(j).Child("secretRef"), "Secret environment variables")
				}
			}
		}
	}
	containers(pod.InitContainers, podPath.Child("initContainers"))
	containers(pod.Containers, podPath.Child("containers"))
	return errs
}

// validatePodSecurity runs the restricted checks on a copy of the pod with the defaults applied.
func validatePodSecurity(meta *metav1.ObjectMeta, spec *corev1.PodSpec, tmplPath *field.Path) field.ErrorList {
	ev, err := evaluator()
	if err != nil {
		// The checks are compiled in; this cannot fail at run time.
		return field.ErrorList{field.InternalError(tmplPath, fmt.Errorf("building the Pod Security evaluator: %w", err))}
	}
	pod := spec.DeepCopy()
	ApplyPodSecurityDefaults(pod)
	var errs field.ErrorList
	for _, r := range ev.EvaluatePod(restricted, meta, pod) {
		if r.Allowed {
			continue
		}
		msg := r.ForbiddenReason
		if r.ForbiddenDetail != "" {
			msg += " (" + r.ForbiddenDetail + ")"
		}
		errs = append(errs, field.Forbidden(tmplPath.Child("spec"), fmt.Sprintf(
			`violates Pod Security "restricted": %s; algorithm jobs run under the restricted profile: remove the setting`, msg)))
	}
	return errs
}
