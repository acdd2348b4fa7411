// Package portrait evaluates an IntelligentHorizontalPodAutoscaler's portrait providers at an instant
// and merges their values by priority.
//
// Everything here is a pure function of the spec, the portrait data and the time, so a controller
// can requeue at Result.NextChange instead of keeping cron tasks and timers in memory (Kapacity's
// in-memory triggers kept firing after an autoscaler was deleted and were lost on restart).
package portrait

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// Provider identifiers, as written to HorizontalPortraitValue.Provider.
const (
	StaticProviderID      = "Static"
	CronProviderID        = "Cron"
	DynamicProviderPrefix = "Dynamic-"
)

// Reasons for conditions and events.
const (
	// ReasonPortraitValueSelected means a provider's value was chosen.
	ReasonPortraitValueSelected = "PortraitValueSelected"
	// ReasonNoValidPortraitValue means no provider has an unexpired value now. Kapacity's controller
	// then leaves the ReplicaProfile alone, so the workload keeps its last replicas.
	ReasonNoValidPortraitValue = "NoValidPortraitValue"
)

// ProviderID is the identifier of a provider's values: "Static", "Cron" or "Dynamic-<portraitType>".
func ProviderID(p *v1alpha1.HorizontalPortraitProvider) (string, error) {
	switch p.Type {
	case v1alpha1.StaticHorizontalPortraitProviderType:
		return StaticProviderID, nil
	case v1alpha1.CronHorizontalPortraitProviderType:
		return CronProviderID, nil
	case v1alpha1.DynamicHorizontalPortraitProviderType:
		if p.Dynamic == nil {
			return "", fmt.Errorf("provider of type %s has no dynamic block", p.Type)
		}
		return DynamicProviderPrefix + string(p.Dynamic.PortraitType), nil
	default:
		return "", fmt.Errorf("unknown portrait provider type %q", p.Type)
	}
}

// DynamicPortraitType returns the portrait type encoded in a dynamic provider's identifier. Kapacity
// split the identifier on "-" and kept the second field, which truncated portrait types that contain
// a dash; only the prefix is removed here.
func DynamicPortraitType(id string) (v1alpha1.PortraitType, bool) {
	t, ok := strings.CutPrefix(id, DynamicProviderPrefix)
	if !ok || t == "" {
		return "", false
	}
	return v1alpha1.PortraitType(t), true
}

// Evaluation is what one provider offers at an instant.
type Evaluation struct {
	// Value is the provider's value, or nil when it has none now.
	Value *v1alpha1.HorizontalPortraitValue
	// NextChange is the earliest instant after which the evaluation may differ; zero when it can
	// only change through a spec or data change.
	NextChange time.Time
	// Reason explains the evaluation in words, for logs and condition messages.
	Reason string
}

// Evaluate evaluates a provider at now. dynamicData is the status.portraitData of the
// HorizontalPortrait that a Dynamic provider owns (nil while nothing has been generated); Static and
// Cron providers ignore it.
func Evaluate(p *v1alpha1.HorizontalPortraitProvider, dynamicData *v1alpha1.HorizontalPortraitData, now time.Time) (Evaluation, error) {
	id, err := ProviderID(p)
	if err != nil {
		return Evaluation{}, err
	}
	switch p.Type {
	case v1alpha1.StaticHorizontalPortraitProviderType:
		if p.Static == nil {
			return Evaluation{}, fmt.Errorf("provider %s has no static block", id)
		}
		return EvaluateStatic(p.Static), nil
	case v1alpha1.CronHorizontalPortraitProviderType:
		if p.Cron == nil {
			return Evaluation{}, fmt.Errorf("provider %s has no cron block", id)
		}
		ev, err := EvaluateCron(id, p.Cron.Crons, now)
		if err != nil {
			return Evaluation{}, fmt.Errorf("provider %s: %w", id, err)
		}
		return ev, nil
	default:
		ev, err := EvaluateData(id, dynamicData, now)
		if err != nil {
			return Evaluation{}, fmt.Errorf("provider %s: %w", id, err)
		}
		return ev, nil
	}
}

// EvaluateStatic returns the static value. Zero replicas is a value like any other: min/max capping
// decides what it means.
func EvaluateStatic(s *v1alpha1.StaticHorizontalPortraitProvider) Evaluation {
	return Evaluation{
		Value:  &v1alpha1.HorizontalPortraitValue{Provider: StaticProviderID, Replicas: s.Replicas},
		Reason: fmt.Sprintf("static value of %d replicas", s.Replicas),
	}
}

// EvaluateCron returns the replicas of the cron window open at now, which expire when it closes.
//
// Windows are evaluated with v1alpha1.CronWindow, the same rule validation uses. Validation rejects
// overlapping windows, but its check covers a bounded number of events, so overlaps can still reach
// here. Kapacity then failed the whole fetch, which also blocked every lower-priority fallback; here
// the overlap is settled like a tie between providers of equal priority: more replicas win, then the
// earlier rule, and the reason names both rules.
func EvaluateCron(provider string, crons []v1alpha1.ReplicaCron, now time.Time) (Evaluation, error) {
	var (
		chosen     *v1alpha1.ReplicaCron
		closes     time.Time
		nextChange time.Time
		overlaps   []string
	)
	for i := range crons {
		c := &crons[i]
		w, err := v1alpha1.ParseCronWindow(*c)
		if err != nil {
			return Evaluation{}, fmt.Errorf("cron %q: %w", c.Name, err)
		}
		local := now.In(w.Location)
		nextChange = earliest(nextChange, earliest(w.Start.Next(local), w.End.Next(local)))
		active, end := w.Active(now)
		if !active {
			continue
		}
		switch {
		case chosen == nil:
			chosen, closes = c, end
		case c.Replicas > chosen.Replicas:
			overlaps = append(overlaps, chosen.Name)
			chosen, closes = c, end
		default:
			overlaps = append(overlaps, c.Name)
		}
	}
	ev := Evaluation{NextChange: nextChange}
	if chosen == nil {
		ev.Reason = "no cron window is open"
		return ev, nil
	}
	ev.Value = &v1alpha1.HorizontalPortraitValue{
		Provider:   provider,
		Replicas:   chosen.Replicas,
		ExpireTime: timePtr(closes),
	}
	ev.Reason = fmt.Sprintf("cron %q is open until %s", chosen.Name, closes.UTC().Format(time.RFC3339))
	if len(overlaps) > 0 {
		ev.Reason += fmt.Sprintf("; it overlaps cron %s, which give fewer or as many replicas", quoteAll(overlaps))
	}
	return ev, nil
}

// EvaluateData returns the value of a HorizontalPortrait's data at now, as Kapacity's Dynamic
// provider does: nothing before the data exists, after it expires, before the first time-series
// point, or when the value is zero replicas (a generator's way of saying it has no opinion).
func EvaluateData(provider string, data *v1alpha1.HorizontalPortraitData, now time.Time) (Evaluation, error) {
	if data == nil {
		return Evaluation{Reason: "the portrait has no data yet"}, nil
	}
	var dataExpire time.Time
	if data.ExpireTime != nil {
		dataExpire = data.ExpireTime.Time
	}
	if !dataExpire.IsZero() && !now.Before(dataExpire) {
		return Evaluation{Reason: fmt.Sprintf("the portrait data expired at %s", dataExpire.UTC().Format(time.RFC3339))}, nil
	}

	var (
		replicas int32
		expire   time.Time
		ev       Evaluation
	)
	switch data.Type {
	case v1alpha1.StaticHorizontalPortraitDataType:
		if data.Static == nil {
			return Evaluation{}, fmt.Errorf("portrait data of type %s has no static block", data.Type)
		}
		replicas = data.Static.Replicas
		ev.Reason = fmt.Sprintf("static portrait of %d replicas", replicas)
	case v1alpha1.CronHorizontalPortraitDataType:
		if data.Cron == nil {
			return Evaluation{}, fmt.Errorf("portrait data of type %s has no cron block", data.Type)
		}
		cronEv, err := EvaluateCron(provider, data.Cron.Crons, now)
		if err != nil {
			return Evaluation{}, fmt.Errorf("cron portrait: %w", err)
		}
		ev.NextChange, ev.Reason = cronEv.NextChange, cronEv.Reason
		if cronEv.Value == nil {
			ev.NextChange = earliest(ev.NextChange, dataExpire)
			return ev, nil
		}
		replicas, expire = cronEv.Value.Replicas, cronEv.Value.ExpireTime.Time
	case v1alpha1.TimeSeriesHorizontalPortraitDataType:
		if data.TimeSeries == nil || len(data.TimeSeries.TimeSeries) == 0 {
			return Evaluation{}, fmt.Errorf("portrait data of type %s has no points", data.Type)
		}
		points := data.TimeSeries.TimeSeries
		i := latestPointAt(points, now)
		if i < 0 {
			first := time.Unix(points[0].Timestamp, 0)
			ev.NextChange = earliest(first, dataExpire)
			ev.Reason = fmt.Sprintf("the first time-series point takes effect at %s", first.UTC().Format(time.RFC3339))
			return ev, nil
		}
		replicas = points[i].Replicas
		if i+1 < len(points) {
			expire = time.Unix(points[i+1].Timestamp, 0)
		}
		ev.Reason = fmt.Sprintf("time-series point of %s", time.Unix(points[i].Timestamp, 0).UTC().Format(time.RFC3339))
	default:
		return Evaluation{}, fmt.Errorf("unsupported portrait data type %q", data.Type)
	}

	expire = earliest(expire, dataExpire)
	ev.NextChange = earliest(ev.NextChange, expire)
	if replicas == 0 {
		ev.Reason += " gives 0 replicas, which counts as no value"
		return ev, nil
	}
	ev.Value = &v1alpha1.HorizontalPortraitValue{Provider: provider, Replicas: replicas, ExpireTime: timePtr(expire)}
	return ev, nil
}

// latestPointAt returns the index of the last point whose timestamp is at or before now, or -1.
// Points are in increasing time order (validation enforces it).
func latestPointAt(points []v1alpha1.ReplicaTimeSeriesPoint, now time.Time) int {
	sec := now.Unix()
	for i := len(points) - 1; i >= 0; i-- {
		if points[i].Timestamp <= sec {
			return i
		}
	}
	return -1
}

// Candidate is a provider's evaluation together with its priority.
type Candidate struct {
	Priority int32
	Evaluation
}

// Result is the outcome of a merge.
type Result struct {
	// Value is a copy of the winning value, or nil when there is none (ReasonNoValidPortraitValue).
	Value *v1alpha1.HorizontalPortraitValue
	// Index is the position of the winner among the candidates, or -1.
	Index int
	// Priority is the winner's priority.
	Priority int32
	// NextChange is the earliest instant at which the merge may give another result without any
	// spec or data change: a candidate's next change or a value's expiry. Zero means none.
	NextChange time.Time
	// Reason and Message are ready for a condition or an event.
	Reason, Message string
}

// Merge picks the value in effect at now, as Kapacity does: expired values are ignored; the higher
// priority wins; on equal priority the value with more replicas wins; on a full tie the earlier
// candidate (spec order) wins.
func Merge(candidates []Candidate, now time.Time) Result {
	res := Result{Index: -1}
	var ignored []string
	for i := range candidates {
		c := &candidates[i]
		res.NextChange = earliest(res.NextChange, c.NextChange)
		v := c.Value
		if v == nil {
			continue
		}
		if expire := expireTime(v); !expire.IsZero() {
			if !now.Before(expire) {
				ignored = append(ignored, fmt.Sprintf("%s (expired)", v.Provider))
				continue
			}
			res.NextChange = earliest(res.NextChange, expire)
		}
		if res.Index < 0 || c.Priority > res.Priority ||
			(c.Priority == res.Priority && v.Replicas > candidates[res.Index].Value.Replicas) {
			if res.Index >= 0 {
				ignored = append(ignored, describe(&candidates[res.Index]))
			}
			res.Index, res.Priority = i, c.Priority
			continue
		}
		ignored = append(ignored, describe(c))
	}
	if res.Index < 0 {
		res.Reason = ReasonNoValidPortraitValue
		res.Message = "no valid portrait value for now"
		if len(ignored) > 0 {
			res.Message += ": " + strings.Join(ignored, ", ")
		}
		return res
	}
	winner := &candidates[res.Index]
	res.Value = winner.Value.DeepCopy()
	res.Reason = ReasonPortraitValueSelected
	res.Message = "selected " + describe(winner)
	if len(ignored) > 0 {
		res.Message += " over " + strings.Join(ignored, ", ")
	}
	return res
}

func describe(c *Candidate) string {
	return fmt.Sprintf("%s (priority %d, %d replicas)", c.Value.Provider, c.Priority, c.Value.Replicas)
}

func expireTime(v *v1alpha1.HorizontalPortraitValue) time.Time {
	if v.ExpireTime == nil {
		return time.Time{}
	}
	return v.ExpireTime.Time
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	// UTC, because that is what a round trip through the API server gives back, so values compare
	// equal before and after being stored.
	mt := metav1.NewTime(t.UTC())
	return &mt
}

// earliest returns the earlier of two times; a zero time means "never" and loses.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	default:
		return a
	}
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
