// Package portraitresult is the contract of the `<portrait>-result` ConfigMap: what an algorithm
// job (`kapacity recommend`, or Kapacity's own algorithm image) writes beside a HorizontalPortrait,
// and what the manager, its Burst generator and the console read. One definition of the name, the
// label, the keys, their encodings and their bounds, so that the writer and the readers cannot
// drift apart.
//
// The data keys:
//
//   - type: "TimeSeries" (the only type).
//   - expireTime: optional, RFC 3339; written as ExpireTimeLayout (UTC, two fractional digits, the
//     reference's format). A zero time means "never expires", as no key does.
//   - timeSeries: a JSON object of integer Unix seconds to replicas, {"1698234600": 5, …}.
//   - trafficBand: optional, the traffic forecast (Band): {"quantile": 0.9, "metrics": {"<traffic
//     metric name>": {"<Unix seconds>": upper bound, …}}, "median": {"<traffic metric name>":
//     {"<Unix seconds>": median, …}}}. "median" is absent in results of older jobs.
//
// Bounds, enforced on both sides: at most MaxPoints points per series (a week of minutely points),
// timestamps integer Unix seconds from 0 to MaxUnixSeconds written without sign or leading zeros,
// replicas whole numbers ≥ 0, traffic values finite numbers ≥ 0, at most MaxMetrics metrics. Every
// decoding error is an *Error naming the key.
//
// The package is pure data (config/): no clients.
package portraitresult

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// The ConfigMap's name, label and keys.
const (
	// NameSuffix follows the portrait's name in the ConfigMap's name (ConfigMapName).
	NameSuffix = "-result"
	// LabelKey marks result ConfigMaps, with LabelValue. The manager caches and watches only
	// labelled ConfigMaps; a result without the label (written by an older or a third-party job)
	// is read directly from the API server.
	LabelKey   = "kapacitystack.io/portrait-result"
	LabelValue = "true"

	KeyType        = "type"
	KeyExpireTime  = "expireTime"
	KeyTimeSeries  = "timeSeries"
	KeyTrafficBand = "trafficBand"

	// TypeTimeSeries is the only result type.
	TypeTimeSeries = string(v1alpha1.TimeSeriesHorizontalPortraitDataType)
	// ExpireTimeLayout is how expireTime is written (the reference's format); any RFC 3339 time
	// is read.
	ExpireTimeLayout = "2006-01-02T15:04:05.00Z"
)

// Bounds of the data.
const (
	// MaxPoints bounds every series (replicas, each band): a week of minutely points, as a
	// portrait's own time series.
	MaxPoints = v1alpha1.MaxTimeSeriesPoints
	// MaxMetrics bounds the traffic metrics of a band, as a portrait's metrics.
	MaxMetrics = v1alpha1.MaxMetrics
	// MaxMetricNameLength bounds a traffic metric's name in a band.
	MaxMetricNameLength = v1alpha1.MaxNameLength
	// MaxUnixSeconds is the last second of year 9999, the last instant an RFC 3339 time (and so a
	// Kubernetes timestamp derived from a point) can hold.
	MaxUnixSeconds int64 = 253402300799
)

// ConfigMapName is the name of the result ConfigMap of the portrait named portrait, in the
// portrait's namespace.
func ConfigMapName(portrait string) string { return portrait + NameSuffix }

// PortraitName is the portrait a ConfigMap named name holds the result of; false when the name is
// not a result's.
func PortraitName(name string) (string, bool) {
	p, ok := strings.CutSuffix(name, NameSuffix)
	if !ok || p == "" {
		return "", false
	}
	return p, true
}

// Error is a key of a result that could not be read or written.
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

func keyErr(key, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// ErrNoBand is the error of DecodeBand when the result holds no trafficBand.
var ErrNoBand = errors.New("the result has no " + KeyTrafficBand + " (kapacity recommend --burst-band-quantile writes it)")

// Result is the data of a result ConfigMap.
type Result struct {
	// ExpireTime is when the result stops holding, in UTC; zero when it never expires.
	ExpireTime time.Time
	// Replicas are the replicas from each point's timestamp on, in time order.
	Replicas []v1alpha1.ReplicaTimeSeriesPoint
	// Band is the traffic forecast; nil when the job wrote none.
	Band *Band
}

// PortraitData is the result as a portrait's status.portraitData.
func (r *Result) PortraitData() *v1alpha1.HorizontalPortraitData {
	out := &v1alpha1.HorizontalPortraitData{
		Type:       v1alpha1.TimeSeriesHorizontalPortraitDataType,
		TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: slices.Clone(r.Replicas)},
	}
	if !r.ExpireTime.IsZero() {
		out.ExpireTime = &metav1.Time{Time: r.ExpireTime}
	}
	return out
}

// Encode is the ConfigMap data of r. It refuses what a reader would refuse (an *Error naming the
// key), so that a job never writes a result the manager cannot read. ExpireTime is written to the
// hundredth of a second (ExpireTimeLayout); every time to the second.
func Encode(r Result) (map[string]string, error) {
	data := map[string]string{KeyType: TypeTimeSeries}
	if !r.ExpireTime.IsZero() {
		t := r.ExpireTime.UTC()
		if t.Unix() < 0 || t.Unix() > MaxUnixSeconds {
			return nil, keyErr(KeyExpireTime, "%s is outside 1970 to 9999", t.Format(time.RFC3339))
		}
		data[KeyExpireTime] = t.Format(ExpireTimeLayout)
	}
	if err := checkReplicas(r.Replicas); err != nil {
		return nil, err
	}
	series := make(map[string]int32, len(r.Replicas))
	for _, p := range r.Replicas {
		series[strconv.FormatInt(p.Timestamp, 10)] = p.Replicas
	}
	b, err := json.Marshal(series)
	if err != nil {
		return nil, keyErr(KeyTimeSeries, "encoding: %w", err)
	}
	data[KeyTimeSeries] = string(b)
	if r.Band != nil {
		raw, err := encodeBand(r.Band)
		if err != nil {
			return nil, err
		}
		data[KeyTrafficBand] = raw
	}
	return data, nil
}

// checkReplicas holds replica points to the bounds a decoded result meets.
func checkReplicas(points []v1alpha1.ReplicaTimeSeriesPoint) error {
	if len(points) == 0 {
		return keyErr(KeyTimeSeries, "no point: want at least one")
	}
	if len(points) > MaxPoints {
		return keyErr(KeyTimeSeries, "%d points, more than the limit of %d (a week of minutely points)", len(points), MaxPoints)
	}
	for i, p := range points {
		if p.Timestamp < 0 || p.Timestamp > MaxUnixSeconds {
			return keyErr(KeyTimeSeries, "timestamp %d: want Unix seconds from 0 to %d", p.Timestamp, MaxUnixSeconds)
		}
		if p.Replicas < 0 {
			return keyErr(KeyTimeSeries, "replicas %d at %d: want a whole number ≥ 0", p.Replicas, p.Timestamp)
		}
		if i > 0 && p.Timestamp <= points[i-1].Timestamp {
			return keyErr(KeyTimeSeries, "point %d at %d is not after the previous point (%d): sort the points and merge duplicates",
				i, p.Timestamp, points[i-1].Timestamp)
		}
	}
	return nil
}

// Decode reads every key of a result: type, expireTime, timeSeries and, when present,
// trafficBand.
func Decode(data map[string]string) (*Result, error) {
	r, err := DecodeReplicas(data)
	if err != nil {
		return nil, err
	}
	if _, ok := data[KeyTrafficBand]; ok {
		if r.Band, err = DecodeBand(data); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// DecodeReplicas reads type, expireTime and timeSeries, leaving trafficBand alone: a portrait's
// replicas do not depend on it, so a broken band does not stop them.
func DecodeReplicas(data map[string]string) (*Result, error) {
	switch t, ok := data[KeyType]; {
	case !ok || t == "":
		return nil, keyErr(KeyType, "missing: a result says %q: %q", KeyType, TypeTimeSeries)
	case t != TypeTimeSeries:
		return nil, keyErr(KeyType, "%q is not supported: the only result type is %q", truncate(t), TypeTimeSeries)
	}
	expire, err := DecodeExpireTime(data)
	if err != nil {
		return nil, err
	}
	raw, ok := data[KeyTimeSeries]
	if !ok {
		return nil, keyErr(KeyTimeSeries, "missing: want a JSON object of integer Unix seconds to replicas")
	}
	var series map[string]int32
	if err := json.Unmarshal([]byte(raw), &series); err != nil {
		return nil, keyErr(KeyTimeSeries, "not a JSON object of integer Unix seconds to replicas: %w", err)
	}
	if len(series) == 0 {
		return nil, keyErr(KeyTimeSeries, "empty: want at least one point")
	}
	if len(series) > MaxPoints {
		return nil, keyErr(KeyTimeSeries, "%d points, more than the limit of %d (a week of minutely points)", len(series), MaxPoints)
	}
	points := make([]v1alpha1.ReplicaTimeSeriesPoint, 0, len(series))
	for k, v := range series {
		ts, err := parseUnix(k)
		if err != nil {
			return nil, &Error{Key: KeyTimeSeries, Err: err}
		}
		if v < 0 {
			return nil, keyErr(KeyTimeSeries, "replicas %d at %d: want a whole number ≥ 0", v, ts)
		}
		points = append(points, v1alpha1.ReplicaTimeSeriesPoint{Timestamp: ts, Replicas: v})
	}
	slices.SortFunc(points, func(a, b v1alpha1.ReplicaTimeSeriesPoint) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return &Result{ExpireTime: expire, Replicas: points}, nil
}

// DecodeExpireTime reads expireTime: the zero time when the key is absent, empty or the zero
// time ("never expires"), else a time from 1970 to 9999, in UTC.
func DecodeExpireTime(data map[string]string) (time.Time, error) {
	s := data[KeyExpireTime]
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, keyErr(KeyExpireTime, "%q is not an RFC 3339 time such as 2026-03-02T10:00:00Z", truncate(s))
	}
	if t.IsZero() {
		return time.Time{}, nil
	}
	t = t.UTC()
	if t.Unix() < 0 || t.Unix() > MaxUnixSeconds {
		return time.Time{}, keyErr(KeyExpireTime, "%s is outside 1970 to 9999", s)
	}
	return t, nil
}

// parseUnix reads a JSON object key as Unix seconds: digits only, no leading zero, from 0 to
// MaxUnixSeconds. "+5" and "05" would name the same second as "5" and are refused.
func parseUnix(s string) (int64, error) {
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ts < 0 || ts > MaxUnixSeconds || strconv.FormatInt(ts, 10) != s {
		return 0, fmt.Errorf("timestamp %q: want integer Unix seconds from 0 to %d, without sign or leading zeros", truncate(s), MaxUnixSeconds)
	}
	return ts, nil
}

// truncate shortens untrusted text quoted in an error.
func truncate(s string) string {
	const maxQuoted = 64
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// finite tells whether v is a traffic value a result may hold: a finite number ≥ 0.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
