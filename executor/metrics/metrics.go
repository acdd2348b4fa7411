// Package metrics is the manager's Prometheus metrics about what the autoscaler thinks: per
// IntelligentHorizontalPodAutoscaler, each provider's replicas, the merged portrait, the replicas
// asked for per pod state, the gray change's progress and the stability checkers' verdict; per
// HorizontalPortrait, its value now, when it expires and how its generations (algorithm runs) end.
//
// Cardinality is bounded by the objects: labels are the object's namespace and name, the provider's
// index and identifier (at most the spec's providers) and fixed enumerations; every series of an
// object is deleted when the object is. The controllers call it from one place each (Observe* when
// a reconcile ends, Forget* when the object is gone); a nil *Exporter does nothing, so tests and
// callers without metrics need no set-up.
package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
	"github.com/kapacitystack/kapacity/executor/gray"
)

// Stability states of kapacity_ihpa_stability_state.
const (
	StateStable     = "stable"
	StatePaused     = "paused"
	StateRolledBack = "rolled_back"
	// conditionStable is the IHPA's Stable condition (executor/ihpa.ConditionStable; not imported:
	// ihpa imports this package).
	conditionStable = "Stable"
	reasonRollback  = "AnomalyRolledBack"
)

// Generation outcomes of kapacity_portrait_generations_total.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
)

var stabilityStates = []string{StateStable, StatePaused, StateRolledBack}

// Exporter holds the metrics. Create it with New; a nil Exporter is valid and does nothing.
type Exporter struct {
	providerReplicas  *prometheus.GaugeVec
	portraitReplicas  *prometheus.GaugeVec
	desiredReplicas   *prometheus.GaugeVec
	replicas          *prometheus.GaugeVec
	grayPercent       *prometheus.GaugeVec
	grayLastUpdate    *prometheus.GaugeVec
	stabilityState    *prometheus.GaugeVec
	scalingActive     *prometheus.GaugeVec
	hpReplicas        *prometheus.GaugeVec
	hpExpire          *prometheus.GaugeVec
	hpGenerated       *prometheus.GaugeVec
	hpGenerations     *prometheus.CounterVec
	hpLastSuccessTime *prometheus.GaugeVec

	now func() time.Time
}

// New creates the metrics and registers them on reg (the manager passes controller-runtime's
// metrics.Registry, which its /metrics endpoint serves).
func New(reg prometheus.Registerer) (*Exporter, error) {
	ihpa := []string{"namespace", "name"}
	e := &Exporter{
		providerReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_provider_replicas",
			Help: "Replicas each portrait provider of an IHPA offers now, by provider (Static, Cron or Dynamic-<type>) and priority. Absent while the provider has no valid value.",
		}, []string{"namespace", "name", "provider", "priority"}),
		portraitReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_portrait_replicas",
			Help: "Replicas of the merged portrait value in effect (status.currentPortraitValue), before min/max capping.",
		}, ihpa),
		desiredReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_desired_replicas",
			Help: "Online replicas the IHPA aims for: the merged portrait value capped to minReplicas..maxReplicas.",
		}, ihpa),
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_replicas",
			Help: "Replicas the IHPA currently asks for per pod state: online, cutoff, standby (status.onlineReplicas, cutoffReplicas, standbyReplicas).",
		}, []string{"namespace", "name", "state"}),
		grayPercent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_gray_percent",
			Help: "Progress of the gray change in progress, in percent of the difference moved (status.gray.grayPercent). Absent when no gray change is unfinished.",
		}, ihpa),
		grayLastUpdate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_gray_last_update_timestamp_seconds",
			Help: "Unix time of the last step of the gray change in progress (status.gray.lastUpdateTime). Absent when no gray change is unfinished.",
		}, ihpa),
		stabilityState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_stability_state",
			Help: "Verdict of the stability checkers (the Stable condition): 1 for the current state (stable, paused, rolled_back), 0 for the others. Absent while no checker watches a change.",
		}, []string{"namespace", "name", "state"}),
		scalingActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_ihpa_scaling_active",
			Help: "1 when the IHPA's ScalingActive condition is True, 0 when it reports a failure, a pause or no valid portrait value.",
		}, ihpa),
		hpReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_portrait_replicas",
			Help: "Replicas a HorizontalPortrait offers now (for a TimeSeries portrait, the forecast point in effect). Absent while it has no valid value.",
		}, []string{"namespace", "name", "type"}),
		hpExpire: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_portrait_expire_timestamp_seconds",
			Help: "Unix time at which a HorizontalPortrait's data expires (status.portraitData.expireTime). Absent when it never expires.",
		}, []string{"namespace", "name"}),
		hpGenerated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_portrait_generated",
			Help: "1 when a HorizontalPortrait's PortraitGenerated condition is True, 0 when its last generation (in-process algorithm or algorithm job result) failed.",
		}, []string{"namespace", "name", "algorithm"}),
		hpGenerations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kapacity_portrait_generations_total",
			Help: "Generations of HorizontalPortraits by outcome: runs of the in-process algorithm, and reads of an algorithm job's result ConfigMap.",
		}, []string{"namespace", "name", "algorithm", "outcome"}),
		hpLastSuccessTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kapacity_portrait_last_success_timestamp_seconds",
			Help: "Unix time of the last successful generation of a HorizontalPortrait seen by this manager.",
		}, []string{"namespace", "name"}),
		now: time.Now,
	}
	// A manager started again in the same process (tests, the demo) shares the series already
	// registered instead of failing.
	for _, g := range []**prometheus.GaugeVec{&e.providerReplicas, &e.portraitReplicas, &e.desiredReplicas, &e.replicas,
		&e.grayPercent, &e.grayLastUpdate, &e.stabilityState, &e.scalingActive, &e.hpReplicas, &e.hpExpire, &e.hpGenerated,
		&e.hpLastSuccessTime} {
		if err := register(reg, g); err != nil {
			return nil, err
		}
	}
	if err := register(reg, &e.hpGenerations); err != nil {
		return nil, err
	}
	return e, nil
}

// register registers *c, or points *c at the collector of the same name already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return fmt.Errorf("registering manager metrics: %w", err)
		}
		*c = existing
		return nil
	}
	if err != nil {
		return fmt.Errorf("registering manager metrics: %w", err)
	}
	return nil
}

func objectLabels(ns, name string) prometheus.Labels {
	return prometheus.Labels{"namespace": ns, "name": name}
}

// ObserveProviders records each provider's offer, as the IHPA controller evaluated them. A series
// is named by the provider's identifier and priority (providers of the same kind and priority,
// which the validating webhook refuses for crons, would share one).
func (e *Exporter) ObserveProviders(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, candidates []portrait.Candidate) {
	if e == nil {
		return
	}
	e.providerReplicas.DeletePartialMatch(objectLabels(ihpa.Namespace, ihpa.Name))
	for _, c := range candidates {
		if c.Value == nil || (c.Value.ExpireTime != nil && !c.Value.ExpireTime.IsZero() && !e.now().Before(c.Value.ExpireTime.Time)) {
			continue
		}
		e.providerReplicas.WithLabelValues(ihpa.Namespace, ihpa.Name, c.Value.Provider, strconv.Itoa(int(c.Priority))).Set(float64(c.Value.Replicas))
	}
}

// ObserveIHPA records what an IHPA's status says (called when a reconcile ends, with the status as
// written).
func (e *Exporter) ObserveIHPA(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) {
	if e == nil {
		return
	}
	ns, name, st := ihpa.Namespace, ihpa.Name, &ihpa.Status
	if v := st.CurrentPortraitValue; v != nil {
		e.portraitReplicas.WithLabelValues(ns, name).Set(float64(v.Replicas))
		desired, _ := gray.Cap(v.Replicas, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
		e.desiredReplicas.WithLabelValues(ns, name).Set(float64(desired))
	} else {
		e.portraitReplicas.DeleteLabelValues(ns, name)
		e.desiredReplicas.DeleteLabelValues(ns, name)
	}
	e.replicas.WithLabelValues(ns, name, "online").Set(float64(st.OnlineReplicas))
	e.replicas.WithLabelValues(ns, name, "cutoff").Set(float64(st.CutoffReplicas))
	e.replicas.WithLabelValues(ns, name, "standby").Set(float64(st.StandbyReplicas))
	if g := st.Gray; g != nil {
		e.grayPercent.WithLabelValues(ns, name).Set(float64(g.GrayPercent))
		e.grayLastUpdate.WithLabelValues(ns, name).Set(unixSeconds(g.LastUpdateTime))
	} else {
		e.grayPercent.DeleteLabelValues(ns, name)
		e.grayLastUpdate.DeleteLabelValues(ns, name)
	}
	if c := meta.FindStatusCondition(st.Conditions, conditionStable); c != nil {
		current := StateStable
		if c.Status == metav1.ConditionFalse {
			current = StatePaused
			if c.Reason == reasonRollback {
				current = StateRolledBack
			}
		}
		for _, s := range stabilityStates {
			e.stabilityState.WithLabelValues(ns, name, s).Set(boolValue(s == current))
		}
	} else {
		e.stabilityState.DeletePartialMatch(objectLabels(ns, name))
	}
	if c := meta.FindStatusCondition(st.Conditions, string(v1alpha1.ScalingActive)); c != nil {
		e.scalingActive.WithLabelValues(ns, name).Set(boolValue(c.Status == metav1.ConditionTrue))
	}
}

// ForgetIHPA deletes every series of a deleted IHPA.
func (e *Exporter) ForgetIHPA(key types.NamespacedName) {
	if e == nil {
		return
	}
	l := objectLabels(key.Namespace, key.Name)
	for _, v := range []*prometheus.GaugeVec{e.providerReplicas, e.portraitReplicas, e.desiredReplicas, e.replicas,
		e.grayPercent, e.grayLastUpdate, e.stabilityState, e.scalingActive} {
		v.DeletePartialMatch(l)
	}
}

// ObservePortrait records a HorizontalPortrait's value and its last generation's outcome (called
// when a reconcile that generated it, or read its job's result, ends).
func (e *Exporter) ObservePortrait(hp *v1alpha1.HorizontalPortrait) {
	if e == nil {
		return
	}
	ns, name := hp.Namespace, hp.Name
	algorithm := string(hp.Spec.Algorithm.Type)
	e.hpReplicas.DeletePartialMatch(objectLabels(ns, name))
	if d := hp.Status.PortraitData; d != nil {
		if ev, err := portrait.EvaluateData(portrait.DynamicProviderPrefix+string(hp.Spec.PortraitType), d, e.now()); err == nil && ev.Value != nil {
			e.hpReplicas.WithLabelValues(ns, name, string(hp.Spec.PortraitType)).Set(float64(ev.Value.Replicas))
		}
		if d.ExpireTime != nil && !d.ExpireTime.IsZero() {
			e.hpExpire.WithLabelValues(ns, name).Set(unixSeconds(*d.ExpireTime))
		} else {
			e.hpExpire.DeleteLabelValues(ns, name)
		}
	}
	c := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated))
	if c == nil {
		return
	}
	ok := c.Status == metav1.ConditionTrue
	e.hpGenerated.DeletePartialMatch(objectLabels(ns, name))
	e.hpGenerated.WithLabelValues(ns, name, algorithm).Set(boolValue(ok))
	outcome := OutcomeFailed
	if ok {
		outcome = OutcomeSucceeded
		e.hpLastSuccessTime.WithLabelValues(ns, name).Set(float64(e.now().UnixMilli()) / 1000)
	}
	e.hpGenerations.WithLabelValues(ns, name, algorithm, outcome).Inc()
}

// ForgetPortrait deletes every series of a deleted HorizontalPortrait.
func (e *Exporter) ForgetPortrait(key types.NamespacedName) {
	if e == nil {
		return
	}
	l := objectLabels(key.Namespace, key.Name)
	for _, v := range []*prometheus.GaugeVec{e.hpReplicas, e.hpExpire, e.hpGenerated, e.hpLastSuccessTime} {
		v.DeletePartialMatch(l)
	}
	e.hpGenerations.DeletePartialMatch(l)
}

func unixSeconds(t metav1.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
