package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// Point is one timestamped value read from a CSV file.
type Point struct {
	Time  time.Time
	Value float64
}

// record is one row of a long-format dataset (timestamp,value[,workload,metric]).
type record struct {
	Point
	Workload, Metric string
}

// timeLayouts are the timestamp formats the CSV readers accept besides Unix seconds.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04"}

// parseTimestamp reads Unix seconds (with an optional fraction), RFC 3339 or "YYYY-MM-DD HH:MM:SS" (UTC).
func parseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is neither Unix seconds, RFC 3339 nor \"YYYY-MM-DD HH:MM:SS\"", s)
}

// readRecords reads a CSV with a header holding at least timestamp and value, and optionally workload and
// metric (the reference's training dataset). Rows come back sorted by time (stable).
func readRecords(r io.Reader, name string) ([]record, bool, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("%s: empty file, want a header with timestamp,value", name)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	ti, okT := col["timestamp"]
	vi, okV := col["value"]
	if !okT || !okV {
		return nil, false, fmt.Errorf("%s: header %q lacks the timestamp and value columns", name, strings.Join(header, ","))
	}
	wi, okW := col["workload"]
	mi, okM := col["metric"]
	labelled := okW && okM
	var out []record
	for line := 2; ; line++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		get := func(i int) string {
			if i < len(row) {
				return row[i]
			}
			return ""
		}
		t, err := parseTimestamp(get(ti))
		if err != nil {
			return nil, false, fmt.Errorf("%s line %d, column timestamp: %w", name, line, err)
		}
		vs := strings.TrimSpace(get(vi))
		v := math.NaN()
		if vs != "" {
			if v, err = strconv.ParseFloat(vs, 64); err != nil {
				return nil, false, fmt.Errorf("%s line %d, column value: %q is not a number", name, line, vs)
			}
		}
		rec := record{Point: Point{Time: t, Value: v}}
		if labelled {
			rec.Workload, rec.Metric = get(wi), get(mi)
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, false, fmt.Errorf("%s: no data rows", name)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, labelled, nil
}

// readPointsFile reads a timestamp,value CSV file.
func readPointsFile(path string) ([]Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, _, err := readRecords(f, path)
	if err != nil {
		return nil, err
	}
	pts := make([]Point, 0, len(recs))
	for _, r := range recs {
		if !math.IsNaN(r.Value) {
			pts = append(pts, r.Point)
		}
	}
	return pts, nil
}

// regularize puts points on the model's grid (bucket mean) and fills missing steps by linear
// interpolation; a series that is mostly gaps is an error.
func regularize(id string, pts []Point, step time.Duration) (forecast.Series, error) {
	s, _, err := regularizeFill(id, pts, step, forecast.FillLinear)
	return s, err
}

// regularizeFill puts points on the model's grid (bucket mean) and fills missing steps by rule,
// reporting them. (The reference fills them with 0, silently.)
func regularizeFill(id string, pts []Point, step time.Duration, rule forecast.FillRule) (forecast.Series, forecast.Gaps, error) {
	ts := make([]time.Time, len(pts))
	vs := make([]float64, len(pts))
	for i, p := range pts {
		ts[i], vs[i] = p.Time, p.Value
	}
	s, err := forecast.Regularize(id, ts, vs, step)
	if err != nil {
		return s, forecast.Gaps{}, err
	}
	g, err := forecast.FillGaps(s.Values, rule)
	if err != nil {
		return s, g, fmt.Errorf("at %s steps from %s: %w", step, s.Start.Format(time.RFC3339), err)
	}
	return s, g, nil
}

// gapLine reports the missing steps of a series, or "" when it has none.
func gapLine(id string, g forecast.Gaps, step time.Duration, rule forecast.FillRule) string {
	if g.Missing == 0 {
		return ""
	}
	return fmt.Sprintf("series %s: %d of %d steps of %s missing (%.1f%%, longest gap %d steps), filled by rule %q",
		displayID(id), g.Missing, g.Total, step, 100*g.Fraction(), g.Longest, rule)
}

// ForecastRow is one row of the forecast CSV.
type ForecastRow struct {
	Time     time.Time
	Forecast float64
	// Quantile is the forecast's quantile asked for with --quantile.
	Quantile float64
	// Actual is NaN when the input holds no observation at Time.
	Actual float64
}

// writeForecastCSV writes timestamp (RFC 3339, UTC), forecast, the q-quantile when q > 0 (column
// "q0.9") and actual (empty when unknown).
func writeForecastCSV(w io.Writer, rows []ForecastRow, q float64) error {
	cw := csv.NewWriter(w)
	header := []string{"timestamp", "forecast", "actual"}
	if q > 0 {
		header = []string{"timestamp", "forecast", "q" + strconv.FormatFloat(q, 'g', -1, 64), "actual"}
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		actual := ""
		if !math.IsNaN(r.Actual) {
			actual = strconv.FormatFloat(r.Actual, 'g', -1, 64)
		}
		rec := []string{r.Time.UTC().Format(time.RFC3339), strconv.FormatFloat(r.Forecast, 'g', -1, 64), actual}
		if q > 0 {
			rec = []string{rec[0], rec[1], strconv.FormatFloat(r.Quantile, 'g', -1, 64), actual}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
