package ihpa

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// syncPortraits makes the HorizontalPortraits of the Dynamic providers match the spec (creating,
// updating, and deleting those of removed providers, which Kapacity only did while the manager
// remembered them) and returns their data by name. A provider whose portrait cannot be synced gets
// an error by its index and the others are synced all the same; failing to delete the portraits of
// removed providers affects no value, so it is only reported (an event) and tried again at the next
// reconcile.
func (r *Reconciler) syncPortraits(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) (map[string]*v1alpha1.HorizontalPortraitData, map[int]error) {
	data := map[string]*v1alpha1.HorizontalPortraitData{}
	wanted := map[string]bool{}
	errs := map[int]error{}
	for i := range ihpa.Spec.PortraitProviders {
		p := &ihpa.Spec.PortraitProviders[i]
		if p.Type != v1alpha1.DynamicHorizontalPortraitProviderType {
			continue
		}
		if p.Dynamic == nil {
			errs[i] = fmt.Errorf("provider of type %s has no dynamic block", p.Type)
			continue
		}
		name := portraitName(ihpa.Name, p)
		wanted[name] = true
		spec := v1alpha1.HorizontalPortraitSpec{ScaleTargetRef: ihpa.Spec.ScaleTargetRef, PortraitSpec: *p.Dynamic.PortraitSpec.DeepCopy()}
		hp := &v1alpha1.HorizontalPortrait{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: ihpa.Namespace, Name: name}, hp)
		switch {
		case apierrors.IsNotFound(err):
			hp = &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Namespace: ihpa.Namespace, Name: name}, Spec: spec}
			if err := controllerutil.SetControllerReference(ihpa, hp, r.Client.Scheme()); err != nil {
				errs[i] = fmt.Errorf("creating HorizontalPortrait %s: %w", name, err)
				continue
			}
			if err := r.Client.Create(ctx, hp); err != nil {
				errs[i] = fmt.Errorf("creating HorizontalPortrait %s: %w", name, err)
				continue
			}
			data[name] = nil
			continue
		case err != nil:
			errs[i] = fmt.Errorf("getting HorizontalPortrait %s: %w", name, err)
			continue
		}
		if !metav1.IsControlledBy(hp, ihpa) {
			errs[i] = fmt.Errorf("HorizontalPortrait %s exists and is not controlled by this autoscaler", name)
			continue
		}
		// Compare with the server's defaults applied, so that defaulted fields do not cause a
		// patch on every reconcile.
		want := spec.DeepCopy()
		want.PortraitSpec.Default()
		have := hp.Spec.DeepCopy()
		have.PortraitSpec.Default()
		if !equality.Semantic.DeepEqual(*want, *have) {
			patched := hp.DeepCopy()
			patched.Spec = spec
			if err := r.Client.Patch(ctx, patched, client.MergeFrom(hp)); err != nil {
				errs[i] = fmt.Errorf("updating HorizontalPortrait %s: %w", name, err)
				continue
			}
		}
		data[name] = hp.Status.PortraitData
	}

	var list v1alpha1.HorizontalPortraitList
	if err := r.Client.List(ctx, &list, client.InNamespace(ihpa.Namespace)); err != nil {
		r.reportCleanup(ctx, ihpa, fmt.Errorf("listing HorizontalPortraits: %w", err))
		return data, errs
	}
	for i := range list.Items {
		hp := &list.Items[i]
		if wanted[hp.Name] || !metav1.IsControlledBy(hp, ihpa) {
			continue
		}
		if err := r.Client.Delete(ctx, hp); err != nil && !apierrors.IsNotFound(err) {
			r.reportCleanup(ctx, ihpa, fmt.Errorf("deleting HorizontalPortrait %s of a removed provider: %w", hp.Name, err))
		}
	}
	return data, errs
}
