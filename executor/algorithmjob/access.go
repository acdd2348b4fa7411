package algorithmjob

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Access creates the ServiceAccount algorithm jobs run as and its RoleBinding to ClusterRoleName,
// in the namespace of each portrait that needs them.
//
// Reads go to Reader, the API server itself: the manager reads these two objects by name only,
// so it needs `get` on them by resourceNames and no cluster-wide watch of ServiceAccounts or
// RoleBindings.
type Access struct {
	Reader client.Reader
	Writer client.Client
	// ServiceAccount names both the ServiceAccount and its RoleBinding.
	ServiceAccount string
}

// Ensure makes sure the portrait owner's namespace has the ServiceAccount and the RoleBinding.
// Objects the manager creates carry the managed-by label and an owner reference to every
// portrait that uses them, so the garbage collector removes them with the last such portrait. A
// ServiceAccount the namespace's owner made is used as it is (more rights may be bound to it on
// purpose); a RoleBinding of that name must bind ClusterRoleName, or the error says to delete it.
func (a *Access) Ensure(ctx context.Context, owner client.Object) error {
	ns := owner.GetNamespace()
	sa := &corev1.ServiceAccount{}
	if err := a.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.ServiceAccount}, sa); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting ServiceAccount %s/%s: %w", ns, a.ServiceAccount, err)
		}
		sa = &corev1.ServiceAccount{ObjectMeta: a.objectMeta(ns)}
		if err := a.create(ctx, owner, sa); err != nil {
			return err
		}
	} else if err := a.adopt(ctx, owner, sa, nil); err != nil {
		return err
	}

	want := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRoleName}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: a.ServiceAccount, Namespace: ns}
	rb := &rbacv1.RoleBinding{}
	if err := a.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.ServiceAccount}, rb); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting RoleBinding %s/%s: %w", ns, a.ServiceAccount, err)
		}
		rb = &rbacv1.RoleBinding{ObjectMeta: a.objectMeta(ns), RoleRef: want, Subjects: []rbacv1.Subject{subject}}
		return a.create(ctx, owner, rb)
	}
	if rb.RoleRef != want {
		return fmt.Errorf("RoleBinding %s/%s binds %s %s, not ClusterRole %s: delete it, and the manager recreates it "+
			"(bind other rights to ServiceAccount %s under another name)", ns, rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name, ClusterRoleName, a.ServiceAccount)
	}
	return a.adopt(ctx, owner, rb, func() bool {
		if slices.Contains(rb.Subjects, subject) {
			return false
		}
		rb.Subjects = append(rb.Subjects, subject)
		return true
	})
}

func (a *Access) objectMeta(ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: a.ServiceAccount, Namespace: ns, Labels: map[string]string{ManagedByLabelKey: ManagedByLabelValue}}
}

func (a *Access) create(ctx context.Context, owner, obj client.Object) error {
	if err := controllerutil.SetOwnerReference(owner, obj, a.Writer.Scheme()); err != nil {
		return err
	}
	if err := a.Writer.Create(ctx, obj); err != nil {
		// AlreadyExists: another worker created it first; the retry adopts it.
		return fmt.Errorf("creating %s %s/%s: %w", kindOf(obj), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// adopt adds owner to the owner references of an object the manager created (and applies fix,
// which tells whether it changed anything), with one optimistic-locked patch.
func (a *Access) adopt(ctx context.Context, owner, obj client.Object, fix func() bool) error {
	if obj.GetLabels()[ManagedByLabelKey] != ManagedByLabelValue {
		if fix != nil && fix() {
			return fmt.Errorf("RoleBinding %s/%s was not made by the manager and does not bind ServiceAccount %s: delete it, and the manager recreates it",
				obj.GetNamespace(), obj.GetName(), a.ServiceAccount)
		}
		return nil
	}
	before, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %T", obj)
	}
	changed := fix != nil && fix()
	if !slices.ContainsFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == owner.GetUID() }) {
		if err := controllerutil.SetOwnerReference(owner, obj, a.Writer.Scheme()); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	if err := a.Writer.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating %s %s/%s: %w", kindOf(obj), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	default:
		return fmt.Sprintf("%T", obj)
	}
}
