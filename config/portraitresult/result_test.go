package portraitresult

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func series(from time.Time, step time.Duration, values ...float64) []Point {
	out := make([]Point, len(values))
	for i, v := range values {
		out[i] = Point{Time: from.Add(time.Duration(i) * step), Value: v}
	}
	return out
}

// TestRoundTrip: what the job encodes, the readers decode unchanged.
func TestRoundTrip(t *testing.T) {
	week := make([]v1alpha1.ReplicaTimeSeriesPoint, MaxPoints)
	for i := range week {
		week[i] = v1alpha1.ReplicaTimeSeriesPoint{Timestamp: t0.Unix() + int64(i)*60, Replicas: int32(i % 50)}
	}
	for _, tc := range []struct {
		name string
		in   Result
	}{
		{"replicas only, never expiring", Result{Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 0, Replicas: 0}}}},
		{"a week of minutely points", Result{ExpireTime: t0.Add(7 * 24 * time.Hour), Replicas: week}},
		{"band without median (an older job)", Result{ExpireTime: t0.Add(time.Hour), Replicas: week[:3],
			Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(t0, time.Hour, 1.5, 0, 1e12)}}}},
		{"band with median, two metrics", Result{ExpireTime: t0.Add(time.Hour + 250*time.Millisecond), Replicas: week[:2],
			Band: &Band{Quantile: 0.1, Upper: map[string][]Point{"qps": series(t0, time.Minute, 1, 2), "rps": series(t0, time.Hour, 3)},
				Median: map[string][]Point{"qps": series(t0, time.Minute, 0.5, 1.25)}}}},
		{"the last second of 9999", Result{ExpireTime: time.Unix(MaxUnixSeconds, 0).UTC(), Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: MaxUnixSeconds, Replicas: math.MaxInt32}},
			Band: &Band{Quantile: 0.5, Upper: map[string][]Point{"q": series(time.Unix(MaxUnixSeconds, 0).UTC(), time.Second, math.MaxFloat64)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("decoding %v: %v", data, err)
			}
			if !reflect.DeepEqual(*got, tc.in) {
				t.Errorf("round trip changed the result:\n got %+v\nwant %+v", *got, tc.in)
			}
			if pd := got.PortraitData(); pd.Type != v1alpha1.TimeSeriesHorizontalPortraitDataType || len(pd.TimeSeries.TimeSeries) != len(tc.in.Replicas) ||
				(pd.ExpireTime == nil) != tc.in.ExpireTime.IsZero() {
				t.Errorf("portrait data %+v", pd)
			}
		})
	}
}

// TestEncodeWritesTheReferenceFormat: the keys and encodings Kapacity's own readers expect.
func TestEncodeWritesTheReferenceFormat(t *testing.T) {
	data, err := Encode(Result{ExpireTime: t0.Add(10 * time.Minute), Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 1698234600, Replicas: 5}, {Timestamp: 1698235200, Replicas: 3}},
		Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(time.Unix(1698234600, 0), time.Hour, 50)}, Median: map[string][]Point{"qps": series(time.Unix(1698234600, 0), time.Hour, 40)}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"type": "TimeSeries", "expireTime": "2026-03-02T10:10:00.00Z", "timeSeries": `{"1698234600":5,"1698235200":3}`,
		"trafficBand": `{"quantile":0.9,"metrics":{"qps":{"1698234600":50}},"median":{"qps":{"1698234600":40}}}`,
	}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("data %v\nwant %v", data, want)
	}
	if ConfigMapName("web-predictive") != "web-predictive-result" {
		t.Errorf("name %q", ConfigMapName("web-predictive"))
	}
	for name, want := range map[string]string{"web-predictive-result": "web-predictive", "-result": "", "web": ""} {
		if got, ok := PortraitName(name); got != want || ok != (want != "") {
			t.Errorf("PortraitName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// TestDecodeReadsOlderWriters: Kapacity's Python job (two fractional digits, unsorted keys), a
// Go job writing a zero expireTime, and an older band without median.
func TestDecodeReadsOlderWriters(t *testing.T) {
	r, err := Decode(map[string]string{"type": "TimeSeries", "expireTime": "2023-10-25T12:10:00.00Z", "timeSeries": `{"1698235200": 3, "1698234600": 5}`,
		"trafficBand": `{"quantile": 0.9, "metrics": {"qps": {"1698235200": 2, "1698234600": 1}}, "comment": "unknown fields are ignored"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{ExpireTime: time.Date(2023, 10, 25, 12, 10, 0, 0, time.UTC),
		Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 1698234600, Replicas: 5}, {Timestamp: 1698235200, Replicas: 3}},
		Band:     &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": {{time.Unix(1698234600, 0).UTC(), 1}, {time.Unix(1698235200, 0).UTC(), 2}}}}}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("got %+v\nwant %+v", *r, want)
	}
	for _, never := range []string{"", "0001-01-01T00:00:00Z"} {
		r, err := Decode(map[string]string{"type": "TimeSeries", "expireTime": never, "timeSeries": `{"1": 1}`})
		if err != nil || !r.ExpireTime.IsZero() {
			t.Errorf("expireTime %q: %v, %v; want never", never, r, err)
		}
	}
	r, err = Decode(map[string]string{"type": "TimeSeries", "expireTime": "2026-03-02T11:00:00+01:00", "timeSeries": `{"1": 1}`})
	if err != nil || !r.ExpireTime.Equal(t0) || r.ExpireTime.Location() != time.UTC {
		t.Errorf("an offset expireTime: %v, %v; want %s in UTC", r, err, t0)
	}
}

// TestDecodeErrorsNameTheKey: every malformed input is refused with an error naming its key and
// what is wanted.
func TestDecodeErrorsNameTheKey(t *testing.T) {
	ok := func(kv ...string) map[string]string {
		m := map[string]string{"type": "TimeSeries", "timeSeries": `{"1": 1}`}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tooMany := func(key string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range MaxPoints + 1 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"%d":1`, i)
		}
		b.WriteString("}")
		if key == KeyTrafficBand {
			return `{"quantile":0.9,"metrics":{"qps":` + b.String() + `}}`
		}
		return b.String()
	}
	manyMetrics := func() string {
		var b strings.Builder
		b.WriteString(`{"quantile":0.9,"metrics":{`)
		for i := range MaxMetrics + 1 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"m%d":{"1":1}`, i)
		}
		return b.String() + "}}"
	}
	band := func(s string) map[string]string { return ok("trafficBand", s) }
	for _, tc := range []struct {
		name string
		data map[string]string
		key  string
		want string
	}{
		{"no type", map[string]string{"timeSeries": `{"1": 1}`}, KeyType, "missing"},
		{"unsupported type", ok("type", "Static"), KeyType, `"Static" is not supported`},
		{"expireTime not RFC 3339", ok("expireTime", "tomorrow"), KeyExpireTime, "not an RFC 3339 time"},
		{"expireTime before 1970", ok("expireTime", "1969-12-31T23:59:59Z"), KeyExpireTime, "outside 1970 to 9999"},
		{"expireTime of year 0 after UTC", ok("expireTime", "0000-01-01T00:30:00+01:00"), KeyExpireTime, "outside 1970 to 9999"},
		{"no timeSeries", map[string]string{"type": "TimeSeries"}, KeyTimeSeries, "missing"},
		{"timeSeries not an object", ok("timeSeries", `[1]`), KeyTimeSeries, "not a JSON object"},
		{"timeSeries empty", ok("timeSeries", `{}`), KeyTimeSeries, "empty"},
		{"timeSeries float key", ok("timeSeries", `{"1698231600.0": 1}`), KeyTimeSeries, "integer Unix seconds"},
		{"timeSeries negative key", ok("timeSeries", `{"-1": 1}`), KeyTimeSeries, "integer Unix seconds"},
		{"timeSeries leading zero", ok("timeSeries", `{"01": 1}`), KeyTimeSeries, "without sign or leading zeros"},
		{"timeSeries plus sign", ok("timeSeries", `{"+1": 1}`), KeyTimeSeries, "without sign or leading zeros"},
		{"timeSeries after 9999", ok("timeSeries", `{"253402300800": 1}`), KeyTimeSeries, "from 0 to 253402300799"},
		{"timeSeries key overflowing int64", ok("timeSeries", `{"99999999999999999999": 1}`), KeyTimeSeries, "integer Unix seconds"},
		{"negative replicas", ok("timeSeries", `{"1": -1}`), KeyTimeSeries, "≥ 0"},
		{"fractional replicas", ok("timeSeries", `{"1": 1.5}`), KeyTimeSeries, "not a JSON object"},
		{"replicas overflowing int32", ok("timeSeries", `{"1": 2147483648}`), KeyTimeSeries, "not a JSON object"},
		{"more than a week of points", ok("timeSeries", tooMany(KeyTimeSeries)), KeyTimeSeries, "more than the limit of 10080"},
		{"band not JSON", band(`[]`), KeyTrafficBand, "not the JSON"},
		{"band without quantile", band(`{"metrics": {"qps": {"1": 1}}}`), KeyTrafficBand, "quantile 0"},
		{"band quantile 1", band(`{"quantile": 1, "metrics": {"qps": {"1": 1}}}`), KeyTrafficBand, "in (0, 1)"},
		{"band without metrics", band(`{"quantile": 0.9}`), KeyTrafficBand, "missing or empty"},
		{"band of no point", band(`{"quantile": 0.9, "metrics": {"qps": {}}}`), KeyTrafficBand, "is empty"},
		{"band of a nameless metric", band(`{"quantile": 0.9, "metrics": {"": {"1": 1}}}`), KeyTrafficBand, "without a name"},
		{"band of a long name", band(`{"quantile": 0.9, "metrics": {"` + strings.Repeat("a", 254) + `": {"1": 1}}}`), KeyTrafficBand, "more than the limit of 253"},
		{"band float key", band(`{"quantile": 0.9, "metrics": {"qps": {"1.5": 1}}}`), KeyTrafficBand, "integer Unix seconds"},
		{"band negative value", band(`{"quantile": 0.9, "metrics": {"qps": {"1": -1}}}`), KeyTrafficBand, "finite number ≥ 0"},
		{"band value overflowing float64", band(`{"quantile": 0.9, "metrics": {"qps": {"1": 1e400}}}`), KeyTrafficBand, "not the JSON"},
		{"band value not a number", band(`{"quantile": 0.9, "metrics": {"qps": {"1": "NaN"}}}`), KeyTrafficBand, "not the JSON"},
		{"median negative value", band(`{"quantile": 0.9, "metrics": {"qps": {"1": 1}}, "median": {"qps": {"1": -2}}}`), KeyTrafficBand, "median of \"qps\" at 1 is -2"},
		{"median leading zero", band(`{"quantile": 0.9, "metrics": {"qps": {"1": 1}}, "median": {"qps": {"01": 2}}}`), KeyTrafficBand, "median of \"qps\": timestamp \"01\""},
		{"band of too many points", band(tooMany(KeyTrafficBand)), KeyTrafficBand, "more than the limit of 10080"},
		{"band of too many metrics", band(manyMetrics()), KeyTrafficBand, "33 metrics, more than the limit of 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			var kerr *Error
			if !errors.As(err, &kerr) || kerr.Key != tc.key || !strings.HasPrefix(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one of key %s containing %q", err, tc.key, tc.want)
			}
		})
	}
}

// TestBrokenBandLeavesTheReplicas: DecodeReplicas, which the portrait reads, ignores the band;
// DecodeBand says when there is none.
func TestBrokenBandLeavesTheReplicas(t *testing.T) {
	data := map[string]string{"type": "TimeSeries", "timeSeries": `{"1": 1}`, "trafficBand": "{"}
	if r, err := DecodeReplicas(data); err != nil || len(r.Replicas) != 1 || r.Band != nil {
		t.Errorf("replicas of a result with a broken band: %+v, %v", r, err)
	}
	if _, err := DecodeBand(map[string]string{}); !errors.Is(err, ErrNoBand) {
		t.Errorf("no band: %v, want ErrNoBand", err)
	}
	b, err := DecodeBand(map[string]string{"trafficBand": `{"quantile": 0.9, "metrics": {"qps": {"1": 1}}}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpperOf("rps"); err == nil || !strings.Contains(err.Error(), `no band for the metric "rps" (it has ["qps"])`) {
		t.Errorf("another metric's band: %v", err)
	}
}

// TestEncodeRefusesWhatReadersRefuse: a job never writes a result the manager cannot read.
func TestEncodeRefusesWhatReadersRefuse(t *testing.T) {
	one := []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 1, Replicas: 1}}
	for _, tc := range []struct {
		name string
		in   Result
		key  string
		want string
	}{
		{"no point", Result{}, KeyTimeSeries, "no point"},
		{"too many points", Result{Replicas: make([]v1alpha1.ReplicaTimeSeriesPoint, MaxPoints+1)}, KeyTimeSeries, "more than the limit"},
		{"unsorted", Result{Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 2}, {Timestamp: 1}}}, KeyTimeSeries, "not after the previous point"},
		{"negative replicas", Result{Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: 1, Replicas: -1}}}, KeyTimeSeries, "≥ 0"},
		{"negative timestamp", Result{Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: -1}}}, KeyTimeSeries, "from 0"},
		{"expireTime after 9999", Result{ExpireTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Replicas: one}, KeyExpireTime, "outside 1970 to 9999"},
		{"band quantile 0", Result{Replicas: one, Band: &Band{Upper: map[string][]Point{"qps": series(t0, time.Hour, 1)}}}, KeyTrafficBand, "quantile 0"},
		{"band of no metric", Result{Replicas: one, Band: &Band{Quantile: 0.9}}, KeyTrafficBand, "no metric"},
		{"band NaN", Result{Replicas: one, Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(t0, time.Hour, math.NaN())}}}, KeyTrafficBand, "finite number ≥ 0"},
		{"median negative", Result{Replicas: one, Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(t0, time.Hour, 1)},
			Median: map[string][]Point{"qps": series(t0, time.Hour, -1)}}}, KeyTrafficBand, "median of \"qps\""},
		{"band two points in one second", Result{Replicas: one, Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(t0, time.Millisecond, 1, 2)}}},
			KeyTrafficBand, "not after the previous second"},
		{"band before 1970", Result{Replicas: one, Band: &Band{Quantile: 0.9, Upper: map[string][]Point{"qps": series(time.Unix(-1, 0), time.Hour, 1)}}},
			KeyTrafficBand, "outside 1970 to 9999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.in)
			var kerr *Error
			if !errors.As(err, &kerr) || kerr.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one of key %s containing %q", err, tc.key, tc.want)
			}
		})
	}
}
