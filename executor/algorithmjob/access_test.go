package algorithmjob

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func portrait(name string) *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: types.UID("uid-" + name)}}
}

func newAccess(t *testing.T, objs ...client.Object) (*Access, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	return &Access{Reader: c, Writer: c, ServiceAccount: sa}, c
}

func owners(o metav1.Object) []string {
	var out []string
	for _, r := range o.GetOwnerReferences() {
		out = append(out, r.Name)
	}
	return out
}

// TestEnsureAccess: the first portrait of a namespace gets the ServiceAccount and the RoleBinding
// to the jobs' ClusterRole, each later one is added as an owner (so the last one's deletion
// removes them), and nothing else changes on repeated calls.
func TestEnsureAccess(t *testing.T) {
	ctx := context.Background()
	a, c := newAccess(t)
	for _, name := range []string{"web", "api", "web"} {
		if err := a.Ensure(ctx, portrait(name)); err != nil {
			t.Fatal(err)
		}
	}
	key := client.ObjectKey{Namespace: "team", Name: sa}
	got := &corev1.ServiceAccount{}
	if err := c.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if o := owners(got); strings.Join(o, ",") != "web,api" || got.Labels[ManagedByLabelKey] != ManagedByLabelValue {
		t.Errorf("ServiceAccount owners %v labels %v", o, got.Labels)
	}
	rb := &rbacv1.RoleBinding{}
	if err := c.Get(ctx, key, rb); err != nil {
		t.Fatal(err)
	}
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRoleName}
	if rb.RoleRef != wantRef || len(rb.Subjects) != 1 || rb.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: "team"}) ||
		strings.Join(owners(rb), ",") != "web,api" {
		t.Errorf("RoleBinding roleRef %+v subjects %+v owners %v", rb.RoleRef, rb.Subjects, owners(rb))
	}
	for _, r := range append(got.OwnerReferences, rb.OwnerReferences...) {
		if r.Controller != nil && *r.Controller {
			t.Errorf("owner %s is a controller: several portraits share these objects", r.Name)
		}
	}
}

// TestEnsureAccessRespectsTheNamespaceOwner: a ServiceAccount the namespace's owner made is used
// as it is; a RoleBinding of the name that binds something else is reported, never rebound.
func TestEnsureAccessRespectsTheNamespaceOwner(t *testing.T) {
	ctx := context.Background()
	own := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: sa, Labels: map[string]string{"mine": "yes"}}}
	a, c := newAccess(t, own)
	if err := a.Ensure(ctx, portrait("web")); err != nil {
		t.Fatal(err)
	}
	got := &corev1.ServiceAccount{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(own), got); err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 0 {
		t.Errorf("the namespace owner's ServiceAccount got owners %v: it would be garbage collected", owners(got))
	}

	other := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "team"}}}
	a, _ = newAccess(t, other)
	err := a.Ensure(ctx, portrait("web"))
	if err == nil || !strings.Contains(err.Error(), "binds ClusterRole view, not ClusterRole "+ClusterRoleName) || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("error %v, want one naming the foreign roleRef and the fix", err)
	}
}
