package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
	historyv1alpha1 "github.com/kapacitystack/kapacity/historyapi/v1alpha1"
	"github.com/kapacitystack/kapacity/test/poll"
)

const (
	// jobTemplatePodPath is where a HorizontalPortrait holds its algorithm job's pod spec.
	jobTemplatePodPath = "spec.algorithm.externalJob.job.cronJob.template.spec.jobTemplate.spec.template.spec"
)

// TestAbuseExecutorTenantJobs (issue 11, finding 1): a tenant who may only manage IHPAs and
// HorizontalPortraits in its namespace asks, through both, for an algorithm job running as
// kapacity-manager, privileged, in the host's PID namespace, with the node's root mounted. No
// CronJob, Job or pod with any of that is ever created anywhere: the validating webhook refuses
// both, naming the field, and a portrait stored while the manager was down (its webhook fails
// open) reports the refusal in its condition. The quick-start's benign template gets a CronJob in the tenant's namespace
// whose pod passes Pod Security "restricted" (enforced there) and runs as
// kapacity-algorithm-job, and that ServiceAccount's token reads its namespace's history and
// portrait and writes its result, but reads no Secret and nothing of another namespace.
func TestAbuseExecutorTenantJobs(t *testing.T) {
	ctx := context.Background()
	useAdapter(t)
	useManager(t)
	ensureNamespace(ctx, t, algorithmJobNS) // where older managers put the jobs
	ns := newNamespace(ctx, t)
	other := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	escalations := watchEscalations(ctx, t)

	tenant := tenantClient(ctx, t, ns)
	sample := loadSample(t, "dynamic-predictive-portrait-sample.yaml")
	benign := *sample.Spec.PortraitProviders[0].Dynamic
	evil := *benign.DeepCopy()
	pod := &evil.Algorithm.ExternalJob.Job.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec
	pod.ServiceAccountName = "kapacity-manager"
	pod.HostPID = true
	pod.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})

	hp := &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escape"},
		Spec: v1alpha1.HorizontalPortraitSpec{ScaleTargetRef: sample.Spec.ScaleTargetRef, PortraitSpec: *evil.PortraitSpec.DeepCopy()}}
	ihpa := sample.DeepCopy()
	ihpa.Namespace, ihpa.Name = ns, "escape-ihpa"
	ihpa.Spec.PortraitProviders[0].Dynamic = &evil
	// At the door: the validating webhook refuses both, naming the field.
	for _, obj := range []client.Object{hp.DeepCopy(), ihpa} {
		err := tenant.Create(ctx, obj)
		// The IHPA's path starts at its provider: spec.portraitProviders[0].dynamic.algorithm…
		want := strings.TrimPrefix(jobTemplatePodPath, "spec.") + `.serviceAccountName: Invalid value: "kapacity-manager"`
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("the tenant creating %T with a job running as kapacity-manager: %v, want Invalid naming %s", obj, err, want)
		}
	}
	// Behind the door: the HorizontalPortrait webhook fails open, so while the manager is down the
	// portrait is stored; the controller refuses its template when it comes back.
	m := useManager(t)
	m.Stop()
	err := tenant.Create(ctx, hp)
	if serr := m.Start(); serr != nil {
		t.Fatalf("restarting the manager: %v", serr)
	}
	if err != nil {
		t.Fatalf("the tenant creating a HorizontalPortrait while the manager is down: %v", err)
	}
	waitRefused(ctx, t, ns, hp.Name)

	// The benign template: its portrait's job runs in the tenant's namespace, under restricted.
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	good := &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "benign"},
		Spec: v1alpha1.HorizontalPortraitSpec{ScaleTargetRef: sample.Spec.ScaleTargetRef, PortraitSpec: *benign.PortraitSpec.DeepCopy()}}
	if err := tenant.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	cj := waitCronJobOf(ctx, t, ns, good.Name)
	if err := tenant.Get(ctx, client.ObjectKeyFromObject(good), good); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(cj, good) || len(cj.Name) > 52 || cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName != jobServiceAcct {
		t.Errorf("CronJob %s/%s: owners %+v, service account %q", cj.Namespace, cj.Name, cj.OwnerReferences, cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName)
	}
	// `kubectl create job --from=cronjob/...`: the Job controller makes its pod, admitted under
	// the namespace's enforced restricted profile, and kwok runs it.
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "benign-now"}, Spec: cj.Spec.JobTemplate.Spec}
	if _, err := kube.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var jobPod corev1.Pod
	poll.Until(ctx, t, time.Minute, "the benign job's pod running in the tenant's namespace", func(ctx context.Context) (string, bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=benign-now"})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		if len(pods.Items) == 0 {
			j, _ := kube.BatchV1().Jobs(ns).Get(ctx, "benign-now", metav1.GetOptions{})
			return fmt.Sprintf("no pod yet; job status %+v", j.Status), false, nil
		}
		jobPod = pods.Items[0]
		// kwok runs the pod and, the job's pods having no end of their own, completes it.
		return fmt.Sprintf("%s phase=%s sa=%s labels=%v", jobPod.Name, jobPod.Status.Phase, jobPod.Spec.ServiceAccountName, jobPod.Labels),
			jobPod.Status.Phase == corev1.PodRunning || jobPod.Status.Phase == corev1.PodSucceeded, nil
	})
	if jobPod.Spec.ServiceAccountName != jobServiceAcct || jobPod.Labels["app.kubernetes.io/component"] != "kapacity-algorithm-job" {
		t.Errorf("job pod runs as %q with labels %v", jobPod.Spec.ServiceAccountName, jobPod.Labels)
	}

	// What the job's token may do: as the pod's own (bound) token would.
	jobCfg := serviceAccountConfig(ctx, t, ns, jobServiceAcct, &jobPod)
	jobKube := kubernetes.NewForConfigOrDie(jobCfg)
	checkAccess(ctx, t, jobKube, []accessCase{
		{ns, "get", "history.metrics.kapacitystack.io", "workloadresources", "nginx", true},
		{ns, "list", "history.metrics.kapacitystack.io", "objects", "", true},
		{ns, "get", "autoscaling.kapacitystack.io", "horizontalportraits", good.Name, true},
		{ns, "create", "", "configmaps", "", true},
		{ns, "get", "", "secrets", "any", false},
		{ns, "list", "", "secrets", "", false},
		{ns, "create", "", "pods", "", false},
		{ns, "update", "autoscaling.kapacitystack.io", "horizontalportraits", good.Name, false},
		{other, "get", "", "configmaps", "private", false},
		{other, "get", "history.metrics.kapacitystack.io", "workloadresources", "nginx", false},
		{algorithmJobNS, "get", "", "secrets", "kapacity-webhook-cert", false},
	})
	// Real requests: the result is written and read back by the manager; Secrets and the other
	// namespace stay closed; history is authorized for its namespace only.
	result := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: good.Name + "-result",
		Labels: map[string]string{"kapacitystack.io/portrait-result": "true"}},
		Data: map[string]string{"type": "TimeSeries", "timeSeries": fmt.Sprintf(`{"%d": 4}`, time.Now().Unix())}}
	if _, err := jobKube.CoreV1().ConfigMaps(ns).Create(ctx, result, metav1.CreateOptions{}); err != nil {
		t.Errorf("the job writing its result: %v", err)
	}
	if _, err := jobKube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the job listing Secrets: %v, want Forbidden", err)
	}
	if _, err := kube.CoreV1().ConfigMaps(other).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "private"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobKube.CoreV1().ConfigMaps(other).Get(ctx, "private", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the job reading namespace %s's ConfigMap: %v, want Forbidden", other, err)
	}
	history, err := historyclient.NewHTTPForConfig(jobCfg)
	if err != nil {
		t.Fatal(err)
	}
	sts := schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	for _, c := range []struct {
		ns        string
		forbidden bool
	}{{ns, false}, {other, true}} {
		_, err := history.Latest(ctx, historyv1alpha1.Query{Kind: historyv1alpha1.WorkloadResource, Workload: sts, Namespace: c.ns, Name: "nginx", Resource: "cpu"})
		if apierrors.IsForbidden(err) != c.forbidden {
			t.Errorf("the job reading the history of %s: %v, want forbidden=%t", c.ns, err, c.forbidden)
		}
	}
	poll.Until(ctx, t, time.Minute, "the job's result in the benign portrait's status", func(ctx context.Context) (string, bool, error) {
		if err := tenant.Get(ctx, client.ObjectKeyFromObject(good), good); err != nil {
			return observationError(ctx, err), false, nil
		}
		return portraitString(good.Status.PortraitData), generated(good.Status.Conditions), nil
	})

	// Through all of it, nothing privileged came to be (checked again when the test ends).
	if seen := escalations(); len(seen) > 0 {
		t.Errorf("objects with escalated rights were created:\n%s", strings.Join(seen, "\n"))
	}
}

// TestAbuseExecutorMetricsNeedAuthorization (issue 11, finding 12): the manager's /metrics is
// HTTPS and answers only callers kube-apiserver authenticates and authorizes; the shipped
// kapacity-manager-metrics-reader role is what a scraper needs.
func TestAbuseExecutorMetricsNeedAuthorization(t *testing.T) {
	ctx := context.Background()
	m := useManager(t)
	ns := newNamespace(ctx, t)
	reader := readerRole(t)
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, sa := range []string{"scraper", "nobody"} {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: ns}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})

	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The endpoint's certificate is self-signed; what is under test is who gets an answer.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	get := func(ctx context.Context, token string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.MetricsAddr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body), err
	}
	for _, c := range []struct {
		who   string
		token string
		want  []int
	}{
		{"anonymous", "", []int{http.StatusUnauthorized}},
		{"a ServiceAccount without the role", saToken(ctx, t, ns, "nobody", nil), []int{http.StatusForbidden}},
		// controller-runtime answers a token kube-apiserver rejects with 500 "Authentication
		// failed" rather than 401; either way nothing is served.
		{"a garbage token", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"the scraper", saToken(ctx, t, ns, "scraper", nil), []int{http.StatusOK}},
	} {
		// Authorization decisions are cached and RBAC takes a moment to reach them: poll.
		poll.Until(ctx, t, 30*time.Second, fmt.Sprintf("/metrics for %s: %v", c.who, c.want), func(ctx context.Context) (string, bool, error) {
			code, body, err := get(ctx, c.token)
			if err != nil {
				return err.Error(), false, nil
			}
			metrics := strings.Contains(body, "controller_runtime_reconcile_total")
			if metrics && code != http.StatusOK {
				return "", false, fmt.Errorf("%d with the metrics in the body", code)
			}
			ok := slices.Contains(c.want, code) && (code != http.StatusOK || metrics)
			return fmt.Sprintf("%d %.80q", code, body), ok, nil
		})
	}
}

// tenantClient is a client acting as ServiceAccount "tenant" of ns, which may manage IHPAs and
// HorizontalPortraits there and nothing else.
func tenantClient(ctx context.Context, t *testing.T, ns string) client.Client {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kapacity-tenant"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"intelligenthorizontalpodautoscalers", "horizontalportraits"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"},
	}}}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kapacity-tenant"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tenant", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(bed.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":tenant",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: crClient.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant really is unprivileged: it can neither run pods nor read Secrets itself.
	checkAccess(ctx, t, kubernetes.NewForConfigOrDie(cfg), []accessCase{
		{ns, "create", v1alpha1.GroupVersion.Group, "horizontalportraits", "", true},
		{ns, "create", "", "pods", "", false},
		{ns, "create", "batch", "cronjobs", "", false},
		{ns, "get", "", "secrets", "any", false},
	})
	return c
}

// waitRefused waits until portrait ns/name reports its job template refused, naming the fields.
func waitRefused(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	hp := &v1alpha1.HorizontalPortrait{}
	poll.Until(ctx, t, time.Minute, fmt.Sprintf("portrait %s/%s refuses its job template", ns, name), func(ctx context.Context) (string, bool, error) {
		if err := crClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hp); err != nil {
			return observationError(ctx, err), false, nil
		}
		c := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated))
		if c == nil {
			return "no condition yet", false, nil
		}
		ok := c.Status == metav1.ConditionFalse && strings.Contains(c.Message, jobTemplatePodPath+".serviceAccountName") &&
			strings.Contains(c.Message, "privileged") && strings.Contains(c.Message, "hostPID") && strings.Contains(c.Message, "hostPath")
		return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), ok, nil
	})
	// Events are sent in the background.
	poll.Until(ctx, t, 30*time.Second, fmt.Sprintf("a Warning event of portrait %s/%s naming the field", ns, name), func(ctx context.Context) (string, bool, error) {
		events := ihpaEvents(ctx, ns, name)
		return strings.Join(events, " | "), slices.ContainsFunc(events, func(e string) bool {
			return strings.HasPrefix(e, "Warning InvalidExternalAlgorithmJob") && strings.Contains(e, jobTemplatePodPath+".serviceAccountName")
		}), nil
	})
	// Nor was a CronJob made for it anywhere.
	if cjs, err := kube.BatchV1().CronJobs("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, cj := range cjs.Items {
			if cronJobFor(&cj, ns, name) {
				t.Errorf("CronJob %s/%s was created for the refused portrait %s/%s", cj.Namespace, cj.Name, ns, name)
			}
		}
	}
}

// cronJobFor tells whether a CronJob runs the algorithm of portrait ns/name (HP_NAMESPACE and
// HP_NAME are set on it by every version of the manager).
func cronJobFor(cj *batchv1.CronJob, ns, name string) bool {
	for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["HP_NAMESPACE"] == ns && env["HP_NAME"] == name {
			return true
		}
	}
	return false
}

// waitCronJobOf waits for the CronJob of portrait ns/name, wherever it is, and checks it is in
// the portrait's namespace.
func waitCronJobOf(ctx context.Context, t *testing.T, ns, name string) *batchv1.CronJob {
	t.Helper()
	var found *batchv1.CronJob
	poll.Until(ctx, t, time.Minute, fmt.Sprintf("the CronJob of portrait %s/%s", ns, name), func(ctx context.Context) (string, bool, error) {
		cjs, err := kube.BatchV1().CronJobs("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		for i := range cjs.Items {
			if cronJobFor(&cjs.Items[i], ns, name) {
				found = &cjs.Items[i]
				return found.Namespace + "/" + found.Name, true, nil
			}
		}
		return fmt.Sprintf("%d CronJobs, none for it", len(cjs.Items)), false, nil
	})
	if found.Namespace != ns {
		t.Fatalf("the CronJob of portrait %s/%s is %s/%s, not in the portrait's namespace", ns, name, found.Namespace, found.Name)
	}
	return found
}

// watchEscalations watches CronJobs, Jobs and pods in every namespace from now until the test
// ends, when it fails the test if any pod spec asked for kapacity-manager's ServiceAccount,
// privileged containers, host namespaces or hostPath volumes; the function it returns lists
// those seen so far.
func watchEscalations(ctx context.Context, t *testing.T) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	watchers := map[string]func(context.Context) (watch.Interface, error){
		"CronJob": func(ctx context.Context) (watch.Interface, error) {
			return kube.BatchV1().CronJobs("").Watch(ctx, metav1.ListOptions{})
		},
		"Job": func(ctx context.Context) (watch.Interface, error) {
			return kube.BatchV1().Jobs("").Watch(ctx, metav1.ListOptions{})
		},
		"Pod": func(ctx context.Context) (watch.Interface, error) {
			return kube.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		},
	}
	for kind, start := range watchers {
		w, err := start(ctx)
		if err != nil {
			cancel()
			t.Fatalf("watching %ss: %v", kind, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					var spec *corev1.PodSpec
					var m metav1.Object
					switch o := ev.Object.(type) {
					case *batchv1.CronJob:
						spec, m = &o.Spec.JobTemplate.Spec.Template.Spec, o
					case *batchv1.Job:
						spec, m = &o.Spec.Template.Spec, o
					case *corev1.Pod:
						spec, m = &o.Spec, o
					default:
						continue
					}
					if why := escalated(spec); why != "" {
						mu.Lock()
						seen = append(seen, fmt.Sprintf("%s %s/%s: %s", kind, m.GetNamespace(), m.GetName(), why))
						mu.Unlock()
					}
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		// Reported however the test ended, even if it stopped at its first failure.
		if len(seen) > 0 {
			t.Errorf("objects with escalated rights were created:\n%s", strings.Join(seen, "\n"))
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func escalated(spec *corev1.PodSpec) string {
	var why []string
	if spec.ServiceAccountName == "kapacity-manager" || spec.DeprecatedServiceAccount == "kapacity-manager" {
		why = append(why, "ServiceAccount kapacity-manager")
	}
	if spec.HostPID || spec.HostNetwork || spec.HostIPC {
		why = append(why, "host namespaces")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.SecurityContext != nil && ptr.Deref(c.SecurityContext.Privileged, false) {
			why = append(why, "privileged container "+c.Name)
		}
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			why = append(why, "hostPath volume "+v.Name)
		}
	}
	return strings.Join(why, ", ")
}

type accessCase struct {
	ns, verb, group, resource, name string
	want                            bool
}

// checkAccess asks kube-apiserver, as the client's own identity (SelfSubjectAccessReview), whether
// each request is allowed.
func checkAccess(ctx context.Context, t *testing.T, c kubernetes.Interface, cases []accessCase) {
	t.Helper()
	for _, a := range cases {
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: a.ns, Verb: a.verb, Group: a.group, Resource: a.resource, Name: a.name},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview: %v", err)
		}
		if r.Status.Allowed != a.want {
			t.Errorf("%s %s.%s %q in %s: allowed %t, want %t (%s)", a.verb, a.resource, a.group, a.name, a.ns, r.Status.Allowed, a.want, r.Status.Reason)
		}
	}
}

// saToken is a token of ServiceAccount ns/name, bound to pod when given (as the token kubelet
// mounts into the pod is).
func saToken(ctx context.Context, t *testing.T, ns, name string, pod *corev1.Pod) string {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	var tok *authenticationv1.TokenRequest
	// The ServiceAccount may be moments old.
	poll.Until(ctx, t, 30*time.Second, "a token of ServiceAccount "+ns+"/"+name, func(ctx context.Context) (string, bool, error) {
		var err error
		tok, err = kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
		if err != nil {
			return err.Error(), false, nil
		}
		return "issued", true, nil
	})
	return tok.Status.Token
}

// serviceAccountConfig is a client config authenticating with a token of ServiceAccount ns/name.
func serviceAccountConfig(ctx context.Context, t *testing.T, ns, name string, pod *corev1.Pod) *rest.Config {
	t.Helper()
	cfg := rest.AnonymousClientConfig(bed.Config)
	cfg.BearerToken = saToken(ctx, t, ns, name, pod)
	return cfg
}

// readerRole is the kapacity-manager-metrics-reader ClusterRole of deploy/manager/rbac.yaml.
func readerRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "manager", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		if !strings.Contains(doc, "name: kapacity-manager-metrics-reader") {
			continue
		}
		role := &rbacv1.ClusterRole{}
		if err := yaml.UnmarshalStrict([]byte(doc), role); err != nil {
			t.Fatal(err)
		}
		return role
	}
	t.Fatal("no ClusterRole kapacity-manager-metrics-reader in deploy/manager/rbac.yaml")
	return nil
}
