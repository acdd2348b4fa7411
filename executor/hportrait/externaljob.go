package hportrait

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
)

// Condition reasons of the ExternalJob algorithm.
const (
	ReasonFailedReconcileJob  = "FailedReconcileExternalAlgorithmJob"
	ReasonInvalidJobTemplate  = "InvalidExternalAlgorithmJob"
	ReasonFailedFetchResult   = "FailedFetchExternalAlgorithmJobResult"
	ReasonFailedCleanupJob    = "FailedCleanupExternalAlgorithmJob"
	algorithmContainerName    = "algorithm"
	envMetricsServerAddr      = "METRICS_SERVER_ADDR"
	envHPNamespace            = "HP_NAMESPACE"
	envHPName                 = "HP_NAME"
	defaultAlgorithmNamespace = "kapacity-system"
	// DefaultPredictiveImage is Kapacity's own image (as in deploy/), used for the algorithm of
	// Predictive portraits when neither the template nor the manager names an image. Its entrypoint
	// is the kapacity binary, so the job's arguments are given to its recommend subcommand.
	DefaultPredictiveImage = "ghcr.io/kapacitystack/kapacity:latest"
	predictiveSubcommand   = "recommend"
	// UnlabelledResultResync is how often a result without portraitresult.LabelKey (written by
	// an older or a third-party job) is re-read: the manager caches and watches only labelled
	// results, so its changes are not watched.
	UnlabelledResultResync = time.Minute
)

// JobOptions are the defaults of the algorithm jobs (the manager's --algorithm-job-* flags).
type JobOptions struct {
	// LegacyNamespace is where manager versions that ran every job in one namespace created the
	// CronJobs, named "<portrait namespace>-<portrait name>" (--algorithm-job-namespace, now
	// deprecated). A portrait still carrying the cleanup finalizer has its CronJob there removed,
	// so that an upgrade leaves nothing behind. Empty: kapacity-system.
	LegacyNamespace string
	// ServiceAccount is the ServiceAccount every job runs as, in its portrait's namespace; the
	// manager creates it with a RoleBinding to ClusterRole kapacity-algorithm-job. Templates may
	// name no other. Empty: algorithmjob.DefaultServiceAccount.
	ServiceAccount string
	// PredictiveImage is the image of the "algorithm" container of Predictive portraits when the
	// template leaves it empty; it runs the job from the template's arguments, as Kapacity's
	// algorithm image does. Empty: KapacityImage, running `kapacity recommend`.
	PredictiveImage string
	// KapacityImage is the image of this Kapacity release (the one every component runs from), used
	// as `kapacity recommend` when neither the template nor PredictiveImage names an image. Empty:
	// DefaultPredictiveImage.
	KapacityImage string
	// MetricsServerAddr is the METRICS_SERVER_ADDR given to the algorithm unless the template sets it.
	MetricsServerAddr string
}

func (o JobOptions) legacyNamespace() string {
	if o.LegacyNamespace == "" {
		return defaultAlgorithmNamespace
	}
	return o.LegacyNamespace
}

func (o JobOptions) serviceAccount() string {
	if o.ServiceAccount == "" {
		return algorithmjob.DefaultServiceAccount
	}
	return o.ServiceAccount
}

// CronJobKey is the CronJob of an ExternalJob portrait: in the portrait's own namespace, so the
// job runs with that tenant's quota and never with rights outside it, named by
// algorithmjob.CronJobName (unique and valid for any portrait name). The portrait owns it, so
// the garbage collector removes it with the portrait.
func (o JobOptions) CronJobKey(hp *v1alpha1.HorizontalPortrait) client.ObjectKey {
	return client.ObjectKey{Namespace: hp.Namespace, Name: algorithmjob.CronJobName(hp.Namespace, hp.Name)}
}

// legacyCronJobKey is where older managers put the portrait's CronJob.
func (o JobOptions) legacyCronJobKey(hp *v1alpha1.HorizontalPortrait) client.ObjectKey {
	return client.ObjectKey{Namespace: o.legacyNamespace(), Name: hp.Namespace + "-" + hp.Name}
}

// jobPath is where a HorizontalPortrait holds its algorithm job.
var jobPath = field.NewPath("spec", "algorithm", "externalJob", "job")

// resultOwner maps a result ConfigMap to its portrait's request.
func resultOwner(_ context.Context, o client.Object) []reconcile.Request {
	name, ok := portraitresult.PortraitName(o.GetName())
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// externalJob reconciles the CronJob of an ExternalJob portrait and reads its result into the
// status. A result that does not exist yet is reported in the condition, without a retry: the
// ConfigMap's creation enqueues the portrait.
func (r *Reconciler) externalJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus) (ctrl.Result, error) {
	algo := hp.Spec.Algorithm.ExternalJob
	if algo == nil {
		return ctrl.Result{}, r.failExternal(ctx, hp, original, ReasonFailedReconcileJob, errors.New("failed to reconcile external algorithm job: no externalJob"))
	}
	if err := r.removeLegacyJob(ctx, hp); err != nil {
		return ctrl.Result{}, err
	}
	want, err := r.Jobs.BuildCronJob(hp)
	var invalid *InvalidJobError
	if errors.As(err, &invalid) {
		// Nothing to retry until the spec changes; a CronJob of an earlier, valid template no
		// longer describes the portrait and goes.
		if err := r.deleteCronJob(ctx, hp); err != nil {
			return ctrl.Result{}, err
		}
		msg := "invalid external algorithm job: " + invalid.Error()
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonInvalidJobTemplate, "ExternalJob", "%s", eventNote(msg))
		setCondition(hp, metav1.ConditionFalse, ReasonInvalidJobTemplate, msg)
		return ctrl.Result{}, r.updateStatus(ctx, hp, original)
	}
	if err == nil {
		err = r.applyCronJob(ctx, hp, want)
	}
	if err != nil {
		return ctrl.Result{}, r.failExternal(ctx, hp, original, ReasonFailedReconcileJob, fmt.Errorf("failed to reconcile external algorithm job: %w", err))
	}
	if algo.ResultSource.Type != v1alpha1.ConfigMapPortraitAlgorithmResultSourceType {
		return ctrl.Result{}, r.failExternal(ctx, hp, original, ReasonFailedFetchResult,
			fmt.Errorf("failed to fetch external algorithm job result: unsupported result source type %q", algo.ResultSource.Type))
	}
	cm, watched, err := r.getResult(ctx, hp)
	if apierrors.IsNotFound(err) {
		msg := fmt.Sprintf("failed to fetch external algorithm job result: ConfigMap %s does not exist yet", portraitresult.ConfigMapName(hp.Name))
		setCondition(hp, metav1.ConditionFalse, ReasonFailedFetchResult, msg)
		return ctrl.Result{}, r.updateStatus(ctx, hp, original)
	}
	if err != nil {
		return ctrl.Result{}, r.failExternal(ctx, hp, original, ReasonFailedFetchResult, fmt.Errorf("failed to fetch external algorithm job result: %w", err))
	}
	var res ctrl.Result
	if !watched {
		res.RequeueAfter = UnlabelledResultResync
	}
	// The replicas alone: a broken band is the Burst generator's to report, and must
	// not stop the portrait.
	result, err := portraitresult.DecodeReplicas(cm.Data)
	if err != nil {
		return res, r.failExternal(ctx, hp, original, ReasonFailedFetchResult,
			fmt.Errorf("failed to fetch external algorithm job result: ConfigMap %s: %w", cm.Name, err))
	}
	hp.Status.PortraitData = result.PortraitData()
	setCondition(hp, metav1.ConditionTrue, ReasonSucceeded, "portrait has been successfully generated")
	return res, r.updateStatus(ctx, hp, original)
}

// maxEventNote is the API server's limit on an event's note: a longer event is refused, and lost.
const maxEventNote = 1024

// eventNote is msg cut to fit an event (the condition keeps all of it), on a rune boundary.
func eventNote(msg string) string {
	const more = " …(see the PortraitGenerated condition)"
	if len(msg) <= maxEventNote {
		return msg
	}
	cut := maxEventNote - len(more)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + more
}

// getResult reads the result ConfigMap: from the cache, which holds labelled results only, else
// from the API server (watched false), for results written without the label.
func (r *Reconciler) getResult(ctx context.Context, hp *v1alpha1.HorizontalPortrait) (*corev1.ConfigMap, bool, error) {
	key := client.ObjectKey{Namespace: hp.Namespace, Name: portraitresult.ConfigMapName(hp.Name)}
	cm := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, key, cm)
	if err == nil || !apierrors.IsNotFound(err) || r.Reader == nil {
		return cm, true, err
	}
	if err := r.Reader.Get(ctx, key, cm); err != nil {
		return nil, false, err
	}
	return cm, false, nil
}

// failExternal reports a failure as a Warning event and the condition, and returns it for a retry
// with backoff.
func (r *Reconciler) failExternal(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus, reason string, err error) error {
	r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, reason, "ExternalJob", "%s", eventNote(err.Error()))
	setCondition(hp, metav1.ConditionFalse, reason, err.Error())
	if serr := r.updateStatus(ctx, hp, original); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// InvalidJobError is a job template the manager refuses to run; Errs name each field.
type InvalidJobError struct{ Errs field.ErrorList }

func (e *InvalidJobError) Error() string { return e.Errs.ToAggregate().Error() }

// BuildCronJob is the CronJob of an ExternalJob portrait: the template, validated by
// algorithmjob.ValidateJobTemplate (an *InvalidJobError otherwise), in the portrait's namespace,
// owned by the portrait, running as the jobs' ServiceAccount under Pod Security "restricted"
// (defaults filled in), with the portrait's environment and the component label on the CronJob
// and its pods.
func (o JobOptions) BuildCronJob(hp *v1alpha1.HorizontalPortrait) (*batchv1.CronJob, error) {
	job := hp.Spec.Algorithm.ExternalJob.Job
	if errs := algorithmjob.ValidateJobTemplate(&job, o.serviceAccount(), jobPath); len(errs) > 0 {
		return nil, &InvalidJobError{Errs: errs}
	}
	tmpl := job.CronJob.Template.DeepCopy()
	key := o.CronJobKey(hp)
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels:      merge(tmpl.Labels, map[string]string{algorithmjob.ComponentLabelKey: algorithmjob.ComponentLabelValue}),
			Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "HorizontalPortrait", Name: hp.Name, UID: hp.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	podTmpl := &cj.Spec.JobTemplate.Spec.Template
	podTmpl.Labels = merge(podTmpl.Labels, map[string]string{algorithmjob.ComponentLabelKey: algorithmjob.ComponentLabelValue})
	pod := &podTmpl.Spec
	pod.ServiceAccountName, pod.DeprecatedServiceAccount = o.serviceAccount(), ""
	if pod.AutomountServiceAccountToken == nil {
		// The job authenticates with its token (history, result), whatever the ServiceAccount says.
		pod.AutomountServiceAccountToken = ptr.To(true)
	}
	algorithmjob.ApplyPodSecurityDefaults(pod)
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == algorithmContainerName })
	if i < 0 {
		return cj, nil
	}
	c := &pod.Containers[i]
	if c.Image == "" && hp.Spec.PortraitType == v1alpha1.PredictivePortraitType {
		c.Image = o.PredictiveImage
		if c.Image == "" {
			// Without an image the CronJob is invalid; Kapacity's quick-start relies on the
			// default, and Kapacity's image runs every component, so the job names its subcommand.
			c.Image = cmp.Or(o.KapacityImage, DefaultPredictiveImage)
			if len(c.Command) == 0 {
				c.Args = append([]string{predictiveSubcommand}, c.Args...)
			}
		}
	}
	if o.MetricsServerAddr != "" {
		setEnvDefault(c, envMetricsServerAddr, o.MetricsServerAddr)
	}
	// Always the portrait's own: unlike Kapacity, which appended them to whatever was there.
	setEnv(c, envHPNamespace, hp.Namespace)
	setEnv(c, envHPName, hp.Name)
	return cj, nil
}

func setEnvDefault(c *corev1.Container, name, value string) {
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name }) {
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
}

func setEnv(c *corev1.Container, name, value string) {
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// applyCronJob creates the CronJob, after the ServiceAccount it runs as, or brings its spec,
// labels and annotations to the template's (extra labels and annotations are kept). A CronJob of
// that name the portrait does not control is left alone and reported.
func (r *Reconciler) applyCronJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait, want *batchv1.CronJob) error {
	if r.Access != nil {
		if err := r.Access.Ensure(ctx, hp); err != nil {
			return err
		}
	}
	cur := &batchv1.CronJob{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating CronJob %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting CronJob %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !metav1.IsControlledBy(cur, hp) {
		return fmt.Errorf("CronJob %s/%s exists and is not controlled by this portrait", cur.Namespace, cur.Name)
	}
	patched := cur.DeepCopy()
	patched.Spec = want.Spec
	patched.Labels = merge(patched.Labels, want.Labels)
	patched.Annotations = merge(patched.Annotations, want.Annotations)
	// The API server defaults fields of the spec: compare after a dry run would be exact, but a
	// semantic comparison of what we set is enough to avoid patching on every reconcile.
	if specCovers(cur.Spec, want.Spec) && equality.Semantic.DeepEqual(cur.Labels, patched.Labels) && equality.Semantic.DeepEqual(cur.Annotations, patched.Annotations) {
		return nil
	}
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(cur)); err != nil {
		return fmt.Errorf("patching CronJob %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// deleteCronJob deletes the portrait's CronJob, if it has one: for a portrait that left
// ExternalJob or whose template became invalid. (A deleted portrait's goes with it: it owns it.)
func (r *Reconciler) deleteCronJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait) error {
	cj := &batchv1.CronJob{}
	err := r.Client.Get(ctx, r.Jobs.CronJobKey(hp), cj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting CronJob %s: %w", r.Jobs.CronJobKey(hp), err)
	}
	if !metav1.IsControlledBy(cj, hp) {
		return nil
	}
	if err := r.Client.Delete(ctx, cj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("failed to clean up external algorithm job: %w", err)
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedCleanupJob, "Cleanup", "%v", err)
		return err
	}
	return nil
}

// specCovers tells whether have equals want once want's unset fields take have's (server-side)
// defaults.
func specCovers(have, want batchv1.CronJobSpec) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	merged := *have.DeepCopy()
	if err := json.Unmarshal(b, &merged); err != nil {
		return false
	}
	return equality.Semantic.DeepEqual(have, merged)
}

func merge(into, from map[string]string) map[string]string {
	if len(from) == 0 {
		return into
	}
	out := make(map[string]string, len(into)+len(from))
	for k, v := range into {
		out[k] = v
	}
	for k, v := range from {
		out[k] = v
	}
	return out
}

// removeLegacyJob finishes the upgrade of a portrait from a manager that ran every job in one
// namespace: that manager's finalizer marks that a CronJob "<namespace>-<name>" may exist in
// the legacy namespace. It is deleted, unless its environment names another portrait (the old
// names collided: team-a/b-web and team-a-b/web), and then the finalizer is removed. It runs
// for deleted portraits too, so nothing needs remembering across restarts.
func (r *Reconciler) removeLegacyJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait) error {
	if !controllerutil.ContainsFinalizer(hp, v1alpha1.FinalizerName) {
		return nil
	}
	key := r.Jobs.legacyCronJobKey(hp)
	cj := &batchv1.CronJob{}
	err := r.Client.Get(ctx, key, cj)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("getting legacy CronJob %s: %w", key, err)
	case legacyJobOf(cj, hp):
		if err := r.Client.Delete(ctx, cj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			err = fmt.Errorf("failed to clean up legacy external algorithm job %s: %w", key, err)
			r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedCleanupJob, "Cleanup", "%v", err)
			return err
		}
	}
	patched := hp.DeepCopy()
	controllerutil.RemoveFinalizer(patched, v1alpha1.FinalizerName)
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(hp)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	hp.Finalizers, hp.ResourceVersion = patched.Finalizers, patched.ResourceVersion
	return nil
}

// legacyJobOf tells whether a legacy CronJob belongs to hp: older managers set HP_NAMESPACE and
// HP_NAME on the "algorithm" container. One without them cannot be told apart and is taken.
func legacyJobOf(cj *batchv1.CronJob, hp *v1alpha1.HorizontalPortrait) bool {
	pod := &cj.Spec.JobTemplate.Spec.Template.Spec
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == algorithmContainerName })
	if i < 0 {
		return true
	}
	env := map[string]string{}
	for _, e := range pod.Containers[i].Env {
		env[e.Name] = e.Value
	}
	ns, hasNS := env[envHPNamespace]
	name, hasName := env[envHPName]
	return (!hasNS || ns == hp.Namespace) && (!hasName || name == hp.Name)
}
