package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/test/poll"
)

// repoRoot is the checkout root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func kubectl(ctx context.Context, args ...string) (string, error) {
	return kubectlStdin(ctx, "", args...)
}

// kubectlStdin runs kubectl with stdin as its standard input.
func kubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bed.BinDir, "kubectl"), append([]string{"--kubeconfig", bed.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var (
	docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	kindLine     = regexp.MustCompile(`(?m)^kind:[ \t]*(\S+)`)
)

// withoutKinds drops the documents of the given kinds (whose CRDs the test bed lacks, e.g.
// cert-manager's and the Prometheus Operator's) from a YAML stream, and says which it dropped.
func withoutKinds(stream string, kinds ...string) (kept string, dropped []string) {
	var docs []string
	for _, doc := range docSeparator.Split(stream, -1) {
		m := kindLine.FindStringSubmatch(doc)
		if m != nil && slices.Contains(kinds, m[1]) {
			dropped = append(dropped, m[1])
			continue
		}
		docs = append(docs, doc)
	}
	return strings.Join(docs, "---\n"), dropped
}

// kustomizeOverlay writes a user's overlay of deploy/ with the given components into a temporary
// folder and returns it (kustomize takes relative paths only).
func kustomizeOverlay(t *testing.T, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(repoRoot(t), "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + base + "\ncomponents:\n"
	for _, c := range components {
		k += "  - " + filepath.Join(base, "components", c) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDeployManifestsAreAccepted: everything `kubectl apply -k deploy/` installs is accepted by a
// real API server (server-side dry run: the test bed's own adapter registration stays in place).
func TestDeployManifestsAreAccepted(t *testing.T) {
	ctx := context.Background()
	_, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kapacity-system"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out, err := kubectl(ctx, "apply", "--dry-run=server", "-k", filepath.Join(repoRoot(t), "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(ctx, t)
	// The example manifests (train-*.yaml beside them are `kapacity train` configs, not objects).
	examples, err := kubectl(ctx, "apply", "--dry-run=server", "-n", ns, "-f", filepath.Join(repoRoot(t), "deploy", "examples", "hpa-predicted-replicas.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(examples, "horizontalpodautoscaler.autoscaling/web created (server dry run)") {
		t.Errorf("example HPA not accepted:\n%s", examples)
	}
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/intelligenthorizontalpodautoscalers.autoscaling.kapacitystack.io",
		"deployment.apps/kapacity-adapter", "configmap/kapacity-adapter-config",
		"apiservice.apiregistration.k8s.io/v1beta1.custom.metrics.k8s.io",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}
}

// TestDeployComponentsAreAccepted: the overlays README's Install section describes (deploy/ with
// its components, for clusters that keep metrics-server, KEDA or prometheus-adapter, or run the
// Prometheus Operator) are accepted by a real API server and register exactly the APIs they say.
func TestDeployComponentsAreAccepted(t *testing.T) {
	ctx := context.Background()
	if _, err := bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kapacity-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	const (
		custom   = "apiservice.apiregistration.k8s.io/v1beta2.custom.metrics.k8s.io"
		external = "apiservice.apiregistration.k8s.io/v1beta1.external.metrics.k8s.io"
		resource = "apiservice.apiregistration.k8s.io/v1beta1.metrics.k8s.io"
		history  = "apiservice.apiregistration.k8s.io/v1alpha1.history.metrics.kapacitystack.io"
		scraper  = "clusterrolebinding.rbac.authorization.k8s.io/kapacity-metrics-scraper"
	)
	for _, tc := range []struct {
		components   []string
		want, absent []string
	}{
		{[]string{"without-resource-metrics"}, []string{custom, external, history}, []string{resource}},
		{[]string{"without-external-metrics"}, []string{custom, resource, history}, []string{external}},
		{[]string{"without-external-metrics", "without-resource-metrics"}, []string{custom, history}, []string{external, resource}},
		{[]string{"without-custom-metrics", "without-history"}, []string{external, resource}, []string{custom, history}},
		{[]string{"monitoring"}, []string{custom, external, resource, history, scraper, "service/kapacity-manager-metrics"}, nil},
	} {
		t.Run(strings.Join(tc.components, "+"), func(t *testing.T) {
			built, err := kubectl(ctx, "kustomize", kustomizeOverlay(t, tc.components...))
			if err != nil {
				t.Fatal(err)
			}
			manifest, dropped := withoutKinds(built, "ServiceMonitor")
			out, err := kubectlStdin(ctx, manifest, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w+" ") {
					t.Errorf("kubectl apply output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a+" ") {
					t.Errorf("kubectl apply output has %q:\n%s", a, out)
				}
			}
			if slices.Contains(tc.components, "monitoring") && len(dropped) != 2 {
				t.Errorf("monitoring built %d ServiceMonitors, want 2 (adapter, manager)", len(dropped))
			}
		})
	}
}

// TestChartRenderIsAccepted: the Helm chart rendered with values that deploy/ does not cover
// (another release name and namespace, cert-manager or given certificates for the webhooks and
// the APIServices, the gRPC service, monitors, Prometheus auth and TLS, one replica) is accepted
// object by object by a real API server. cert-manager's and the
// Prometheus Operator's kinds are left out: the test bed has no CRDs for them.
func TestChartRenderIsAccepted(t *testing.T) {
	ctx := context.Background()
	chartgen := filepath.Join(bed.BinDir, "chartgen")
	ns := newNamespace(ctx, t)
	for _, tc := range []struct {
		name string
		sets string
	}{
		{"cert-manager, monitors, Prometheus auth", "webhook.certMode=cert-manager,monitoring.serviceMonitor.enabled=true," +
			"prometheus.address=https://prometheus.monitoring.svc:9091,prometheus.auth.bearerToken.secretName=prom-token," +
			"prometheus.tls.caConfigMapName=prom-ca,prometheus.tls.clientCertSecretName=prom-client,prometheus.headers.X-Scope-OrgID=a"},
		{"one replica each, no webhook, no gRPC", "adapter.replicaCount=1,manager.replicaCount=1,webhook.enabled=false,grpcServer.enabled=false"},
		{"adapter only, basic auth", "manager.enabled=false,prometheus.auth.basicAuth.username=kapacity,prometheus.auth.basicAuth.passwordSecretName=prom-basic"},
		{"adapter certificate by cert-manager, gRPC on", "adapter.servingCert.mode=cert-manager,grpcServer.enabled=true,manager.metrics.secure=false"},
		{"certificates given, gRPC on", "adapter.servingCert.mode=external,adapter.servingCert.secretName=adapter-tls,adapter.servingCert.caBundle=Q0E=," +
			"webhook.certMode=external,webhook.certSecretName=webhook-tls,webhook.caBundle=Q0E=,grpcServer.enabled=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, chartgen, "template", "-root", repoRoot(t), "-name", "autoscale", "-namespace", ns, "-set", tc.sets)
			rendered, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v (build it with make tools)", cmd, err)
			}
			manifest, dropped := withoutKinds(string(rendered), "ServiceMonitor", "Certificate", "Issuer")
			out, err := kubectlStdin(ctx, manifest, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out, "(server dry run)"); n < 10 {
				t.Errorf("only %d objects accepted:\n%s", n, out)
			}
			t.Logf("accepted:\n%sleft out (no CRD in the bed): %v", out, dropped)
		})
	}
}

// TestQuickStartSamplesAreAccepted: with the CRDs installed, the Kapacity quick-start samples are
// accepted unchanged by the API server (schema, defaults and CEL rules of the generated CRDs).
func TestQuickStartSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	root := repoRoot(t)
	if _, err := kubectl(ctx, "apply", "-f", filepath.Join(root, "deploy", "crds")); err != nil {
		t.Fatal(err)
	}
	poll.Until(ctx, t, time.Minute, "CRDs established", func(ctx context.Context) (string, bool, error) {
		out, err := kubectl(ctx, "wait", "--for=condition=Established", "--timeout=5s", "-f", filepath.Join(root, "deploy", "crds"))
		return out, err == nil, nil
	})
	samples, err := filepath.Glob(filepath.Join(root, "deploy", "examples", "quickstart", "*.yaml"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	ns := newNamespace(ctx, t)
	for _, sample := range samples {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			args := []string{"apply", "--dry-run=server", "-f", sample}
			if !strings.Contains(sample, "horizontalportrait-output") { // that one names its namespace
				args = append(args, "-n", ns)
			}
			poll.Until(ctx, t, 30*time.Second, "sample accepted", func(ctx context.Context) (string, bool, error) {
				out, err := kubectl(ctx, args...)
				if err != nil && strings.Contains(err.Error(), "no matches for kind") {
					return err.Error(), false, nil // discovery has not caught up with the new CRDs yet
				}
				return out, true, err
			})
		})
	}
}
