package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
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
	cmd := exec.CommandContext(ctx, filepath.Join(bed.BinDir, "kubectl"), append([]string{"--kubeconfig", bed.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
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
	examples, err := kubectl(ctx, "apply", "--dry-run=server", "-n", ns, "-f", filepath.Join(repoRoot(t), "deploy", "examples"))
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
