// Package v1alpha1 is the wire format of the history API (history.metrics.kapacitystack.io/v1alpha1):
// the seven query kinds of Kapacity's metric ProviderService, how they map to URLs, and the JSON
// answer. It depends on nothing but apimachinery, so clients can import it cheaply.
//
// URL shape (served by the adapter, reached through kube-apiserver):
//
//	/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/{namespace}/{resource}/{name}?{params}
//	/apis/history.metrics.kapacitystack.io/v1alpha1/namespaces/{namespace}/{resource}?labelSelector=...
//	/apis/history.metrics.kapacitystack.io/v1alpha1/{objects|externalmetrics}/{name}   (cluster scope)
//
// Each query kind is one resource, so RBAC grants them separately per namespace: `get` reads one
// named pod, workload, object or metric, `list` reads the pods or objects matching labelSelector.
// Without start the answer is the latest value (an instant query at now); with start (and end,
// step) it is the range.
package v1alpha1

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName and Version of the history API.
const (
	GroupName = "history.metrics.kapacitystack.io"
	Version   = "v1alpha1"
)

// SchemeGroupVersion is the API's group and version.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Kind is one of the seven query kinds of Kapacity's ProviderService.
type Kind string

const (
	PodResource               Kind = "PodResource"
	ContainerResource         Kind = "ContainerResource"
	WorkloadResource          Kind = "WorkloadResource"
	WorkloadContainerResource Kind = "WorkloadContainerResource"
	Object                    Kind = "Object"
	External                  Kind = "External"
	WorkloadExternal          Kind = "WorkloadExternal"
)

// Kinds lists every query kind.
var Kinds = []Kind{PodResource, ContainerResource, WorkloadResource, WorkloadContainerResource, Object, External, WorkloadExternal}

// resources maps each kind to its API resource; RBAC rules name these.
var resources = map[Kind]string{
	PodResource:               "podresources",
	ContainerResource:         "containerresources",
	WorkloadResource:          "workloadresources",
	WorkloadContainerResource: "workloadcontainerresources",
	Object:                    "objects",
	External:                  "externalmetrics",
	WorkloadExternal:          "workloadexternalmetrics",
}

// Resource returns the API resource serving kind ("" for an unknown kind).
func (k Kind) Resource() string { return resources[k] }

// KindForResource returns the query kind an API resource serves.
func KindForResource(resource string) (Kind, bool) {
	for k, r := range resources {
		if r == resource {
			return k, true
		}
	}
	return "", false
}

// ClusterScoped reports whether the kind may be asked for without a namespace (objects of
// cluster-scoped kinds, and external metrics of rules with namespaced: false).
func (k Kind) ClusterScoped() bool { return k == Object || k == External }

// Query is one history query. Which fields matter depends on Kind:
//
//   - PodResource: Namespace, Name or Selector, Resource.
//   - ContainerResource: as PodResource, plus Container.
//   - WorkloadResource: Workload, Namespace, Name, Resource, ReadyPodsOnly.
//   - WorkloadContainerResource: as WorkloadResource, plus Container.
//   - Object: Workload (the object's kind), Namespace (empty for cluster-scoped kinds), Name or
//     Selector, Metric, MetricSelector.
//   - External: Namespace (optional), Metric, MetricSelector.
//   - WorkloadExternal: Workload, Namespace, Name, Metric, MetricSelector.
type Query struct {
	Kind Kind `json:"kind"`
	// Namespace of the pods, workload or object.
	Namespace string `json:"namespace,omitempty"`
	// Name of the pod, workload or object; empty with Selector for pods and objects.
	Name string `json:"name,omitempty"`
	// Selector is a label selector over pods or objects, used when Name is empty; empty means all.
	Selector string `json:"selector,omitempty"`
	// Resource is cpu or memory for the resource kinds.
	Resource string `json:"resource,omitempty"`
	// Container restricts resource usage to one container.
	Container string `json:"container,omitempty"`
	// Workload is the kind of the workload (e.g. Deployment.apps) or, for Object, of the object.
	Workload schema.GroupKind `json:"workload,omitempty"`
	// ReadyPodsOnly counts only ready pods (the config's readyPodsOnlyContainerQuery).
	ReadyPodsOnly bool `json:"readyPodsOnly,omitempty"`
	// Metric is the custom (Object) or external metric name.
	Metric string `json:"metric,omitempty"`
	// MetricSelector restricts the metric's series by their labels (label-selector syntax).
	MetricSelector string `json:"metricSelector,omitempty"`
}

// Range is the span and resolution of a range query; both ends are included.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// Points is the number of points one series of the range has (0 when the range is invalid).
func (r Range) Points() int64 {
	if r.Step <= 0 || r.End.Before(r.Start) {
		return 0
	}
	return int64(r.End.Sub(r.Start)/r.Step) + 1
}

// SeriesList is the answer to a query.
type SeriesList struct {
	metav1.TypeMeta `json:",inline"`
	// Series are ordered by their labels.
	Series []Series `json:"series"`
}

// SeriesListKind is the kind of a SeriesList in JSON.
const SeriesListKind = "SeriesList"

// Series is one Prometheus series of the answer.
type Series struct {
	// Labels are the series' Prometheus labels.
	Labels map[string]string `json:"labels"`
	// Points are in time order; a latest query has one.
	Points []Point `json:"points"`
	// Window is the measurement window of resource usage (resourceRules.window), absent for
	// other kinds.
	Window *metav1.Duration `json:"window,omitempty"`
}

// Point is one sample.
type Point struct {
	// Timestamp is in milliseconds since the Unix epoch, as Prometheus reports it.
	Timestamp int64 `json:"timestamp"`
	Value     Value `json:"value"`
}

// Value is a sample value. It is a JSON number, or the string "NaN", "+Inf" or "-Inf", which JSON
// numbers cannot express.
type Value float64

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil), nil }

// AppendJSON appends v's JSON to dst, as MarshalJSON writes it.
func (v Value) AppendJSON(dst []byte) []byte {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *Value) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("sample value %q: %w", s, err)
		}
		*v = Value(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*v = Value(f)
	return nil
}

// Query parameters.
const (
	ParamStart          = "start"
	ParamEnd            = "end"
	ParamStep           = "step"
	ParamResource       = "resource"
	ParamContainer      = "container"
	ParamKind           = "kind"
	ParamReadyPodsOnly  = "readyPodsOnly"
	ParamMetric         = "metric"
	ParamMetricSelector = "metricSelector"
	ParamLabelSelector  = "labelSelector"
)

// Path returns the URL path of q, below /apis.
func (q Query) Path() (string, error) {
	resource := q.Kind.Resource()
	if resource == "" {
		return "", fmt.Errorf("unknown query kind %q", q.Kind)
	}
	name := q.Name
	if q.Kind == External {
		name = q.Metric
	}
	p := "/apis/" + GroupName + "/" + Version
	if q.Namespace != "" {
		p += "/namespaces/" + url.PathEscape(q.Namespace)
	}
	p += "/" + resource
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p, nil
}

// Params returns the query parameters of q and, when r is not nil, of the range.
func (q Query) Params(r *Range) url.Values {
	v := url.Values{}
	set := func(key, value string) {
		if value != "" {
			v.Set(key, value)
		}
	}
	set(ParamResource, q.Resource)
	set(ParamContainer, q.Container)
	if !q.Workload.Empty() {
		set(ParamKind, q.Workload.String())
	}
	if q.ReadyPodsOnly {
		set(ParamReadyPodsOnly, "true")
	}
	if q.Kind != External {
		set(ParamMetric, q.Metric)
	}
	set(ParamMetricSelector, q.MetricSelector)
	if q.Name == "" {
		set(ParamLabelSelector, q.Selector)
	}
	if r != nil {
		set(ParamStart, r.Start.UTC().Format(time.RFC3339Nano))
		set(ParamEnd, r.End.UTC().Format(time.RFC3339Nano))
		set(ParamStep, r.Step.String())
	}
	return v
}

// ParseRequest reads a query from the parts of a request URL: the resource and name of the path,
// the namespace ("" for cluster scope) and the parameters. The range is nil for a latest query;
// now is the default end. Errors say which parameter is wrong.
func ParseRequest(namespace, resource, name string, params url.Values, now time.Time) (Query, *Range, error) {
	kind, ok := KindForResource(resource)
	if !ok {
		return Query{}, nil, fmt.Errorf("unknown resource %q", resource)
	}
	q := Query{
		Kind: kind, Namespace: namespace,
		Resource: params.Get(ParamResource), Container: params.Get(ParamContainer),
		Metric: params.Get(ParamMetric), MetricSelector: params.Get(ParamMetricSelector),
	}
	if kind == External {
		q.Metric = name
	} else {
		q.Name = name
	}
	if name == "" {
		q.Selector = params.Get(ParamLabelSelector)
	}
	if k := params.Get(ParamKind); k != "" {
		q.Workload = schema.ParseGroupKind(k)
	}
	if s := params.Get(ParamReadyPodsOnly); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Query{}, nil, fmt.Errorf("%s=%q: want true or false", ParamReadyPodsOnly, s)
		}
		q.ReadyPodsOnly = b
	}
	if params.Get(ParamStart) == "" {
		for _, p := range []string{ParamEnd, ParamStep} {
			if params.Get(p) != "" {
				return Query{}, nil, fmt.Errorf("%s is given without %s", p, ParamStart)
			}
		}
		return q, nil, nil
	}
	r := &Range{End: now}
	var err error
	if r.Start, err = ParseTime(params.Get(ParamStart)); err != nil {
		return Query{}, nil, fmt.Errorf("%s: %w", ParamStart, err)
	}
	if s := params.Get(ParamEnd); s != "" {
		if r.End, err = ParseTime(s); err != nil {
			return Query{}, nil, fmt.Errorf("%s: %w", ParamEnd, err)
		}
	}
	s := params.Get(ParamStep)
	if s == "" {
		return Query{}, nil, fmt.Errorf("%s is required with %s", ParamStep, ParamStart)
	}
	if r.Step, err = ParseDuration(s); err != nil {
		return Query{}, nil, fmt.Errorf("%s: %w", ParamStep, err)
	}
	return q, r, nil
}

// Times and durations a request may give. Times are limited to the years RFC 3339 can write
// (0001–9999), so every parsed time round-trips and differences of times stay meaningful.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// ParseTime reads RFC 3339 or Unix seconds (with a fraction), as Prometheus' API does. Times
// outside the years 0001–9999, NaN and infinities are errors.
func ParseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		// Compared as floats first: converting an out-of-range float to int64 is undefined.
		if math.IsNaN(f) || f < float64(minTime.Unix()) || f >= float64(maxTime.Unix()+1) {
			return time.Time{}, fmt.Errorf("%q is not a Unix time between years 0001 and 9999", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	return t, nil
}

// ValidTime reports whether t lies in the years ParseTime accepts.
func ValidTime(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

// maxDurationSeconds is the longest duration, in whole seconds, a time.Duration holds.
const maxDurationSeconds = math.MaxInt64 / int64(time.Second)

// ParseDuration reads a Go duration ("1m", "30s") or seconds ("60", "0.5"). Durations a
// time.Duration cannot hold (about 292 years), NaN and infinities are errors.
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.Abs(f) > float64(maxDurationSeconds) {
			return 0, fmt.Errorf("%q seconds is not a duration of at most %d seconds", s, maxDurationSeconds)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration (1m, 30s) nor seconds", s)
	}
	return d, nil
}
