package portraitresult

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// FuzzDecodeResult: whatever a ConfigMap holds (a job may be anyone's), Decode never panics, a
// refusal names one of the keys, and an accepted result meets the bounds and survives Encode and
// Decode unchanged (expireTime to the hundredth of a second, as it is written).
func FuzzDecodeResult(f *testing.F) {
	f.Add("TimeSeries", "2023-10-25T12:10:00.00Z", `{"1698235200": 3, "1698234600": 5}`, "")
	f.Add("TimeSeries", "", `{"0": 0}`, `{"quantile": 0.9, "metrics": {"qps": {"1": 1.5}}, "median": {"qps": {"1": 1}}}`)
	f.Add("TimeSeries", "2026-03-02T11:00:00.123456789+01:00", `{"253402300799": 2147483647}`, `{"quantile": 0.5, "metrics": {"a": {"0": 0}, "b": {"2": 1e300}}}`)
	f.Add("TimeSeries", "0001-01-01T00:00:00Z", `{"01": 1, "1": 2}`, `{"quantile": 1}`)
	f.Add("Static", "tomorrow", `[1]`, `{`)
	f.Fuzz(func(t *testing.T, typ, expire, timeSeries, band string) {
		data := map[string]string{KeyType: typ, KeyExpireTime: expire, KeyTimeSeries: timeSeries}
		if band != "" {
			data[KeyTrafficBand] = band
		}
		r, err := Decode(data)
		if err != nil {
			var kerr *Error
			if !errors.As(err, &kerr) || !slices.Contains([]string{KeyType, KeyExpireTime, KeyTimeSeries, KeyTrafficBand}, kerr.Key) {
				t.Fatalf("refusal %v names no key", err)
			}
			return
		}
		checkBounds(t, r)
		out, err := Encode(*r)
		if err != nil {
			t.Fatalf("an accepted result does not encode: %v\n%+v", err, r)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("an accepted result, encoded, is refused: %v\n%v", err, out)
		}
		want := *r
		want.ExpireTime = want.ExpireTime.Truncate(10 * time.Millisecond)
		if !reflect.DeepEqual(*again, want) {
			t.Fatalf("round trip changed the result:\n got %+v\nwant %+v", *again, want)
		}
	})
}

// FuzzDecodeBand: the same of trafficBand alone, which the Burst generator and the console read
// whatever the replicas say.
func FuzzDecodeBand(f *testing.F) {
	f.Add(`{"quantile": 0.9, "metrics": {"qps": {"1772452800": 50, "1772456400": 60.5}}}`)
	f.Add(`{"quantile": 0.1, "metrics": {"qps": {"1": 1}}, "median": {"qps": {"1": 0.5}, "rps": {"2": 3}}}`)
	f.Add(`{"quantile": 0.9, "metrics": {"": {"1": 1}}}`)
	f.Add(`{"quantile": 0.9, "metrics": {"qps": {"+1": 1, "1.5": -1}}}`)
	f.Add(`{"quantile": 1e-320, "metrics": {"q": {"253402300799": 1.7976931348623157e308}}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, raw string) {
		b, err := DecodeBand(map[string]string{KeyTrafficBand: raw})
		if err != nil {
			var kerr *Error
			if !errors.As(err, &kerr) || kerr.Key != KeyTrafficBand {
				t.Fatalf("refusal %v does not name %s", err, KeyTrafficBand)
			}
			return
		}
		checkBounds(t, &Result{Band: b})
		raw2, err := encodeBand(b)
		if err != nil {
			t.Fatalf("an accepted band does not encode: %v\n%+v", err, b)
		}
		again, err := DecodeBand(map[string]string{KeyTrafficBand: raw2})
		if err != nil {
			t.Fatalf("an accepted band, encoded, is refused: %v\n%s", err, raw2)
		}
		if !reflect.DeepEqual(again, b) {
			t.Fatalf("round trip changed the band:\n got %+v\nwant %+v", again, b)
		}
	})
}

// checkBounds asserts what every reader relies on of a decoded result.
func checkBounds(t *testing.T, r *Result) {
	t.Helper()
	if len(r.Replicas) > MaxPoints {
		t.Fatalf("%d replica points accepted", len(r.Replicas))
	}
	for i, p := range r.Replicas {
		if p.Timestamp < 0 || p.Timestamp > MaxUnixSeconds || p.Replicas < 0 || (i > 0 && p.Timestamp <= r.Replicas[i-1].Timestamp) {
			t.Fatalf("point %d %+v accepted out of bounds or order", i, p)
		}
	}
	if !r.ExpireTime.IsZero() && (r.ExpireTime.Location() != time.UTC || r.ExpireTime.Unix() < 0 || r.ExpireTime.Unix() > MaxUnixSeconds) {
		t.Fatalf("expireTime %v accepted", r.ExpireTime)
	}
	if r.Band == nil {
		return
	}
	if !(r.Band.Quantile > 0 && r.Band.Quantile < 1) || len(r.Band.Upper) == 0 {
		t.Fatalf("band %+v accepted", r.Band)
	}
	for _, m := range []map[string][]Point{r.Band.Upper, r.Band.Median} {
		if len(m) > MaxMetrics {
			t.Fatalf("%d metrics accepted", len(m))
		}
		for name, pts := range m {
			if name == "" || len(name) > MaxMetricNameLength || len(pts) == 0 || len(pts) > MaxPoints {
				t.Fatalf("metric %q of %d points accepted", name, len(pts))
			}
			for i, p := range pts {
				if !finite(p.Value) || p.Time.Unix() < 0 || p.Time.Unix() > MaxUnixSeconds || p.Time.Nanosecond() != 0 ||
					(i > 0 && !p.Time.After(pts[i-1].Time)) {
					t.Fatalf("metric %q point %d %+v accepted out of bounds or order", name, i, p)
				}
			}
		}
	}
}
