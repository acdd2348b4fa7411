package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/kapacitystack/kapacity/adapter/servingcert"
	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

// InstallEnv chooses how the suites run the adapter and the manager: as the bed's admin (unset,
// the default), or, with "chart", as Kapacity's Helm chart installs them. In chart mode the chart
// is rendered (bin/chartgen, release kapacity in kapacity-system, default values) and installed
// into the bed, and the components run on the host with the arguments of its Deployments and the
// tokens of its ServiceAccounts, behind its APIServices and webhook configurations: every suite
// then proves that the chart's RBAC is sufficient (`make test-e2e-chart` runs those of the main
// behaviours this way).
const InstallEnv = "KAPACITY_E2E_INSTALL"

// chartNamespace is the release namespace of the chart the suites install.
const chartNamespace = "kapacity-system"

func chartMode() bool { return os.Getenv(InstallEnv) == "chart" }

var (
	chartOnce    sync.Once
	chartInstall *stack.ChartInstall
	chartErr     error
)

// installChart renders the chart and installs it, once: everything (chart mode) or only the
// rights and their subjects (the default: the bed's own registrations stay in place).
func installChart() (*stack.ChartInstall, error) {
	chartOnce.Do(func() {
		manifest, err := renderChart(context.Background())
		if err != nil {
			chartErr = err
			return
		}
		chartInstall, chartErr = stack.InstallChart(context.Background(), bed, manifest,
			stack.ChartInstallOptions{Namespace: chartNamespace, RBACOnly: !chartMode()})
		if chartErr == nil {
			suiteCleanups = append(suiteCleanups, chartInstall.Close)
		}
	})
	return chartInstall, chartErr
}

// renderChart renders the chart as `helm template kapacity deploy/helm/kapacity -n
// kapacity-system --set monitoring.scraper.rbac=true` does: the defaults, and the RBAC that lets
// Prometheus (monitoring/prometheus-k8s) scrape both components.
func renderChart(ctx context.Context) ([]byte, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bed.BinDir, "chartgen"), "template", "-root", root, "-name", "kapacity", "-namespace", chartNamespace,
		"-set", "monitoring.scraper.rbac=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s (build it with make tools)", cmd, err, stderr.String())
	}
	return out, nil
}

func useChart(t *testing.T) *stack.ChartInstall {
	t.Helper()
	c, err := installChart()
	if err != nil {
		t.Fatalf("installing the chart: %v", err)
	}
	return c
}

// access is one request a component may or may not make.
type access struct {
	verb, group, resource, subresource, namespace, name string
	allowed                                             bool
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := a.name
	if a.namespace != "" {
		where = a.namespace + "/" + a.name
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// checkServiceAccountAccess asks kube-apiserver (SubjectAccessReview, as it authorizes the component's own
// requests) whether ServiceAccount namespace/name may make each request.
func checkServiceAccountAccess(ctx context.Context, t *testing.T, namespace, name string, accesses []access) {
	t.Helper()
	user := "system:serviceaccount:" + namespace + ":" + name
	var allowed, refused []string
	for _, a := range accesses {
		review, err := bed.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != a.allowed {
			t.Errorf("%s: %s allowed=%v, want %v (%s)", user, a, review.Status.Allowed, a.allowed, review.Status.Reason)
		}
		if review.Status.Allowed {
			allowed = append(allowed, a.String())
		} else {
			refused = append(refused, a.String())
		}
	}
	t.Logf("%s\n  allowed: %s\n  refused: %s", user, strings.Join(allowed, "; "), strings.Join(refused, "; "))
}

// tokenClient is a client authenticated with the token of the kubeconfig at path.
func tokenClient(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInstallComponentsRights: what the chart lets its adapter and manager do, and what it does
// not, as kube-apiserver decides it for their ServiceAccounts (the table is logged: the allowed
// requests are those the components make; the refused ones are what a compromised component
// would want). A few refusals are also tried for real with the components' tokens.
func TestInstallComponentsRights(t *testing.T) {
	ctx := context.Background()
	c := useChart(t)
	const ns = chartNamespace
	const history = "history.metrics.kapacitystack.io"
	const kapacity = "autoscaling.kapacitystack.io"
	t.Run("adapter", func(t *testing.T) {
		checkServiceAccountAccess(ctx, t, ns, c.AdapterServiceAccount(), []access{
			// Serving metrics: the objects they are asked for, delegated authentication and
			// authorization, its own certificate and APIServices.
			{"list", "", "pods", "", "", "", true},
			{"watch", "", "nodes", "", "", "", true},
			{"get", "apps", "deployments", "", "prod", "web", true},
			{"list", kapacity, "horizontalportraits", "", "", "", true},
			{"get", "", "configmaps", "", "kube-system", "extension-apiserver-authentication", true},
			{"create", "authentication.k8s.io", "tokenreviews", "", "", "", true},
			{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", "", true},
			{"get", "", "secrets", "", ns, "kapacity-adapter-cert", true},
			{"update", "", "secrets", "", ns, "kapacity-adapter-cert", true},
			{"patch", "apiregistration.k8s.io", "apiservices", "", "", "v1beta1.custom.metrics.k8s.io", true},
			{"patch", "apiregistration.k8s.io", "apiservices", "", "", "v1alpha1.history.metrics.kapacitystack.io", true},

			{"get", "", "secrets", "", ns, "kapacity-webhook-cert", false},
			{"list", "", "secrets", "", ns, "", false},
			{"create", "", "secrets", "", ns, "", false},
			{"get", "", "secrets", "", "prod", "db-password", false},
			{"get", "", "configmaps", "", "kube-system", "kubeadm-config", false},
			{"patch", "apiregistration.k8s.io", "apiservices", "", "", "v1.apps", false},
			{"create", "apiregistration.k8s.io", "apiservices", "", "", "", false},
			{"create", "", "pods", "", "prod", "", false},
			{"patch", "", "pods", "", "prod", "web-0", false},
			{"update", "apps", "deployments", "scale", "prod", "web", false},
			{"update", kapacity, "horizontalportraits", "status", "prod", "web", false},
			{"get", history, "workloadresources", "", "prod", "web", false}, // it answers history, it does not read it
			{"create", "", "serviceaccounts", "token", ns, "kapacity-manager", false},
			{"impersonate", "", "users", "", "", "admin", false},
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "", false},
		})
	})
	t.Run("manager", func(t *testing.T) {
		checkServiceAccountAccess(ctx, t, ns, c.ManagerServiceAccount(), []access{
			// Reconciling: Kapacity's objects, pods' labels and conditions, /scale, algorithm
			// CronJobs and their ServiceAccount and RoleBinding, its certificate, webhooks and lease.
			{"update", kapacity, "intelligenthorizontalpodautoscalers", "status", "prod", "web", true},
			{"patch", "", "pods", "", "prod", "web-0", true},
			{"patch", "", "pods", "status", "prod", "web-0", true},
			{"patch", "", "pods", "resize", "prod", "web-0", true},
			{"update", "apps", "statefulsets", "scale", "prod", "web", true},
			{"create", "batch", "cronjobs", "", "prod", "", true},
			{"create", "", "serviceaccounts", "", "prod", "", true},
			{"patch", "", "serviceaccounts", "", "prod", "kapacity-algorithm-job", true},
			{"create", "rbac.authorization.k8s.io", "rolebindings", "", "prod", "", true},
			{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "kapacity-algorithm-job", true},
			{"get", "", "secrets", "", ns, "kapacity-webhook-cert", true},
			{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "kapacity-pod-webhook", true},
			{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "kapacity-validating-webhook", true},
			{"update", "coordination.k8s.io", "leases", "", ns, "kapacity-manager", true},
			{"create", "authentication.k8s.io", "tokenreviews", "", "", "", true},

			{"get", "", "secrets", "", ns, "kapacity-adapter-cert", false},
			{"list", "", "secrets", "", ns, "", false},
			{"create", "", "secrets", "", ns, "", false},
			{"create", "", "pods", "", "prod", "", false},
			{"delete", "", "pods", "", "prod", "web-0", false},
			{"create", "", "pods", "exec", "prod", "web-0", false},
			{"patch", "", "serviceaccounts", "", "prod", "default", false},
			{"create", "", "serviceaccounts", "token", "prod", "kapacity-algorithm-job", false},
			{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "cluster-admin", false},
			{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "admin", false},
			{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "kapacity-algorithm-job", false},
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "", false},
			{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "other-webhook", false},
			{"patch", "apiregistration.k8s.io", "apiservices", "", "", "v1beta1.custom.metrics.k8s.io", false},
			{"update", "coordination.k8s.io", "leases", "", ns, "other-controller", false},
			{"impersonate", "", "serviceaccounts", "", ns, "kapacity-adapter", false},
		})
	})

	// For real, with the components' own tokens.
	adapterClient := tokenClient(t, c.AdapterKubeconfig())
	if _, err := adapterClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the adapter listing Secrets of %s: %v, want Forbidden", ns, err)
	}
	managerClient := tokenClient(t, c.ManagerKubeconfig())
	if _, err := managerClient.CoreV1().Secrets(ns).Get(ctx, "kapacity-adapter-cert", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the manager reading the adapter's certificate: %v, want Forbidden", err)
	}
	// The manager may create RoleBindings anywhere, but only to the jobs' ClusterRole: RBAC's
	// escalation check refuses one to admin, since the manager may not bind it.
	tenant := newNamespace(ctx, t)
	binding := func(role string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "via-manager-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: tenant}},
		}
	}
	if _, err := managerClient.RbacV1().RoleBindings(tenant).Create(ctx, binding("admin"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the manager binding ClusterRole admin: %v, want Forbidden", err)
	}
	if _, err := managerClient.RbacV1().RoleBindings(tenant).Create(ctx, binding("kapacity-algorithm-job"), metav1.CreateOptions{}); err != nil {
		t.Errorf("the manager binding ClusterRole kapacity-algorithm-job (what it does for algorithm jobs): %v", err)
	}
	if _, err := managerClient.CoreV1().Pods(tenant).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "escape"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the manager creating a pod: %v, want Forbidden", err)
	}
}

// TestInstallComponentsRunAsTheirServiceAccounts (chart mode): the components on the host hold
// only their ServiceAccounts' tokens, and did what the chart lets them: the adapter published its
// CA in the chart's APIServices and kube-apiserver verifies it there; the manager published its
// CA in the chart's webhook configurations and holds its lease.
func TestInstallComponentsRunAsTheirServiceAccounts(t *testing.T) {
	if !chartMode() {
		t.Skipf("the components run as the bed's admin; %s=chart runs them as the chart installs them", InstallEnv)
	}
	ctx := context.Background()
	c := useChart(t)
	useAdapter(t)
	useManager(t)
	for _, kc := range []string{c.AdapterKubeconfig(), c.ManagerKubeconfig()} {
		cfg, err := clientcmd.LoadFromFile(kc)
		if err != nil {
			t.Fatal(err)
		}
		for name, auth := range cfg.AuthInfos {
			if auth.Token == "" || auth.ClientCertificateData != nil || auth.ClientCertificate != "" || !strings.HasPrefix(name, "system:serviceaccount:"+chartNamespace+":") {
				t.Errorf("%s authenticates as %s (token %v, client certificate %v), want a ServiceAccount token only", kc, name, auth.Token != "", auth.ClientCertificateData != nil)
			}
		}
	}
	secret, err := bed.Client.CoreV1().Secrets(chartNamespace).Get(ctx, "kapacity-adapter-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apiServices, err := aggregator.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range servingcert.DefaultAPIServices {
		svc, err := apiServices.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		available := false
		for _, cond := range svc.Status.Conditions {
			available = available || (cond.Type == apiregistrationv1.Available && cond.Status == apiregistrationv1.ConditionTrue)
		}
		if svc.Spec.Service == nil || svc.Spec.Service.Namespace != chartNamespace || !bytes.Equal(svc.Spec.CABundle, secret.Data[servingcert.CABundleKey]) || !available {
			t.Errorf("%s: service %v, caBundle of the chart's adapter %v, Available %v", name, svc.Spec.Service,
				bytes.Equal(svc.Spec.CABundle, secret.Data[servingcert.CABundleKey]), available)
		}
	}
	hooks := bed.Client.AdmissionregistrationV1()
	mutating, err := hooks.MutatingWebhookConfigurations().Get(ctx, "kapacity-pod-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	validating, err := hooks.ValidatingWebhookConfigurations().Get(ctx, "kapacity-validating-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mutating.Webhooks[0].ClientConfig.CABundle) == 0 || len(validating.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Error("the manager did not publish its CA in the chart's webhook configurations")
	}
	lease, err := bed.Client.CoordinationV1().Leases(chartNamespace).Get(ctx, "kapacity-manager", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the manager holds no lease kapacity-system/kapacity-manager: %v", err)
	}
}

// TestInstallScraperReadsBothMetrics: with the chart's scraper RBAC, Prometheus' ServiceAccount
// (monitoring/prometheus-k8s) reads the adapter's and the manager's /metrics over HTTPS with its
// token, as the chart's ServiceMonitors make it do; another ServiceAccount is refused by both.
func TestInstallScraperReadsBothMetrics(t *testing.T) {
	ctx := context.Background()
	useChart(t)
	a := useAdapter(t)
	m := useManager(t)
	const ns = "monitoring"
	if _, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	token := func(name string) string {
		if _, err := bed.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		tr, err := bed.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("prometheus-k8s"), token("not-a-scraper")
	// As the ServiceMonitors scrape: HTTPS, the certificate not verified, the token authenticates.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec
	for _, target := range []struct{ component, url, metric string }{
		{"adapter", fmt.Sprintf("https://127.0.0.1:%d/metrics", a.Port), "kapacity_adapter_discovered_series"},
		{"manager", "https://" + m.MetricsAddr + "/metrics", "controller_runtime_reconcile_total"},
	} {
		for _, caller := range []struct {
			name, token string
			want        int
		}{{"monitoring/prometheus-k8s", scraper, http.StatusOK}, {"monitoring/not-a-scraper", stranger, http.StatusForbidden}} {
			what := fmt.Sprintf("%s scraping the %s: %d", caller.name, target.component, caller.want)
			poll.Until(ctx, t, 30*time.Second, what, func(ctx context.Context) (string, bool, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.url, nil)
				if err != nil {
					return "", false, err
				}
				req.Header.Set("Authorization", "Bearer "+caller.token)
				resp, err := client.Do(req)
				if err != nil {
					return err.Error(), false, nil // the manager's metrics server may still be starting
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != caller.want {
					return resp.Status, false, fmt.Errorf("%s: %s, want %d", what, resp.Status, caller.want)
				}
				if caller.want == http.StatusOK && !strings.Contains(string(body), target.metric) {
					return "", false, fmt.Errorf("the %s's /metrics lacks %s", target.component, target.metric)
				}
				return resp.Status, true, nil
			})
		}
	}
}
