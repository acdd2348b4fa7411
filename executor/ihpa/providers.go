package ihpa

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
)

// ConditionProvidersHealthy tells whether every portrait provider could be evaluated (an addition
// to Kapacity, whose reconcile failed as a whole on the first broken provider, so that not even the
// Static fallback was applied). While it is False, the working providers are still merged and its
// message names each broken one.
const ConditionProvidersHealthy v1alpha1.IntelligentHorizontalPodAutoscalerConditionType = "ProvidersHealthy"

// ReasonProvidersHealthy is the reason of ConditionProvidersHealthy when it is True; when False
// the reason is ReasonFailedFetchPortrait, Kapacity's reason for a failed provider.
const ReasonProvidersHealthy = "AllProvidersHealthy"

// ReasonFailedDeletePortrait is the event reason of a HorizontalPortrait of a removed provider that
// could not be deleted.
const ReasonFailedDeletePortrait = "FailedDeletePortrait"

// providerRetryInterval is how soon a reconcile with a broken provider is retried: a provider can
// fail for a passing reason (an API error) as well as for a bad spec.
const providerRetryInterval = 30 * time.Second

// maxConditionMessage keeps condition messages well under the 32 KiB the API allows, however
// many providers fail and however long their errors are.
const maxConditionMessage = 4096

// evaluateProviders syncs the Dynamic providers' HorizontalPortraits and evaluates every provider
// at now. A provider that fails is left out of the candidates and described in broken (its path,
// its identifier and the error), so that one broken provider never stops the others.
func (r *Reconciler) evaluateProviders(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, now time.Time) (candidates []portrait.Candidate, broken []string) {
	data, syncErrs := r.syncPortraits(ctx, ihpa)
	providers := ihpa.Spec.PortraitProviders
	candidates = make([]portrait.Candidate, 0, len(providers))
	for i := range providers {
		p := &providers[i]
		id, idErr := portrait.ProviderID(p)
		if idErr != nil {
			id = string(p.Type)
		}
		err := syncErrs[i]
		var ev portrait.Evaluation
		if err == nil {
			var d *v1alpha1.HorizontalPortraitData
			if p.Type == v1alpha1.DynamicHorizontalPortraitProviderType {
				d = data[portraitName(ihpa.Name, p)]
			}
			ev, err = portrait.Evaluate(p, d, now)
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "provider "+id+": ")
			broken = append(broken, fmt.Sprintf("%s (%s): %s", field.NewPath("spec", "portraitProviders").Index(i), id, msg))
			continue
		}
		candidates = append(candidates, portrait.Candidate{Priority: p.Priority, Evaluation: ev})
	}
	return candidates, broken
}

// reportProviders sets ConditionProvidersHealthy and, when providers are broken, emits a Warning
// event naming them. It returns the message ("" when all are healthy).
func (r *Reconciler) reportProviders(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, broken []string) string {
	if len(broken) == 0 {
		setCondition(ihpa, ConditionProvidersHealthy, metav1.ConditionTrue, ReasonProvidersHealthy, "every portrait provider was evaluated")
		return ""
	}
	msg := truncate(fmt.Sprintf("%d of %d portrait providers failed and are left out of the merge: %s",
		len(broken), len(ihpa.Spec.PortraitProviders), strings.Join(broken, "; ")), maxConditionMessage)
	r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, ReasonFailedFetchPortrait, "FetchPortrait", "%s", msg)
	setCondition(ihpa, ConditionProvidersHealthy, metav1.ConditionFalse, ReasonFailedFetchPortrait, msg)
	return msg
}

// reportCleanup reports a failure to delete the portraits of removed providers.
func (r *Reconciler) reportCleanup(ctx context.Context, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, err error) {
	logr.FromContextOrDiscard(ctx).Error(err, "deleting the portraits of removed providers")
	r.Recorder.Eventf(ihpa, nil, corev1.EventTypeWarning, ReasonFailedDeletePortrait, "DeletePortrait", "%v", err)
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
