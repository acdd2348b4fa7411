// Package replicaprofile is the ReplicaProfile controller: it puts a workload's pods in the states
// a ReplicaProfile asks for (Online, Cutoff, Standby) and sets the workload's /scale.
//
// Decisions come from package podstate (pure); this package reads the cluster, applies them and
// reports. All state is in the cluster: pod labels and readiness-gate conditions, the workload's
// scale and the ReplicaProfile's status, so a restarted manager carries on from what it finds.
// Pods are listed from the API server, not from a cache, so that a decision is never taken on
// pod states older than the changes this controller just made.
package replicaprofile

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/podsort"
	"github.com/kapacitystack/kapacity/executor/podstate"
	"github.com/kapacitystack/kapacity/executor/requeue"
	"github.com/kapacitystack/kapacity/executor/standby"
	"github.com/kapacitystack/kapacity/executor/workload"
)

// ControllerName is the controller's name and its events' reporter.
const ControllerName = "replica_profile_controller"

// Condition reasons and event reasons, as Kapacity names them.
const (
	ReasonPaused             = "ReplicaProfilePaused"
	ReasonApplied            = "ReplicaProfileApplied"
	ReasonEnsured            = "ReplicaProfileEnsured"
	ReasonNotSatisfied       = "ReplicaNumberNotSatisfied"
	ReasonStateChangeSkipped = "StateChangeSkipped"
	ReasonFailedGetScale     = "FailedGetScale"
	ReasonInvalidSelector    = "InvalidSelector"
	ReasonFailedListPods     = "FailedListPods"
	ReasonFailedGetWorkload  = "FailedGetWorkload"
	ReasonSorterNotSupported = "PodSorterNotSupportedByWorkload"
	ReasonFailedTraffic      = "FailedGetPodTrafficController"
	ReasonFailedCalculate    = "FailedCalculateStateChange"
	ReasonFailedSetPodState  = "FailedSetPodState"
	ReasonFailedUpdateScale  = "FailedUpdateScale"
	ReasonFailedCleanup      = "FailedCleanup"

	EventOnlinePods         = "OnlinePods"
	EventCutoffPods         = "CutoffPods"
	EventStandbyPods        = "StandbyPods"
	EventSelectPodsToDelete = "SelectPodsToDelete"
	EventUpdateScale        = "UpdateScale"
)

// Reconciler reconciles ReplicaProfiles.
type Reconciler struct {
	// Client reads ReplicaProfiles from the cache and writes everything.
	Client client.Client
	// Reader lists pods from the API server.
	Reader   client.Reader
	Scaler   workload.Scaler
	Recorder events.EventRecorder
	// Standby says how much CPU Standby pods keep; nil leaves their resources alone (Standby then
	// only cuts traffic off, as in Kapacity).
	Standby *standby.Options

	// selectors maps a ReplicaProfile to its workload's pod selector, for the pod watch. It is a
	// cache refreshed on every reconcile; after a restart the initial reconcile of every
	// ReplicaProfile fills it.
	selectors sync.Map // types.NamespacedName -> labels.Selector
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.ReplicaProfile{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.profilesOfPod), builder.WithPredicates(podPredicate())).
		WithOptions(controllerOptions(concurrency)).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	return requeue.OnConflict(ctx, res, err)
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	rp := &v1alpha1.ReplicaProfile{}
	if err := r.Client.Get(ctx, req.NamespacedName, rp); err != nil {
		if apierrors.IsNotFound(err) {
			r.selectors.Delete(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting ReplicaProfile: %w", err)
	}
	if !rp.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, rp)
	}
	if !controllerutil.ContainsFinalizer(rp, v1alpha1.FinalizerName) {
		patched := rp.DeepCopy()
		controllerutil.AddFinalizer(patched, v1alpha1.FinalizerName)
		if err := r.Client.Patch(ctx, patched, client.MergeFrom(rp)); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the finalizer: %w", err)
		}
		rp = patched
	}
	original := rp.Status.DeepCopy()
	rp.Spec.Default()

	if rp.Spec.Paused {
		msg := "the replica profile is paused"
		r.setCondition(rp, v1alpha1.ReplicaProfileApplied, metav1.ConditionFalse, ReasonPaused, msg)
		r.setCondition(rp, v1alpha1.ReplicaProfileEnsured, metav1.ConditionFalse, ReasonPaused, msg)
		return ctrl.Result{}, r.updateStatus(ctx, rp, original)
	}

	scale, gr, err := r.Scaler.GetScale(ctx, rp.Namespace, rp.Spec.ScaleTargetRef)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileEnsured, ReasonFailedGetScale, err)
	}
	selector, err := workload.Selector(scale)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileEnsured, ReasonInvalidSelector, err)
	}
	r.selectors.Store(req.NamespacedName, selector)
	pods, err := r.listPods(ctx, rp.Namespace, selector)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileEnsured, ReasonFailedListPods, err)
	}

	gk, err := workload.GroupKind(rp.Spec.ScaleTargetRef)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedGetWorkload, err)
	}
	// Without a default order for the kind, only changes that move no pod between states work:
	// Decide asks for the order only when it needs one, and then fails.
	order, orderErr := podsort.ForWorkload(gk, pods)
	if rp.Spec.Behavior.PodSorter.Type != v1alpha1.WorkloadDefaultPodSorterType {
		msg := fmt.Sprintf("pod sorter %q is not supported: only %s is", rp.Spec.Behavior.PodSorter.Type, v1alpha1.WorkloadDefaultPodSorterType)
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonSorterNotSupported, fmt.Errorf("%s", msg))
	}
	if rp.Spec.Behavior.PodTrafficController.Type != v1alpha1.ReadinessGatePodTrafficControllerType {
		err := fmt.Errorf("pod traffic controller %q is not supported: only %s is", rp.Spec.Behavior.PodTrafficController.Type, v1alpha1.ReadinessGatePodTrafficControllerType)
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedTraffic, err)
	}

	// Pods whose traffic or resources disagree with their label (a change interrupted by a
	// restart, pods without the readiness gate) are fixed first, so the counts below are honest.
	rep := &report{}
	defer r.emit(rp, rep)
	if err := r.converge(ctx, pods, rep); err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedSetPodState, err)
	}
	halfCut := halfCutPods(pods)
	// Progress is driven by pod events (pods starting, stopping, changing state), except after a
	// resize that failed in a way that may pass.
	result := func() ctrl.Result {
		if rep.retry {
			return ctrl.Result{RequeueAfter: retryInterval}
		}
		return ctrl.Result{}
	}

	replicas := scale.Spec.Replicas
	decision, err := podstate.Decide(&rp.Spec, pods, replicas, order, podsort.RemovesNotReadyFirst(gk))
	if err != nil {
		if resumeErr := r.resumeTraffic(ctx, halfCut, podstate.Transition{}); resumeErr != nil {
			err = fmt.Errorf("%w (and giving half-cut pods their traffic back: %v)", err, resumeErr)
		}
		if orderErr != nil {
			err = fmt.Errorf("%w (%v)", err, orderErr)
		}
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedCalculate, err)
	}
	obs := decision.Observed
	rp.Status.OnlineReplicas, rp.Status.CutoffReplicas, rp.Status.StandbyReplicas = obs.Online, obs.Cutoff, obs.Standby
	if decision.Ensured {
		if err := r.resumeTraffic(ctx, halfCut, podstate.Transition{}); err != nil {
			return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedSetPodState, err)
		}
		r.setCondition(rp, v1alpha1.ReplicaProfileEnsured, metav1.ConditionTrue, ReasonEnsured, "current replica profile is ensured")
		r.setCondition(rp, v1alpha1.ReplicaProfileApplied, metav1.ConditionTrue, ReasonApplied, "all the operations for ensuring the replica profile are applied")
		return result(), r.updateStatus(ctx, rp, original)
	}
	r.setCondition(rp, v1alpha1.ReplicaProfileEnsured, metav1.ConditionFalse, ReasonNotSatisfied,
		fmt.Sprintf("the number of replicas of some states do not meet the expectation: running %d online, %d cutoff, %d standby; desired %d online, %d cutoff, %d standby; workload replicas %d",
			obs.Online, obs.Cutoff, obs.Standby, decision.DesiredOnline, rp.Spec.CutoffReplicas, rp.Spec.StandbyReplicas, replicas))

	if err := r.apply(ctx, rp, gk.Kind, decision.Transition, rep); err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedSetPodState, err)
	}
	if err := r.resumeTraffic(ctx, halfCut, decision.Transition); err != nil {
		return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedSetPodState, err)
	}
	if decision.UpdateScale {
		scale.Spec.Replicas = decision.ScaleReplicas
		if _, err := r.Scaler.UpdateScale(ctx, rp.Namespace, gr, scale); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{}, err
			}
			return ctrl.Result{}, r.fail(ctx, rp, original, v1alpha1.ReplicaProfileApplied, ReasonFailedUpdateScale, err)
		}
		r.Recorder.Eventf(rp, nil, corev1.EventTypeNormal, EventUpdateScale, "Scale",
			"rescale target workload from %d to %d replicas", replicas, decision.ScaleReplicas)
		log.Info("rescaled the workload", "from", replicas, "to", decision.ScaleReplicas)
	}
	if decision.StateChangeSkipped {
		r.setCondition(rp, v1alpha1.ReplicaProfileApplied, metav1.ConditionFalse, ReasonStateChangeSkipped,
			fmt.Sprintf("state change skipped as the number of current running pods (%d) mismatch the desired replicas of the target workload (%d)", obs.Total(), replicas))
	} else {
		r.setCondition(rp, v1alpha1.ReplicaProfileApplied, metav1.ConditionTrue, ReasonApplied, "all the operations for ensuring the replica profile are applied")
	}
	return result(), r.updateStatus(ctx, rp, original)
}

// apply moves pods between states: traffic first, then the label, so that a pod labelled Online
// always serves and a pod labelled Cutoff never does. A pod leaving Standby gets its CPU requests
// back before anything else (it serves with them); a pod entering Standby gives them back after
// its label is set (a restart in between is completed by converge). Pods to delete are only marked
// (for ReplicaSets); the workload's controller removes them when the scale is lowered. Pods
// without the readiness gate were left out of Cutoff and Standby by podstate and are reported.
func (r *Reconciler) apply(ctx context.Context, rp *v1alpha1.ReplicaProfile, kind string, t podstate.Transition, rep *report) error {
	log := logr.FromContextOrDiscard(ctx)
	if len(t.Ungated) > 0 {
		log.Info("pods without the readiness gate cannot be cut off; they stay Online", "pods", names(t.Ungated))
		rep.ungated = append(rep.ungated, names(t.Ungated)...)
	}
	steps := []struct {
		pods  []*corev1.Pod
		state v1alpha1.PodState
		event string
	}{
		{t.Online, v1alpha1.PodStateOnline, EventOnlinePods},
		{t.Cutoff, v1alpha1.PodStateCutoff, EventCutoffPods},
		{t.Standby, v1alpha1.PodStateStandby, EventStandbyPods},
	}
	for _, s := range steps {
		if len(s.pods) == 0 {
			continue
		}
		r.Recorder.Eventf(rp, nil, corev1.EventTypeNormal, s.event, "SetPodState", "%s pods: %v", strings.ToLower(string(s.state)), names(s.pods))
		log.Info("changing pod states", "state", s.state, "pods", names(s.pods))
		for _, pod := range s.pods {
			if s.state != v1alpha1.PodStateStandby {
				r.restoreResources(ctx, pod, rep)
			}
			// Standby pods keep no traffic either: they are not meant to serve.
			if err := setTraffic(ctx, r.Client, pod, s.state == v1alpha1.PodStateOnline); err != nil {
				return fmt.Errorf("failed to mark pod %q %s: %w", pod.Name, strings.ToLower(string(s.state)), err)
			}
			if err := setState(ctx, r.Client, pod, s.state); err != nil {
				return fmt.Errorf("failed to mark pod %q %s: %w", pod.Name, strings.ToLower(string(s.state)), err)
			}
			if s.state == v1alpha1.PodStateStandby {
				if err := r.releaseResources(ctx, pod, rep); err != nil {
					return fmt.Errorf("failed to release the resources of standby pod %q: %w", pod.Name, err)
				}
			}
		}
	}
	if len(t.Delete) > 0 {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeNormal, EventSelectPodsToDelete, "SelectPods", "select pods to delete: %v", names(t.Delete))
		log.Info("selected pods to delete", "pods", names(t.Delete))
		if kind == "ReplicaSet" || kind == "Deployment" {
			for _, pod := range t.Delete {
				if err := markForDeletion(ctx, r.Client, pod); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// finalize returns every pod the profile took out of service to Online, with the CPU requests it
// had before Standby, so that deleting a ReplicaProfile never leaves pods cut off or shrunk, then
// removes the finalizer. A restore that fails for a reason that may pass keeps the finalizer
// (the reconcile is retried): once the profile is gone nothing would give the pods their CPU back.
func (r *Reconciler) finalize(ctx context.Context, rp *v1alpha1.ReplicaProfile) error {
	defer r.selectors.Delete(types.NamespacedName{Namespace: rp.Namespace, Name: rp.Name})
	if !controllerutil.ContainsFinalizer(rp, v1alpha1.FinalizerName) {
		return nil
	}
	if scale, _, err := r.Scaler.GetScale(ctx, rp.Namespace, rp.Spec.ScaleTargetRef); err == nil {
		if selector, err := workload.Selector(scale); err == nil {
			pods, err := r.listPods(ctx, rp.Namespace, selector)
			if err != nil {
				return fmt.Errorf("listing pods to bring back online: %w", err)
			}
			rep := &report{}
			defer r.emit(rp, rep)
			for _, pod := range pods {
				r.restoreResources(ctx, pod, rep)
				if rep.retry {
					return fmt.Errorf("restoring the CPU requests of pod %s: %w", pod.Name, rep.restoreErr)
				}
				if podstate.StateOf(pod) == v1alpha1.PodStateOnline && onlineCondition(pod) == nil {
					continue
				}
				if err := setTraffic(ctx, r.Client, pod, true); err != nil {
					r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, ReasonFailedCleanup, "Cleanup", "%v", err)
					return err
				}
				if err := setState(ctx, r.Client, pod, v1alpha1.PodStateOnline); err != nil {
					r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, ReasonFailedCleanup, "Cleanup", "%v", err)
					return err
				}
			}
		}
	}
	// A workload that is gone has no pods to bring back.
	patched := rp.DeepCopy()
	controllerutil.RemoveFinalizer(patched, v1alpha1.FinalizerName)
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(rp)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	return nil
}

func (r *Reconciler) listPods(ctx context.Context, namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := r.Reader.List(ctx, list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// fail reports an error: a Warning event, the condition, the status; the error is returned for a
// requeue with backoff.
func (r *Reconciler) fail(ctx context.Context, rp *v1alpha1.ReplicaProfile, original *v1alpha1.ReplicaProfileStatus,
	cond v1alpha1.ReplicaProfileConditionType, reason string, err error) error {
	r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, reason, "Reconcile", "%v", err)
	r.setCondition(rp, cond, metav1.ConditionFalse, reason, err.Error())
	if serr := r.updateStatus(ctx, rp, original); serr != nil {
		logr.FromContextOrDiscard(ctx).Error(serr, "updating status after a failure")
	}
	return fmt.Errorf("%s: %w", reason, err)
}

func (r *Reconciler) setCondition(rp *v1alpha1.ReplicaProfile, t v1alpha1.ReplicaProfileConditionType, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&rp.Status.Conditions, metav1.Condition{
		Type: string(t), Status: status, Reason: reason, Message: msg, ObservedGeneration: rp.Generation,
	})
}

func (r *Reconciler) updateStatus(ctx context.Context, rp *v1alpha1.ReplicaProfile, original *v1alpha1.ReplicaProfileStatus) error {
	if equality.Semantic.DeepEqual(*original, rp.Status) {
		return nil
	}
	if err := r.Client.Status().Update(ctx, rp); err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}

// profilesOfPod maps a pod to the ReplicaProfile whose workload selects it.
func (r *Reconciler) profilesOfPod(ctx context.Context, obj client.Object) []ctrl.Request {
	var reqs []ctrl.Request
	podLabels := labels.Set(obj.GetLabels())
	r.selectors.Range(func(k, v any) bool {
		key := k.(types.NamespacedName)
		if key.Namespace == obj.GetNamespace() && v.(labels.Selector).Matches(podLabels) {
			reqs = append(reqs, ctrl.Request{NamespacedName: key})
		}
		return true
	})
	return reqs
}

// podPredicate passes pod events that can change a ReplicaProfile's counts or what it must do:
// creation, deletion, and updates that change whether the pod runs, its state label, or whether
// the kubelet refused its resize as infeasible (a standby pod then gets its requests back).
func podPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldPod, ok1 := e.ObjectOld.(*corev1.Pod)
			newPod, ok2 := e.ObjectNew.(*corev1.Pod)
			if !ok1 || !ok2 || oldPod.ResourceVersion == newPod.ResourceVersion {
				return false
			}
			if podstate.IsRunning(oldPod) != podstate.IsRunning(newPod) {
				return true
			}
			if podstate.StateOf(oldPod) != podstate.StateOf(newPod) {
				return true
			}
			_, oldInfeasible := standby.Infeasible(oldPod)
			_, newInfeasible := standby.Infeasible(newPod)
			return oldInfeasible != newInfeasible
		},
	}
}
