package query

import (
	"net/url"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// FuzzRangeParsingAndSharding: whatever start, end and step a request carries, parsing and the
// range check never panic, and a range they accept is split into shards that terminate, each on
// the step grid, within the shard size, in order, together holding exactly the range's points.
func FuzzRangeParsingAndSharding(f *testing.F) {
	for _, s := range []struct {
		start, end, step string
		shard            int
	}{
		{"1700000000", "1700086400", "60", 11000},
		{"2023-11-14T22:13:20Z", "2023-11-21T22:13:20Z", "1m", 1440},
		{"1700000000", "1700000000", "1000000", 11000}, // the report: start = end, a 11.6-day step
		{"0", "9223372036", "1ms", 11000},
		{"-62135596800", "253402300799", "744h", 3},
		{"NaN", "Inf", "NaN", 1},
		{"1e300", "-1e300", "-1", 0},
		{"1700000000.123456789", "1700000250", "0.001", 7},
		{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2562047h", 11000},
	} {
		f.Add(s.start, s.end, s.step, s.shard)
	}
	e := &Engine{}
	e.opts.setDefaults()
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, start, end, step string, shardPoints int) {
		params := url.Values{v1alpha1.ParamStart: {start}, v1alpha1.ParamEnd: {end}, v1alpha1.ParamStep: {step}}
		_, r, err := v1alpha1.ParseRequest("ns", "workloadresources", "web", params, now)
		if err != nil || r == nil || e.checkRange(*r) != nil {
			return
		}
		shardPoints = shardPoints%(2*PrometheusMaxPoints) + 1
		if shardPoints < 1 {
			shardPoints += 2 * PrometheusMaxPoints
		}
		shards := Shards(*r, shardPoints)
		want := r.Points()
		if want < 1 || want > e.opts.MaxPoints {
			t.Fatalf("accepted range %+v has %d points", r, want)
		}
		total, next := int64(0), r.Start
		for i, s := range shards {
			if !s.Start.Equal(next) || s.Step != r.Step || s.End.Before(s.Start) || s.End.After(r.End) {
				t.Fatalf("shard %d of %+v is %+v, want it to start at %s on the grid", i, r, s, next)
			}
			n := s.Points()
			if n < 1 || n > int64(shardPoints) {
				t.Fatalf("shard %d of %+v has %d points, want 1..%d", i, r, n, shardPoints)
			}
			total += n
			next = s.Start.Add(time.Duration(n) * s.Step)
		}
		if total != want {
			t.Fatalf("shards of %+v hold %d points, the range %d", r, total, want)
		}
	})
}
