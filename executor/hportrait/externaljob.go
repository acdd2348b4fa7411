package hportrait

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// Condition reasons of the ExternalJob algorithm.
const (
	ReasonFailedReconcileJob  = "FailedReconcileExternalAlgorithmJob"
	ReasonFailedFetchResult   = "FailedFetchExternalAlgorithmJobResult"
	ReasonFailedCleanupJob    = "FailedCleanupExternalAlgorithmJob"
	algorithmContainerName    = "algorithm"
	resultSuffix              = "-result"
	envMetricsServerAddr      = "METRICS_SERVER_ADDR"
	envHPNamespace            = "HP_NAMESPACE"
	envHPName                 = "HP_NAME"
	resultKeyType             = "type"
	resultKeyExpireTime       = "expireTime"
	resultKeyTimeSeries       = "timeSeries"
	resultTypeTimeSeries      = "TimeSeries"
	defaultAlgorithmNamespace = "kapacity-system"
	// DefaultPredictiveImage is Kapacity's own image (as in deploy/), used for the algorithm of
	// Predictive portraits when neither the template nor the manager names an image. Its entrypoint
	// is the kapacity binary, so the job's arguments are given to its recommend subcommand.
	DefaultPredictiveImage = "ghcr.io/kapacitystack/kapacity:latest"
	predictiveSubcommand   = "recommend"
)

// JobOptions are the defaults of the algorithm jobs (the manager's --algorithm-job-* flags).
type JobOptions struct {
	// Namespace is where the CronJobs run, named "<portrait namespace>-<portrait name>".
	Namespace string
	// ServiceAccount is the jobs' service account when the template names none.
	ServiceAccount string
	// PredictiveImage is the image of the "algorithm" container of Predictive portraits when the
	// template leaves it empty; it runs the job from the template's arguments, as Kapacity's
	// algorithm image does. Empty: DefaultPredictiveImage, running `kapacity recommend`.
	PredictiveImage string
	// MetricsServerAddr is the METRICS_SERVER_ADDR given to the algorithm unless the template sets it.
	MetricsServerAddr string
}

func (o JobOptions) namespace() string {
	if o.Namespace == "" {
		return defaultAlgorithmNamespace
	}
	return o.Namespace
}

// CronJobKey is the CronJob of an ExternalJob portrait. The jobs live in one namespace, so the
// name carries the portrait's namespace; there is no owner reference across namespaces, hence the
// finalizer.
func (o JobOptions) CronJobKey(hp *v1alpha1.HorizontalPortrait) client.ObjectKey {
	return client.ObjectKey{Namespace: o.namespace(), Name: hp.Namespace + "-" + hp.Name}
}

// ResultConfigMapName is the ConfigMap the job writes its result to, in the portrait's namespace.
func ResultConfigMapName(hpName string) string { return hpName + resultSuffix }

// resultOwner maps a result ConfigMap to its portrait's request.
func resultOwner(_ context.Context, o client.Object) []reconcile.Request {
	name, ok := strings.CutSuffix(o.GetName(), resultSuffix)
	if !ok || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// externalJob reconciles the CronJob of an ExternalJob portrait and reads its result into the
// status. A result that does not exist yet is reported in the condition, without a retry: the
// ConfigMap's creation enqueues the portrait.
func (r *Reconciler) externalJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus) error {
	algo := hp.Spec.Algorithm.ExternalJob
	if err := r.ensureFinalizer(ctx, hp); err != nil {
		return err
	}
	if err := r.applyCronJob(ctx, hp, algo); err != nil {
		return r.failExternal(ctx, hp, original, ReasonFailedReconcileJob, fmt.Errorf("failed to reconcile external algorithm job: %w", err))
	}
	if algo.ResultSource.Type != v1alpha1.ConfigMapPortraitAlgorithmResultSourceType {
		return r.failExternal(ctx, hp, original, ReasonFailedFetchResult,
			fmt.Errorf("failed to fetch external algorithm job result: unsupported result source type %q", algo.ResultSource.Type))
	}
	cm := &corev1.ConfigMap{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hp.Namespace, Name: ResultConfigMapName(hp.Name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			msg := fmt.Sprintf("failed to fetch external algorithm job result: ConfigMap %s does not exist yet", ResultConfigMapName(hp.Name))
			setCondition(hp, metav1.ConditionFalse, ReasonFailedFetchResult, msg)
			return r.updateStatus(ctx, hp, original)
		}
		return r.failExternal(ctx, hp, original, ReasonFailedFetchResult, fmt.Errorf("failed to fetch external algorithm job result: %w", err))
	}
	data, err := ParseResult(cm.Data)
	if err != nil {
		return r.failExternal(ctx, hp, original, ReasonFailedFetchResult,
			fmt.Errorf("failed to fetch external algorithm job result: ConfigMap %s: %w", cm.Name, err))
	}
	hp.Status.PortraitData = data
	setCondition(hp, metav1.ConditionTrue, ReasonSucceeded, "portrait has been successfully generated")
	return r.updateStatus(ctx, hp, original)
}

// failExternal reports a failure as a Warning event and the condition, and returns it for a retry
// with backoff.
func (r *Reconciler) failExternal(ctx context.Context, hp *v1alpha1.HorizontalPortrait, original *v1alpha1.HorizontalPortraitStatus, reason string, err error) error {
	r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, reason, "ExternalJob", "%v", err)
	setCondition(hp, metav1.ConditionFalse, reason, err.Error())
	if serr := r.updateStatus(ctx, hp, original); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// ParseResult reads the algorithm's result ConfigMap data: type "TimeSeries", an optional
// expireTime (RFC 3339) and timeSeries, a JSON object of integer Unix seconds to replicas. The
// points are sorted by time.
func ParseResult(data map[string]string) (*v1alpha1.HorizontalPortraitData, error) {
	switch t := data[resultKeyType]; t {
	case resultTypeTimeSeries:
	case "":
		return nil, fmt.Errorf("no %q key", resultKeyType)
	default:
		return nil, fmt.Errorf("unsupported result type %q", t)
	}
	out := &v1alpha1.HorizontalPortraitData{Type: v1alpha1.TimeSeriesHorizontalPortraitDataType}
	if s := data[resultKeyExpireTime]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q: %w", resultKeyExpireTime, s, err)
		}
		out.ExpireTime = &metav1.Time{Time: t}
	}
	raw, ok := data[resultKeyTimeSeries]
	if !ok {
		return nil, fmt.Errorf("no %q key", resultKeyTimeSeries)
	}
	var series map[string]int32
	if err := json.Unmarshal([]byte(raw), &series); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", resultKeyTimeSeries, err)
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("empty %s", resultKeyTimeSeries)
	}
	points := make([]v1alpha1.ReplicaTimeSeriesPoint, 0, len(series))
	for k, v := range series {
		ts, err := strconv.ParseInt(k, 10, 64)
		if err != nil || ts < 0 {
			return nil, fmt.Errorf("invalid %s timestamp %q: want integer Unix seconds", resultKeyTimeSeries, k)
		}
		if v < 0 {
			return nil, fmt.Errorf("negative replicas %d at %d", v, ts)
		}
		points = append(points, v1alpha1.ReplicaTimeSeriesPoint{Timestamp: ts, Replicas: v})
	}
	slices.SortFunc(points, func(a, b v1alpha1.ReplicaTimeSeriesPoint) int { return int(a.Timestamp - b.Timestamp) })
	out.TimeSeries = &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: points}
	return out, nil
}

// BuildCronJob is the CronJob of an ExternalJob portrait: the template with the defaults filled in.
func (o JobOptions) BuildCronJob(hp *v1alpha1.HorizontalPortrait) (*batchv1.CronJob, error) {
	job := hp.Spec.Algorithm.ExternalJob.Job
	if job.Type != v1alpha1.CronJobPortraitAlgorithmJobType {
		return nil, fmt.Errorf("unsupported job type %q", job.Type)
	}
	if job.CronJob == nil {
		return nil, errors.New("no cronJob template")
	}
	tmpl := job.CronJob.Template.DeepCopy()
	key := o.CronJobKey(hp)
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec:       tmpl.Spec,
	}
	pod := &cj.Spec.JobTemplate.Spec.Template.Spec
	if pod.ServiceAccountName == "" && pod.DeprecatedServiceAccount == "" && o.ServiceAccount != "" {
		pod.ServiceAccountName = o.ServiceAccount
	}
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == algorithmContainerName })
	if i < 0 {
		return cj, nil
	}
	c := &pod.Containers[i]
	if c.Image == "" && hp.Spec.PortraitType == v1alpha1.PredictivePortraitType {
		c.Image = o.PredictiveImage
		if c.Image == "" {
			// Without an image the CronJob is invalid; Kapacity's quick-start relies on the
			// default, and this image runs every component, so the job names its subcommand.
			c.Image = DefaultPredictiveImage
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

// applyCronJob creates the CronJob or brings its spec, labels and annotations to the template's
// (extra labels and annotations are kept).
func (r *Reconciler) applyCronJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait, algo *v1alpha1.ExternalJobPortraitAlgorithm) error {
	if algo == nil {
		return errors.New("no externalJob")
	}
	want, err := r.Jobs.BuildCronJob(hp)
	if err != nil {
		return err
	}
	cur := &batchv1.CronJob{}
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating CronJob %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting CronJob %s/%s: %w", want.Namespace, want.Name, err)
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

func (r *Reconciler) ensureFinalizer(ctx context.Context, hp *v1alpha1.HorizontalPortrait) error {
	if controllerutil.ContainsFinalizer(hp, v1alpha1.FinalizerName) {
		return nil
	}
	patched := hp.DeepCopy()
	controllerutil.AddFinalizer(patched, v1alpha1.FinalizerName)
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(hp)); err != nil {
		return fmt.Errorf("adding the finalizer: %w", err)
	}
	hp.Finalizers, hp.ResourceVersion = patched.Finalizers, patched.ResourceVersion
	return nil
}

// cleanupJob deletes the portrait's CronJob and then its finalizer. The finalizer marks that a
// job may exist, so nothing needs remembering across restarts.
func (r *Reconciler) cleanupJob(ctx context.Context, hp *v1alpha1.HorizontalPortrait) error {
	if !controllerutil.ContainsFinalizer(hp, v1alpha1.FinalizerName) {
		return nil
	}
	key := r.Jobs.CronJobKey(hp)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := r.Client.Delete(ctx, cj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("failed to clean up external algorithm job: %w", err)
		r.Recorder.Eventf(hp, nil, corev1.EventTypeWarning, ReasonFailedCleanupJob, "Cleanup", "%v", err)
		return err
	}
	patched := hp.DeepCopy()
	controllerutil.RemoveFinalizer(patched, v1alpha1.FinalizerName)
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(hp)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	hp.Finalizers, hp.ResourceVersion = patched.Finalizers, patched.ResourceVersion
	return nil
}
