package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	deploycrds "github.com/kapacitystack/kapacity/deploy/crds"
	deploymanager "github.com/kapacitystack/kapacity/deploy/manager"
	"github.com/kapacitystack/kapacity/executor/manager"
	"github.com/kapacitystack/kapacity/executor/webhook"
	"github.com/kapacitystack/kapacity/localcluster"
)

// WebhookConfigurationName is the MutatingWebhookConfiguration InstallManager registers.
const WebhookConfigurationName = "kapacity-pod-webhook-e2e"

// ValidatingWebhookConfigurationName is the ValidatingWebhookConfiguration of Kapacity's resources
// that StartManager registers.
const ValidatingWebhookConfigurationName = "kapacity-validating-webhook-e2e"

// Manager is `kapacity manager` running in this process against a test bed. Stop and Start
// simulate a crash and a restart: nothing survives in memory between the two.
type Manager struct {
	// MetricsAddr is host:port of the manager's /metrics: HTTPS, for callers kube-apiserver
	// authenticates and authorizes.
	MetricsAddr string

	bed  *localcluster.Cluster
	dir  string
	port int
	// chart, when set, is the installed chart whose arguments and ServiceAccount the manager runs with.
	chart *ChartInstall

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// ManagerOptions say how StartManagerWith runs the manager.
type ManagerOptions struct {
	// Chart, when set, is the installed chart: the manager runs with its Deployment's arguments
	// and the token of its ServiceAccount, behind its webhook configurations. Otherwise it runs as
	// the bed's admin behind webhook configurations of its own, reached by URL.
	Chart *ChartInstall
}

// StartManager installs the CRDs and the configurations of the pod webhook and of the validating
// webhook (served on 127.0.0.1 with the manager's self-signed certificate) and starts the manager.
func StartManager(ctx context.Context, bed *localcluster.Cluster) (*Manager, error) {
	return StartManagerWith(ctx, bed, ManagerOptions{})
}

// StartManagerWith is StartManager with options.
func StartManagerWith(ctx context.Context, bed *localcluster.Cluster, o ManagerOptions) (_ *Manager, err error) {
	if err := InstallCRDs(ctx, bed); err != nil {
		return nil, err
	}
	if o.Chart != nil {
		if o.Chart.manager.args == nil {
			return nil, errors.New("the chart was rendered without the manager (manager.enabled=false)")
		}
		m := &Manager{bed: bed, chart: o.Chart, port: o.Chart.WebhookPort}
		if m.dir, err = os.MkdirTemp(bed.Dir, "manager-"); err != nil {
			return nil, err
		}
		if err := m.pickMetricsAddr(); err != nil {
			return nil, err
		}
		if err := m.Start(); err != nil {
			return nil, err
		}
		return m, nil
	}
	_, err = bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	m := &Manager{bed: bed}
	if m.dir, err = os.MkdirTemp(bed.Dir, "manager-"); err != nil {
		return nil, err
	}
	if m.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := m.pickMetricsAddr(); err != nil {
		return nil, err
	}
	if err := m.installWebhook(ctx); err != nil {
		return nil, err
	}
	if err := installAlgorithmJobRole(ctx, bed); err != nil {
		return nil, err
	}
	if err := m.installValidatingWebhook(ctx); err != nil {
		return nil, err
	}
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m, nil
}

// Start starts the manager (again) and waits until its webhooks answer: the autoscalers'
// validating webhook fails closed, so writes would be refused before.
func (m *Manager) Start() error {
	if m.cancel != nil {
		return errors.New("the manager is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done, m.err = cancel, make(chan struct{}), nil
	cmd := manager.NewCommand()
	cmd.SetArgs(m.args())
	go func() {
		defer close(m.done)
		m.err = cmd.ExecuteContext(ctx)
	}()
	return m.waitForWebhooks(m.Err)
}

// Flag returns the value of the manager's flag --name, if it runs with it.
func (m *Manager) Flag(name string) (string, bool) {
	for _, a := range m.args() {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func (m *Manager) pickMetricsAddr() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	m.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
	return nil
}

// args are the manager's flags, the same in this process and in a child process.
func (m *Manager) args() []string {
	if m.chart != nil {
		// The chart's own flags (leader election, its webhook certificate and configurations,
		// algorithm jobs…), on the host, with the token of its ServiceAccount where a pod would use
		// its in-cluster config.
		return withFlags(m.chart.manager.args, map[string]string{
			"kubeconfig":                m.chart.manager.kubeconfig,
			"metrics-bind-address":      m.MetricsAddr,
			"health-probe-bind-address": "127.0.0.1:0",
			"webhook-host":              "127.0.0.1",
			"webhook-port":              fmt.Sprint(m.port),
			"webhook-cert-dir":          filepath.Join(m.dir, "certs"),
			"reconcile-concurrency":     "4",
		})
	}
	return []string{
		"--kubeconfig=" + m.bed.Kubeconfig,
		"--metrics-bind-address=" + m.MetricsAddr,
		"--health-probe-bind-address=127.0.0.1:0",
		"--webhook-host=127.0.0.1",
		fmt.Sprintf("--webhook-port=%d", m.port),
		"--webhook-cert-dir=" + filepath.Join(m.dir, "certs"),
		"--webhook-cert-secret-namespace=" + Namespace,
		"--webhook-cert-secret-name=kapacity-webhook-cert",
		"--webhook-configuration-name=" + WebhookConfigurationName,
		"--webhook-validating-configuration-name=" + ValidatingWebhookConfigurationName,
		"--webhook-cert-dns-names=localhost",
		"--webhook-cert-ips=127.0.0.1",
		"--reconcile-concurrency=4",
	}
}

// waitForWebhooks waits until the webhook port accepts connections, or stopped reports an error.
func (m *Manager) waitForWebhooks(stopped func() error) error {
	deadline := time.Now().Add(time.Minute)
	addr := fmt.Sprintf("127.0.0.1:%d", m.port)
	for {
		if err := stopped(); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager's webhooks on %s do not answer within a minute: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the manager and waits for it to return.
func (m *Manager) Stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "the manager did not stop within 30s")
	}
	m.cancel = nil
}

// Close stops the manager and removes its files.
func (m *Manager) Close() {
	m.Stop()
	_ = os.RemoveAll(m.dir)
}

// Err reports why the manager stopped, or nil while it runs.
func (m *Manager) Err() error {
	if m.done == nil {
		return nil
	}
	select {
	case <-m.done:
		if m.err == nil {
			return errors.New("the manager stopped")
		}
		return fmt.Errorf("the manager stopped: %w", m.err)
	default:
		return nil
	}
}

// installWebhook registers the pod webhook at the manager's loopback port; the manager fills in
// the caBundle. Only labelled pods are sent to it, and a stopped manager blocks none of them.
func (m *Manager) installWebhook(ctx context.Context) error {
	url := fmt.Sprintf("https://127.0.0.1:%d%s", m.port, webhook.Path)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "mpod.kapacitystack.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			// As deploy/manager/webhook.yaml: a stopped manager blocks no pod.
			FailurePolicy: ptr.To(admissionregistrationv1.Ignore),
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				v1alpha1.InjectReadinessGateLabelKey: "true",
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}, {
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/status"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			TimeoutSeconds: ptr.To[int32](5),
		}},
	}
	hooks := m.bed.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	_ = hooks.Delete(ctx, WebhookConfigurationName, metav1.DeleteOptions{})
	if _, err := hooks.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering the pod webhook: %w", err)
	}
	return nil
}

// installAlgorithmJobRole creates (or updates) the ClusterRole kapacity-algorithm-job from
// deploy/manager, which the manager binds to the jobs' ServiceAccount in each portrait's namespace.
func installAlgorithmJobRole(ctx context.Context, bed *localcluster.Cluster) error {
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(deploymanager.AlgorithmJobRBAC(), role); err != nil {
		return fmt.Errorf("decoding deploy/manager/algorithm-job-rbac.yaml: %w", err)
	}
	roles := bed.Client.RbacV1().ClusterRoles()
	cur, err := roles.Get(ctx, role.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = roles.Create(ctx, role, metav1.CreateOptions{})
	case err == nil:
		cur.Rules = role.Rules
		_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("installing ClusterRole %s: %w", role.Name, err)
	}
	return nil
}

// installValidatingWebhook registers the validating webhook of Kapacity's resources at the
// manager's loopback port, with the webhooks and failure policies of deploy/manager/webhook.yaml;
// the manager fills in the caBundle.
func (m *Manager) installValidatingWebhook(ctx context.Context) error {
	url := fmt.Sprintf("https://127.0.0.1:%d%s", m.port, webhook.ValidatePath)
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ValidatingWebhookConfigurationName},
		Webhooks:   webhook.ValidatingWebhooks(admissionregistrationv1.WebhookClientConfig{URL: &url}),
	}
	hooks := m.bed.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_ = hooks.Delete(ctx, ValidatingWebhookConfigurationName, metav1.DeleteOptions{})
	if _, err := hooks.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("registering the validating webhook: %w", err)
	}
	return nil
}

// InstallCRDs creates Kapacity's CRDs from deploy/crds (if missing) and waits until they are
// established.
func InstallCRDs(ctx context.Context, bed *localcluster.Cluster) error {
	manifests, err := deploycrds.Manifests()
	if err != nil || len(manifests) == 0 {
		return fmt.Errorf("no CRD manifests embedded from deploy/crds: %v", err)
	}
	client, err := apiextensions.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	var names []string
	for f, raw := range manifests {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return fmt.Errorf("decoding %s: %w", f, err)
		}
		names = append(names, crd.Name)
		if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var pending []string
		for _, n := range names {
			crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !established(crd) {
				pending = append(pending, n)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRDs not established within a minute: %s", strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}
