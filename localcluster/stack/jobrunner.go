package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/executor/algorithmjob"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	"github.com/kapacitystack/kapacity/recommender/cli"
)

// JobRunner stands in for the kubelet and the container runtime of Kapacity's algorithm jobs:
// kwok runs no containers (it marks job pods Succeeded), so the runner runs a Job's "algorithm"
// container once, in this process, as its pod would run it. Only Kapacity's own image is
// emulated: its entrypoint is the kapacity binary, given the container's arguments. ConfigMap
// and emptyDir volumes become directories standing for their mounts (mount paths in the arguments
// are replaced by them); the container's HP_NAMESPACE, HP_NAME and METRICS_SERVER_ADDR are given
// as the flags they default (never through this process' environment: jobs may run at the same
// time); and a kubeconfig with a token of the pod's ServiceAccount stands for the in-cluster
// configuration, so the job has exactly the rights the manager gave that ServiceAccount.
type JobRunner struct {
	client kubernetes.Interface
	config *rest.Config
	dir    string
	image  string // Kapacity's image, as the manager gives it to the jobs
}

// NewJobRunner returns a runner that reads volumes and requests tokens with config (an
// administrator's) and keeps each run's files in a directory under dir while it runs. image is
// Kapacity's image as the manager names it in the jobs (its --kapacity-image); empty means
// hportrait.DefaultPredictiveImage. Only containers of that image, with its entrypoint, are run.
func NewJobRunner(config *rest.Config, dir, image string) (*JobRunner, error) {
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("job runner: %w", err)
	}
	r := newJobRunner(client, config, dir)
	if image != "" {
		r.image = image
	}
	return r, nil
}

// newJobRunner is NewJobRunner with the client given: config only says where the API server is
// and which CA it has, for the jobs' kubeconfig.
func newJobRunner(client kubernetes.Interface, config *rest.Config, dir string) *JobRunner {
	return &JobRunner{client: client, config: config, dir: dir, image: hportrait.DefaultPredictiveImage}
}

// JobRun is one run of a Job's algorithm container.
type JobRun struct {
	Namespace, Job string
	// Args is the kapacity command line run, after substitutions.
	Args []string
	// Output is what the command printed.
	Output  string
	Err     error
	Started time.Time
	Took    time.Duration
}

func (r JobRun) String() string {
	outcome := "succeeded"
	if r.Err != nil {
		outcome = "failed: " + r.Err.Error()
	}
	return fmt.Sprintf("Job %s/%s: kapacity %s %s in %s:\n%s", r.Namespace, r.Job, strings.Join(r.Args, " "), outcome,
		r.Took.Round(time.Millisecond), strings.TrimRight(r.Output, "\n"))
}

// tokenDir is where a pod finds its ServiceAccount's token, CA and namespace; arguments naming it
// are pointed at the run's copy.
const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// envFlags are the environment variables the kapacity binary reads, and the flags they default.
var envFlags = map[string]string{"HP_NAMESPACE": "hp-namespace", "HP_NAME": "hp-name", "METRICS_SERVER_ADDR": "metrics-server-addr"}

// Run runs the algorithm container of job once, in this process, and reports how it went.
func (r *JobRunner) Run(ctx context.Context, job *batchv1.Job) JobRun {
	run := JobRun{Namespace: job.Namespace, Job: job.Name, Started: time.Now()}
	var out bytes.Buffer
	run.Args, run.Err = r.run(ctx, job, &out)
	run.Output, run.Took = out.String(), time.Since(run.Started)
	return run
}

func (r *JobRunner) run(ctx context.Context, job *batchv1.Job, out *bytes.Buffer) ([]string, error) {
	pod := job.Spec.Template.Spec
	c, err := AlgorithmContainer(&pod)
	if err != nil {
		return nil, err
	}
	if c.Image != r.image || len(c.Command) > 0 {
		return nil, fmt.Errorf("image %q, command %q: the job runner emulates only Kapacity's own image %s with its entrypoint (the kapacity binary); kwok runs no containers",
			c.Image, c.Command, r.image)
	}
	dir, err := os.MkdirTemp(r.dir, "job-")
	if err != nil {
		return nil, fmt.Errorf("job runner: %w", err)
	}
	defer os.RemoveAll(dir)

	volumes, err := r.volumes(ctx, job.Namespace, pod.Volumes, dir)
	if err != nil {
		return nil, err
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		path, ok := volumes[m.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("volumeMount %s: no such volume", m.Name)
		case m.SubPath != "" || m.SubPathExpr != "":
			return nil, fmt.Errorf("volumeMount %s: subPath is not emulated", m.Name)
		}
		mounts[m.MountPath] = path
	}
	saDir := filepath.Join(dir, "serviceaccount")
	kubeconfig, err := r.serviceAccountFiles(ctx, job.Namespace, pod.ServiceAccountName, saDir)
	if err != nil {
		return nil, err
	}
	mounts[tokenDir] = saDir

	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		for from, to := range mounts {
			a = strings.ReplaceAll(a, from, to)
		}
		args[i] = a
	}
	kapacity := &cobra.Command{Use: "kapacity", SilenceUsage: true, SilenceErrors: true}
	kapacity.AddCommand(cli.NewTrainCommand(), cli.NewForecastCommand(), cli.NewRecommendCommand())
	sub, _, err := kapacity.Find(args)
	if err != nil || sub == kapacity {
		return args, fmt.Errorf("args %q: the kapacity binary has no such recommender subcommand (train, forecast, recommend)", c.Args)
	}
	// The environment, as the binary reads it: the flags it defaults, set before the arguments
	// are parsed so that arguments still win. Unset variables are set empty, so that this
	// process' own environment never leaks into the job.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return args, fmt.Errorf("env %s: valueFrom is not emulated", e.Name)
		}
		env[e.Name] = e.Value
	}
	for name, flag := range envFlags {
		if f := sub.Flags().Lookup(flag); f != nil {
			if err := f.Value.Set(env[name]); err != nil {
				return args, fmt.Errorf("env %s=%q: %w", name, env[name], err)
			}
		}
	}
	if f := sub.Flags().Lookup("metrics-server-token-file"); f != nil {
		_ = f.Value.Set(filepath.Join(saDir, "token"))
	}
	args = append(args, "--kubeconfig="+kubeconfig)
	kapacity.SetArgs(args)
	kapacity.SetOut(out)
	kapacity.SetErr(out)
	if err := kapacity.ExecuteContext(ctx); err != nil {
		return args, err
	}
	return args, nil
}

// volumes writes the ConfigMap volumes (all keys, or the items listed) and makes the emptyDir
// ones, each in a directory under dir, and returns the directories by volume name.
func (r *JobRunner) volumes(ctx context.Context, ns string, volumes []corev1.Volume, dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range volumes {
		path := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		out[v.Name] = path
		switch {
		case v.EmptyDir != nil:
			continue
		case v.ConfigMap == nil:
			return nil, fmt.Errorf("volume %s: only ConfigMap and emptyDir volumes are emulated", v.Name)
		}
		cm, err := r.client.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			if ptr.Deref(v.ConfigMap.Optional, false) {
				continue
			}
			return nil, fmt.Errorf("volume %s: ConfigMap %s/%s: %w", v.Name, ns, v.ConfigMap.Name, err)
		}
		files := map[string][]byte{}
		for k, s := range cm.Data {
			files[k] = []byte(s)
		}
		for k, b := range cm.BinaryData {
			files[k] = b
		}
		if len(v.ConfigMap.Items) > 0 {
			picked := map[string][]byte{}
			for _, it := range v.ConfigMap.Items {
				b, ok := files[it.Key]
				if !ok {
					return nil, fmt.Errorf("volume %s: ConfigMap %s/%s has no key %q", v.Name, ns, v.ConfigMap.Name, it.Key)
				}
				picked[it.Path] = b
			}
			files = picked
		}
		for name, b := range files {
			file := filepath.Join(path, name)
			if !strings.HasPrefix(file, path+string(filepath.Separator)) {
				return nil, fmt.Errorf("volume %s: path %q leaves the volume", v.Name, name)
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if err := os.WriteFile(file, b, 0o600); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	return out, nil
}

// serviceAccountFiles writes what a pod of ServiceAccount ns/name finds in tokenDir (a token, the
// cluster's CA, the namespace) into dir, and a kubeconfig of the token beside them.
func (r *JobRunner) serviceAccountFiles(ctx context.Context, ns, name, dir string) (string, error) {
	if name == "" {
		name = "default"
	}
	token, err := r.token(ctx, ns, name)
	if err != nil {
		return "", err
	}
	ca := r.config.CAData
	if len(ca) == 0 && r.config.CAFile != "" {
		if ca, err = os.ReadFile(r.config.CAFile); err != nil {
			return "", fmt.Errorf("job runner: the cluster's CA: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for file, b := range map[string][]byte{"token": []byte(token), "ca.crt": ca, "namespace": []byte(ns)} {
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
			return "", err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: r.config.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["job"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: name, Namespace: ns}
	kc.CurrentContext = "job"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("job runner: writing the job's kubeconfig: %w", err)
	}
	return path, nil
}

// token requests a token of ServiceAccount ns/name, valid for an hour, retrying for 30 s: the
// manager may have created the ServiceAccount moments ago.
func (r *JobRunner) token(ctx context.Context, ns, name string) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok, err := r.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
		if err == nil {
			return tok.Status.Token, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("a token of ServiceAccount %s/%s: %w", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// IsAlgorithmJob tells whether job runs an algorithm the manager scheduled: its pods carry the
// manager's component label.
func IsAlgorithmJob(job *batchv1.Job) bool {
	return job.Spec.Template.Labels[algorithmjob.ComponentLabelKey] == algorithmjob.ComponentLabelValue
}

// maxConcurrentRuns bounds the runs in flight: each trains a replica estimator, and the demo and
// the tests run on two cores.
const maxConcurrentRuns = 2

// Watch runs every algorithm Job created in namespace (metav1.NamespaceAll: every namespace) from
// now on, once each, as the CronJob controller or `kubectl create job --from=cronjob/…` creates
// them; Jobs that exist already are left alone. Each run is reported to onRun (from the run's
// goroutine) and as an Event on its Job. stop ends the watch and waits for the runs in flight.
func (r *JobRunner) Watch(ctx context.Context, namespace string, onRun func(JobRun)) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(namespace))
	informer := factory.Batch().V1().Jobs().Informer()
	var runs sync.WaitGroup
	slots := make(chan struct{}, maxConcurrentRuns)
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			job, ok := obj.(*batchv1.Job)
			if !ok || isInInitialList || !IsAlgorithmJob(job) {
				return
			}
			runs.Add(1)
			go func() {
				defer runs.Done()
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				run := r.Run(ctx, job)
				<-slots
				r.recordEvent(ctx, job, run)
				if onRun != nil {
					onRun(run)
				}
			}()
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("job runner: watching Jobs: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		cancel()
		factory.Shutdown()
		return nil, errors.New("job runner: the Job informer did not sync")
	}
	return func() {
		cancel()
		factory.Shutdown()
		runs.Wait()
	}, nil
}

// recordEvent reports the run on its Job, where `kubectl describe job` shows it: kwok's pods
// have no logs to read.
func (r *JobRunner) recordEvent(ctx context.Context, job *batchv1.Job, run JobRun) {
	eventType, reason := corev1.EventTypeNormal, "AlgorithmRun"
	msg := "kwok runs no containers: the job runner ran kapacity " + firstWord(run.Args) + " in process: " + lastLine(run.Output)
	if run.Err != nil {
		eventType, reason = corev1.EventTypeWarning, "AlgorithmFailed"
		msg = "kwok runs no containers: the job runner's in-process run failed: " + run.Err.Error()
	}
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	now := metav1.Now()
	_, _ = r.client.CoreV1().Events(job.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: job.Name + ".", Namespace: job.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: job.Namespace, Name: job.Name,
			UID: job.UID, ResourceVersion: job.ResourceVersion},
		Reason: reason, Message: msg, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kapacity-job-runner"},
	}, metav1.CreateOptions{})
}

func firstWord(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ManualInstantiateAnnotation marks a Job created from a CronJob by hand, as kubectl does.
const ManualInstantiateAnnotation = "cronjob.kubernetes.io/instantiate"

// TriggerCronJob creates a Job from CronJob ns/name now, as `kubectl create job --from=cronjob/name`
// does: the job template's labels, annotations and spec, annotated as a manual instantiation and
// owned by the CronJob.
func TriggerCronJob(ctx context.Context, client kubernetes.Interface, ns, name string) (*batchv1.Job, error) {
	cj, err := client.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("CronJob %s/%s: %w", ns, name, err)
	}
	annotations := map[string]string{ManualInstantiateAnnotation: "manual"}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			// The API server cuts the base to leave room for the random suffix.
			GenerateName: cj.Name + "-manual-",
			Namespace:    ns,
			Labels:       cj.Spec.JobTemplate.Labels,
			Annotations:  annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: ptr.To(true),
			}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	created, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating a Job from CronJob %s/%s: %w", ns, name, err)
	}
	return created, nil
}
