package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portrait"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/executor/podstate"
)

// conditionStable is the executor's Stable condition (executor/ihpa.ConditionStable).
const conditionStable = "Stable"

// Summary is one IHPA at a glance: a row of the list page.
type Summary struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Target    string `json:"target"`
	// Mode is Auto, Preview or Paused.
	Mode string `json:"mode"`
	// Source is the provider whose value is in effect ("" when none), and Portrait its replicas.
	Source   string `json:"source"`
	Portrait *int32 `json:"portraitReplicas"`
	// Desired is Portrait capped to min/max.
	Desired *int32 `json:"desiredReplicas"`
	Min     int32  `json:"minReplicas"`
	Max     int32  `json:"maxReplicas"`
	Online  int32  `json:"onlineReplicas"`
	Cutoff  int32  `json:"cutoffReplicas"`
	Standby int32  `json:"standbyReplicas"`
	// Gray is the gray change's progress in percent, nil when none is unfinished.
	Gray *int32 `json:"grayPercent"`
	// Stability is stable, paused, rolled back, or "" while no checker watches a change.
	Stability string `json:"stability"`
	// LastError is the ScalingActive condition's message when it is False for a failure.
	LastError string    `json:"lastError"`
	Created   time.Time `json:"created"`
}

// Summarize is the list page's view of an IHPA.
func Summarize(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) Summary {
	st := &ihpa.Status
	s := Summary{
		Namespace: ihpa.Namespace, Name: ihpa.Name,
		Target: ihpa.Spec.ScaleTargetRef.Kind + "/" + ihpa.Spec.ScaleTargetRef.Name,
		Mode:   string(ihpa.Spec.ScaleMode),
		Min:    ihpa.Spec.MinReplicas, Max: ihpa.Spec.MaxReplicas,
		Online: st.OnlineReplicas, Cutoff: st.CutoffReplicas, Standby: st.StandbyReplicas,
		Created: ihpa.CreationTimestamp.Time,
	}
	if s.Mode == "" {
		s.Mode = string(v1alpha1.ScaleModeAuto)
	}
	if ihpa.Spec.Paused {
		s.Mode = "Paused"
	}
	if v := st.CurrentPortraitValue; v != nil {
		s.Source = v.Provider
		s.Portrait = &v.Replicas
		d, _ := gray.Cap(v.Replicas, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
		s.Desired = &d
	}
	if st.Gray != nil {
		p := st.Gray.GrayPercent
		s.Gray = &p
	}
	s.Stability = stabilityOf(st.Conditions)
	if c := meta.FindStatusCondition(st.Conditions, string(v1alpha1.ScalingActive)); c != nil && c.Status == metav1.ConditionFalse && c.Reason != "ScalingPaused" {
		s.LastError = c.Reason + ": " + c.Message
	}
	return s
}

func stabilityOf(conds []metav1.Condition) string {
	c := meta.FindStatusCondition(conds, conditionStable)
	switch {
	case c == nil:
		return ""
	case c.Status == metav1.ConditionTrue:
		return "stable"
	case c.Reason == "AnomalyRolledBack":
		return "rolled back"
	default:
		return "paused"
	}
}

// ProviderView is one portrait provider on the detail page.
type ProviderView struct {
	Index    int    `json:"index"`
	ID       string `json:"provider"`
	Priority int32  `json:"priority"`
	// Replicas is what it offers now; nil when nothing (outside its windows, expired, no data).
	Replicas *int32 `json:"replicas"`
	Reason   string `json:"reason"`
	Selected bool   `json:"selected"`
	// Portrait is the HorizontalPortrait of a Dynamic provider, with its PortraitGenerated condition.
	Portrait        string `json:"portrait,omitempty"`
	PortraitStatus  string `json:"portraitStatus,omitempty"`
	PortraitMessage string `json:"portraitMessage,omitempty"`
	Expires         string `json:"expires,omitempty"`
}

// GrayView is the gray change in progress.
type GrayView struct {
	InProgress bool   `json:"inProgress"`
	Percent    int32  `json:"percent"`
	LastUpdate string `json:"lastUpdate,omitempty"`
	// From and To are the online replicas the change started from and aims for.
	From int32 `json:"from"`
	To   int32 `json:"to"`
	// Strategy describes the gray strategy of the change's direction; "" when it has none.
	Strategy     string `json:"strategy"`
	Batches      int32  `json:"batches"`
	BatchesDone  int32  `json:"batchesDone"`
	ProfileSpec  string `json:"profileSpec"`
	ProfileState string `json:"profileStatus"`
}

// PodView is one pod of the workload.
type PodView struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	Ready        bool   `json:"ready"`
	Phase        string `json:"phase"`
	Node         string `json:"node"`
	Age          string `json:"age"`
	DeletionCost string `json:"deletionCost,omitempty"`
}

// ConditionView is a status condition.
type ConditionView struct {
	Type, Status, Reason, Message, Since string
}

// EventView is an event of the IHPA.
type EventView struct {
	Type, Reason, Message, Age string
	Count                      int32
}

// Detail is the detail page of one IHPA.
type Detail struct {
	Summary
	Now           time.Time       `json:"now"`
	Merged        string          `json:"merged"`
	Providers     []ProviderView  `json:"providers"`
	Gray          GrayView        `json:"gray"`
	Pods          []PodView       `json:"pods"`
	PodCounts     map[string]int  `json:"podCounts"`
	WorkloadLine  string          `json:"workload"`
	Checkers      []string        `json:"stabilityCheckers"`
	Conditions    []ConditionView `json:"conditions"`
	Events        []EventView     `json:"events"`
	ReplicaSeries []Series        `json:"replicaSeries"`
	ReplicaFrom   time.Time       `json:"replicaFrom"`
	ReplicaTo     time.Time       `json:"replicaTo"`
	Traffic       *Traffic        `json:"traffic,omitempty"`
	// Forecast is the traffic forecast of the predictive portrait's last job run, when its
	// result holds one (also drawn in Traffic).
	Forecast       *Forecast `json:"forecast,omitempty"`
	Errors         map[string]string
	ForecastNotice string `json:"forecastNotice"`
}

// Traffic is the traffic history of a predictive portrait's traffic metric, and its forecast.
type Traffic struct {
	Metric string   `json:"metric"`
	Series []Series `json:"series"`
	From   time.Time
	To     time.Time
}

// Timeline spans of the replica chart: the past measured, the future the spec and portraits say.
const (
	timelinePast   = 2 * time.Hour
	timelineFuture = 2 * time.Hour
	timelineStep   = time.Minute
)

// BuildDetail assembles the detail page from the objects read as the user. actual is the pods
// measured over the past of the timeline (nil when history is unavailable).
func BuildDetail(o *Objects, now time.Time, actual *Series) Detail {
	ihpa := o.IHPA.DeepCopy()
	ihpa.Spec.Default()
	d := Detail{Summary: Summarize(ihpa), Now: now, Errors: o.Errors, PodCounts: map[string]int{}}
	d.Providers, d.Merged = providersNow(ihpa, o.Portraits, now)
	d.Gray = grayOf(ihpa, o.Profile)
	d.Pods, d.PodCounts = podsOf(o.Pods, now)
	if w := o.Workload; w != nil {
		d.WorkloadLine = fmt.Sprintf("%s/%s: %d replicas wanted, %d pods, %d ready", w.Kind, w.Name, w.SpecReplicas, w.Replicas, w.ReadyPods)
	}
	d.Checkers = checkersOf(ihpa)
	for _, c := range ihpa.Status.Conditions {
		d.Conditions = append(d.Conditions, ConditionView{c.Type, string(c.Status), c.Reason, c.Message, age(c.LastTransitionTime.Time, now)})
	}
	for _, e := range o.Events {
		d.Events = append(d.Events, EventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Age: age(eventTime(e).Time, now), Count: max(e.Count, 1)})
	}
	d.ReplicaFrom, d.ReplicaTo = now.Add(-timelinePast), now.Add(timelineFuture)
	d.ReplicaSeries = timeline(ihpa, o.Portraits, d.ReplicaFrom, d.ReplicaTo, timelineStep)
	if actual != nil {
		d.ReplicaSeries = append(d.ReplicaSeries, *actual)
	}
	d.ForecastNotice = forecastNotice(ihpa)
	return d
}

// providersNow evaluates every provider at now and merges them as the controller does.
func providersNow(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, portraits map[string]*v1alpha1.HorizontalPortrait, now time.Time) ([]ProviderView, string) {
	var views []ProviderView
	var candidates []portrait.Candidate
	for i := range ihpa.Spec.PortraitProviders {
		p := &ihpa.Spec.PortraitProviders[i]
		v := ProviderView{Index: i, Priority: p.Priority}
		v.ID, _ = portrait.ProviderID(p)
		hp := portraitOf(ihpa, p, portraits)
		if hp != nil {
			v.Portrait = hp.Name
			if c := meta.FindStatusCondition(hp.Status.Conditions, string(v1alpha1.PortraitGenerated)); c != nil {
				v.PortraitStatus, v.PortraitMessage = string(c.Status), c.Reason+": "+c.Message
			}
		} else if p.Type == v1alpha1.DynamicHorizontalPortraitProviderType {
			v.PortraitStatus = "missing"
		}
		ev, err := portrait.Evaluate(p, dataOf(hp), now)
		if err != nil {
			v.Reason = err.Error()
		} else {
			v.Reason = ev.Reason
			if ev.Value != nil {
				r := ev.Value.Replicas
				v.Replicas = &r
				if t := ev.Value.ExpireTime; t != nil && !t.IsZero() {
					v.Expires = t.UTC().Format(time.RFC3339)
					if !now.Before(t.Time) {
						v.Reason += " (expired)"
					}
				}
			}
		}
		views = append(views, v)
		candidates = append(candidates, portrait.Candidate{Priority: p.Priority, Evaluation: ev})
	}
	m := portrait.Merge(candidates, now)
	if m.Index >= 0 {
		views[m.Index].Selected = true
	}
	return views, m.Message
}

func portraitOf(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, p *v1alpha1.HorizontalPortraitProvider, portraits map[string]*v1alpha1.HorizontalPortrait) *v1alpha1.HorizontalPortrait {
	if p.Type != v1alpha1.DynamicHorizontalPortraitProviderType || p.Dynamic == nil {
		return nil
	}
	return portraits[ihpa.Name+"-"+strings.ToLower(string(p.Dynamic.PortraitType))]
}

func dataOf(hp *v1alpha1.HorizontalPortrait) *v1alpha1.HorizontalPortraitData {
	if hp == nil {
		return nil
	}
	return hp.Status.PortraitData
}

// timeline evaluates every provider and the merge over [from, to] with the current spec and
// portrait data: what the autoscaler would pick at each instant.
func timeline(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, portraits map[string]*v1alpha1.HorizontalPortrait, from, to time.Time, step time.Duration) []Series {
	providers := ihpa.Spec.PortraitProviders
	if len(providers) > maxProvidersCharted {
		providers = providers[:maxProvidersCharted]
	}
	out := make([]Series, len(providers)+1)
	for i := range providers {
		id, _ := portrait.ProviderID(&providers[i])
		out[i] = Series{Name: fmt.Sprintf("%d %s", i, id), Class: "s" + strconv.Itoa(i%6), Steps: true}
	}
	merged := &out[len(providers)]
	*merged = Series{Name: "merged result", Class: "merged", Steps: true}
	for t := from; !t.After(to); t = t.Add(step) {
		candidates := make([]portrait.Candidate, len(providers))
		for i := range providers {
			p := &providers[i]
			ev, err := portrait.Evaluate(p, dataOf(portraitOf(ihpa, p, portraits)), t)
			v := math.NaN()
			if err == nil && ev.Value != nil && (ev.Value.ExpireTime == nil || ev.Value.ExpireTime.IsZero() || t.Before(ev.Value.ExpireTime.Time)) {
				v = float64(ev.Value.Replicas)
			}
			out[i].Points = append(out[i].Points, Point{T: t, V: v})
			candidates[i] = portrait.Candidate{Priority: p.Priority, Evaluation: ev}
		}
		v := math.NaN()
		if m := portrait.Merge(candidates, t); m.Value != nil {
			d, _ := gray.Cap(m.Value.Replicas, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
			v = float64(d)
		}
		merged.Points = append(merged.Points, Point{T: t, V: v})
	}
	return out
}

func grayOf(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler, rp *v1alpha1.ReplicaProfile) GrayView {
	st := &ihpa.Status
	g := GrayView{}
	if rp != nil {
		g.ProfileSpec = fmt.Sprintf("online %d, cutoff %d, standby %d", rp.Spec.OnlineReplicas, rp.Spec.CutoffReplicas, rp.Spec.StandbyReplicas)
		g.ProfileState = fmt.Sprintf("online %d, cutoff %d, standby %d", rp.Status.OnlineReplicas, rp.Status.CutoffReplicas, rp.Status.StandbyReplicas)
	}
	if st.CurrentPortraitValue != nil {
		g.To, _ = gray.Cap(st.CurrentPortraitValue.Replicas, ihpa.Spec.MinReplicas, ihpa.Spec.MaxReplicas)
	}
	if st.PreviousPortraitValue != nil {
		g.From = st.PreviousPortraitValue.Replicas
	}
	var s *v1alpha1.GrayStrategy
	switch {
	case g.To < g.From && ihpa.Spec.Behavior.ScaleDown.GrayStrategy != nil:
		s = ihpa.Spec.Behavior.ScaleDown.GrayStrategy
	case g.To > g.From && ihpa.Spec.Behavior.ScaleUp.GrayStrategy != nil:
		s = ihpa.Spec.Behavior.ScaleUp.GrayStrategy
	}
	if s != nil && s.ChangePercent > 0 {
		g.Strategy = fmt.Sprintf("%s, %d%% every %ds, %ds observation", s.GrayState, s.ChangePercent, s.ChangeIntervalSeconds, s.ObservationSeconds)
		g.Batches = (100 + s.ChangePercent - 1) / s.ChangePercent
	}
	if st.Gray != nil {
		g.InProgress = true
		g.Percent = st.Gray.GrayPercent
		g.LastUpdate = st.Gray.LastUpdateTime.UTC().Format(time.RFC3339)
		if s != nil && s.ChangePercent > 0 {
			g.BatchesDone = min(g.Batches, (st.Gray.GrayPercent+s.ChangePercent-1)/s.ChangePercent)
		}
	}
	return g
}

func podsOf(pods []corev1.Pod, now time.Time) ([]PodView, map[string]int) {
	counts := map[string]int{}
	var out []PodView
	for i := range pods {
		p := &pods[i]
		state := string(podstate.StateOf(p))
		if !p.DeletionTimestamp.IsZero() {
			state = "Terminating"
		}
		counts[state]++
		v := PodView{Name: p.Name, State: state, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, Age: age(p.CreationTimestamp.Time, now),
			DeletionCost: p.Annotations["controller.kubernetes.io/pod-deletion-cost"]}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				v.Ready = c.Status == corev1.ConditionTrue
			}
		}
		out = append(out, v)
	}
	return out, counts
}

func checkersOf(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) []string {
	var out []string
	describe := func(where string, cs []v1alpha1.StabilityChecker) {
		for _, c := range cs {
			s := fmt.Sprintf("%s: %s checker, action %s, cool-down %ds", where, c.Type, c.StabilizationAction, c.CoolDownSeconds)
			if c.Metrics != nil {
				s += fmt.Sprintf(", %d metric rule(s)", len(c.Metrics.Metrics))
			}
			out = append(out, s)
		}
	}
	describe("autoscaler", ihpa.Spec.StabilityCheckers)
	if g := ihpa.Spec.Behavior.ScaleUp.GrayStrategy; g != nil {
		describe("scale-up gray strategy", g.StabilityCheckers)
	}
	if g := ihpa.Spec.Behavior.ScaleDown.GrayStrategy; g != nil {
		describe("scale-down gray strategy", g.StabilityCheckers)
	}
	return out
}

// forecastNotice says what the console shows of the forecast before its result is read (the
// detail handler replaces it with what the result holds: Forecast.note).
func forecastNotice(ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) string {
	for _, p := range ihpa.Spec.PortraitProviders {
		if p.Type == v1alpha1.DynamicHorizontalPortraitProviderType && p.Dynamic != nil && p.Dynamic.PortraitType == v1alpha1.PredictivePortraitType {
			return "The predictive portrait's replicas (the chart's Dynamic-Predictive line right of \"now\") are the forecast as the job " +
				"turned it into pods. The traffic forecast is drawn on the traffic chart once the portrait exists and its algorithm " +
				"job's result holds it."
		}
	}
	return ""
}

// age formats how long ago t was, as kubectl does (s, m, h, d).
func age(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + age(now, t)
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	default:
		return strconv.Itoa(int(d.Hours()/24)) + "d"
	}
}
