package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/algorithmjob"
)

// ValidatePath is where the validating webhook of Kapacity's resources is served.
const ValidatePath = "/validate-autoscaling-kapacitystack-io-v1alpha1"

// Kinds the validating webhook checks.
const (
	kindIHPA           = "IntelligentHorizontalPodAutoscaler"
	kindPortrait       = "HorizontalPortrait"
	kindReplicaProfile = "ReplicaProfile"
)

// ValidationHandler returns the handler of the validating webhook. It runs the Go validation of
// package v1alpha1 (which repeats the CRD's schema and CEL rules and adds what they cannot express:
// cron syntax and time zones, overlapping windows, unique names, strictly increasing time series)
// and refuses an invalid object with every error, each naming its field. Panics are recovered
// (controller-runtime's default) into a 500, which the API server treats as the failure policy says.
//
// ExternalJob templates are also checked as the HorizontalPortrait controller checks them before
// it creates a CronJob (algorithmjob.ValidateJobTemplate: run as jobServiceAccount, pass Pod
// Security "restricted", mount no Secret), so a template that would never run is refused at once.
func ValidationHandler(scheme *runtime.Scheme, jobServiceAccount string) http.Handler {
	return &admission.Webhook{Handler: &validator{decoder: admission.NewDecoder(scheme), jobServiceAccount: jobServiceAccount}}
}

type validator struct {
	decoder           admission.Decoder
	jobServiceAccount string
}

// jobTemplates checks the ExternalJob template of a portrait spec at path.
func (v *validator) jobTemplates(spec *v1alpha1.PortraitSpec, path *field.Path) field.ErrorList {
	ext := spec.Algorithm.ExternalJob
	if spec.Algorithm.Type != v1alpha1.ExternalJobPortraitAlgorithmType || ext == nil {
		return nil
	}
	return algorithmjob.ValidateJobTemplate(&ext.Job, v.jobServiceAccount, path.Child("algorithm", "externalJob", "job"))
}

// ihpaJobTemplates checks the ExternalJob templates of an IHPA's Dynamic providers.
func (v *validator) ihpaJobTemplates(obj *v1alpha1.IntelligentHorizontalPodAutoscaler) field.ErrorList {
	var errs field.ErrorList
	providers := field.NewPath("spec", "portraitProviders")
	for i := range obj.Spec.PortraitProviders {
		if d := obj.Spec.PortraitProviders[i].Dynamic; d != nil {
			errs = append(errs, v.jobTemplates(&d.PortraitSpec, providers.Index(i).Child("dynamic"))...)
		}
	}
	return errs
}

// Handle implements admission.Handler.
func (v *validator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	var (
		errs field.ErrorList
		err  error
	)
	switch req.Kind.Kind {
	case kindIHPA:
		errs, err = v.validateIHPA(req)
	case kindPortrait:
		errs, err = v.validatePortrait(req)
	case kindReplicaProfile:
		errs, err = v.validateReplicaProfile(req)
	default:
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("this webhook validates %s, %s and %s, not %s", kindIHPA, kindPortrait, kindReplicaProfile, req.Kind.Kind))
	}
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	invalid := apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind(req.Kind.Kind).GroupKind(), req.Name, errs)
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &invalid.ErrStatus}}
}

// On an update, what did not change is not checked again ("ratcheting", as the API server does for
// CRD schemas): an object stored before a rule existed can still have its metadata changed (a
// finalizer removed, a label added) and its status written.

func (v *validator) validateIHPA(req admission.Request) (field.ErrorList, error) {
	obj, old := &v1alpha1.IntelligentHorizontalPodAutoscaler{}, &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := v.decode(req, obj, old); err != nil {
		return nil, err
	}
	if req.Operation == admissionv1.Update {
		if equality.Semantic.DeepEqual(obj.Spec, old.Spec) {
			return nil, nil
		}
		obj.Default()
		return append(obj.ValidateUpdate(old), v.ihpaJobTemplates(obj)...), nil
	}
	obj.Default()
	return append(obj.Validate(), v.ihpaJobTemplates(obj)...), nil
}

func (v *validator) validateReplicaProfile(req admission.Request) (field.ErrorList, error) {
	obj, old := &v1alpha1.ReplicaProfile{}, &v1alpha1.ReplicaProfile{}
	if err := v.decode(req, obj, old); err != nil {
		return nil, err
	}
	if req.Operation == admissionv1.Update {
		if equality.Semantic.DeepEqual(obj.Spec, old.Spec) {
			return nil, nil
		}
		obj.Default()
		return obj.ValidateUpdate(old), nil
	}
	obj.Default()
	return obj.Validate(), nil
}

// validatePortrait checks a HorizontalPortrait's spec, or on its status subresource the portrait
// data a generator writes, which the autoscaler reads.
func (v *validator) validatePortrait(req admission.Request) (field.ErrorList, error) {
	obj, old := &v1alpha1.HorizontalPortrait{}, &v1alpha1.HorizontalPortrait{}
	if err := v.decode(req, obj, old); err != nil {
		return nil, err
	}
	obj.Default()
	if req.SubResource == "status" {
		old.Default()
		data := obj.Status.PortraitData
		if data == nil || equality.Semantic.DeepEqual(data, old.Status.PortraitData) {
			return nil, nil
		}
		return data.Validate(field.NewPath("status", "portraitData")), nil
	}
	if req.Operation == admissionv1.Update {
		old.Default()
		if equality.Semantic.DeepEqual(obj.Spec, old.Spec) {
			return nil, nil
		}
	}
	if equality.Semantic.DeepEqual(obj.Spec, v1alpha1.HorizontalPortraitSpec{}) {
		// Kapacity's documentation shows a generated portrait as `kubectl get hp -o yaml` with the
		// spec elided, and users apply it as a sample; a portrait without a spec generates nothing
		// (its controller says so in the PortraitGenerated condition) and no autoscaler reads it.
		return nil, nil
	}
	return append(obj.Spec.Validate(), v.jobTemplates(&obj.Spec.PortraitSpec, field.NewPath("spec"))...), nil
}

// decode reads the object and, on an update, the old object.
func (v *validator) decode(req admission.Request, obj, old runtime.Object) error {
	if err := v.decoder.Decode(req, obj); err != nil {
		return fmt.Errorf("decoding the %s: %w", req.Kind.Kind, err)
	}
	if req.Operation == admissionv1.Update {
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return fmt.Errorf("decoding the old %s: %w", req.Kind.Kind, err)
		}
	}
	return nil
}

// ValidatingWebhooks are the webhooks of the ValidatingWebhookConfiguration that sends Kapacity's
// resources to ValidatePath; deploy/manager/webhook.yaml holds the same (a test keeps them equal)
// with a Service as clientConfig. caBundle is filled in by the certificate rotator or cert-manager.
//
// The failure policies differ on purpose:
//   - Autoscalers are written by people and their tools, never by the manager (it writes their
//     status, which is not sent here), so refusing them while the manager is down stops no running
//     workload: Fail, so that an autoscaler with a cron that cannot parse or overlapping windows is
//     never stored. The match condition skips updates that leave the spec alone, so removing a
//     finalizer or adding a label never needs the webhook.
//   - ReplicaProfiles and HorizontalPortraits are written by the manager itself on every gray step
//     and by portrait generators: Fail would make the webhook's availability a condition of every
//     scaling step, so they are Ignore, and the CRD's schema and CEL rules (bounds, required blocks,
//     immutable targets, sorted time series) still hold when the webhook is down.
func ValidatingWebhooks(client admissionregistrationv1.WebhookClientConfig) []admissionregistrationv1.ValidatingWebhook {
	client.Service = client.Service.DeepCopy()
	if client.Service != nil {
		client.Service.Path = ptr.To(ValidatePath)
	}
	rule := func(resources ...string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{v1alpha1.GroupVersion.Group}, APIVersions: []string{v1alpha1.GroupVersion.Version},
				Resources: resources, Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}}
	}
	return []admissionregistrationv1.ValidatingWebhook{{
		Name:                    "vihpa.kapacitystack.io",
		ClientConfig:            client,
		Rules:                   rule("intelligenthorizontalpodautoscalers"),
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "spec-written", Expression: "request.operation == 'CREATE' || object.spec != oldObject.spec"}},
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](10),
	}, {
		Name:                    "vprofile.kapacitystack.io",
		ClientConfig:            client,
		Rules:                   rule("replicaprofiles", "horizontalportraits", "horizontalportraits/status"),
		FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptr.To[int32](5),
	}}
}

// publishValidatingCABundle puts the CA in the caBundle of every webhook of the
// ValidatingWebhookConfiguration named in the options, as publishCABundle does for the pod webhook.
func (r *Rotator) publishValidatingCABundle(ctx context.Context, caBundle []byte) error {
	name := r.Options.ValidatingConfigurationName
	if name == "" {
		return nil
	}
	hooks := r.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg, err := hooks.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // installed later: the next check publishes it
	}
	if err != nil {
		return fmt.Errorf("getting ValidatingWebhookConfiguration %s: %w", name, err)
	}
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, caBundle) {
			cfg.Webhooks[i].ClientConfig.CABundle = caBundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if _, err := hooks.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the caBundle of ValidatingWebhookConfiguration %s: %w", name, err)
	}
	return nil
}
