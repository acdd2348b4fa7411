package portraitresult

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Band is the traffic forecast of a result (trafficBand): per traffic metric (the portrait's
// spec.metrics[i].name), the forecast's Quantile-quantile (its upper band, which a Burst portrait of
// the same autoscaler compares the traffic with) and its median.
type Band struct {
	// Quantile is the quantile of Upper, in (0, 1).
	Quantile float64
	// Upper is the Quantile-quantile of the forecast by metric name, each series in time order.
	Upper map[string][]Point
	// Median is the median forecast by metric name; empty in results of jobs older than it.
	Median map[string][]Point
}

// Point is a forecast value from Time (whole seconds, UTC) until the next point.
type Point struct {
	Time  time.Time
	Value float64
}

// bandDoc is trafficBand's JSON. "metrics" holds the upper band (its name predates the median).
type bandDoc struct {
	Quantile float64                       `json:"quantile"`
	Metrics  map[string]map[string]float64 `json:"metrics"`
	Median   map[string]map[string]float64 `json:"median,omitempty"`
}

// UpperOf is the upper band of the metric named metric.
func (b *Band) UpperOf(metric string) ([]Point, error) {
	s, ok := b.Upper[metric]
	if !ok {
		return nil, keyErr(KeyTrafficBand, "no band for the metric %q (it has %s)", truncate(metric), names(b.Upper))
	}
	return s, nil
}

func names(m map[string][]Point) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, strconv.Quote(truncate(k)))
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return fmt.Sprint(out)
}

func encodeBand(b *Band) (string, error) {
	if !(b.Quantile > 0 && b.Quantile < 1) {
		return "", keyErr(KeyTrafficBand, "quantile %v: want a number in (0, 1)", b.Quantile)
	}
	if len(b.Upper) == 0 {
		return "", keyErr(KeyTrafficBand, "no metric: want the upper band of at least one traffic metric")
	}
	doc := bandDoc{Quantile: b.Quantile}
	var err error
	if doc.Metrics, err = encodeSeries("metrics", b.Upper); err != nil {
		return "", err
	}
	if len(b.Median) > 0 {
		if doc.Median, err = encodeSeries("median", b.Median); err != nil {
			return "", err
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", keyErr(KeyTrafficBand, "encoding: %w", err)
	}
	return string(raw), nil
}

func encodeSeries(field string, byMetric map[string][]Point) (map[string]map[string]float64, error) {
	if len(byMetric) > MaxMetrics {
		return nil, keyErr(KeyTrafficBand, "%s: %d metrics, more than the limit of %d", field, len(byMetric), MaxMetrics)
	}
	out := make(map[string]map[string]float64, len(byMetric))
	for name, points := range byMetric {
		if err := checkMetric(field, name, len(points)); err != nil {
			return nil, err
		}
		series := make(map[string]float64, len(points))
		for i, p := range points {
			ts := p.Time.Unix()
			if ts < 0 || ts > MaxUnixSeconds {
				return nil, keyErr(KeyTrafficBand, "%s of %q: time %s is outside 1970 to 9999", field, name, p.Time.UTC().Format(time.RFC3339))
			}
			if i > 0 && ts <= points[i-1].Time.Unix() {
				return nil, keyErr(KeyTrafficBand, "%s of %q: point %d at %d is not after the previous second: sort the points and merge duplicates",
					field, name, i, ts)
			}
			if !finite(p.Value) {
				return nil, keyErr(KeyTrafficBand, "%s of %q at %d is %v: want a finite number ≥ 0", field, name, ts, p.Value)
			}
			series[strconv.FormatInt(ts, 10)] = p.Value
		}
		out[name] = series
	}
	return out, nil
}

func checkMetric(field, name string, points int) error {
	switch {
	case name == "":
		return keyErr(KeyTrafficBand, "%s: a metric without a name: name it as the portrait's spec.metrics[i].name", field)
	case len(name) > MaxMetricNameLength:
		return keyErr(KeyTrafficBand, "%s: a metric name of %d bytes, more than the limit of %d", field, len(name), MaxMetricNameLength)
	case points == 0:
		return keyErr(KeyTrafficBand, "%s of %q is empty: want at least one point", field, truncate(name))
	case points > MaxPoints:
		return keyErr(KeyTrafficBand, "%s of %q has %d points, more than the limit of %d (a week of minutely points)", field, truncate(name), points, MaxPoints)
	}
	return nil
}

// DecodeBand reads trafficBand: ErrNoBand when the key is absent.
func DecodeBand(data map[string]string) (*Band, error) {
	raw, ok := data[KeyTrafficBand]
	if !ok {
		return nil, ErrNoBand
	}
	var doc bandDoc
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, keyErr(KeyTrafficBand, "not the JSON {\"quantile\": q, \"metrics\": {metric: {Unix seconds: value}}}: %w", err)
	}
	if !(doc.Quantile > 0 && doc.Quantile < 1) {
		return nil, keyErr(KeyTrafficBand, "quantile %v: want a number in (0, 1)", doc.Quantile)
	}
	if len(doc.Metrics) == 0 {
		return nil, keyErr(KeyTrafficBand, "metrics: missing or empty: want the upper band of at least one traffic metric")
	}
	b := &Band{Quantile: doc.Quantile}
	var err error
	if b.Upper, err = decodeSeries("metrics", doc.Metrics); err != nil {
		return nil, err
	}
	if len(doc.Median) > 0 {
		if b.Median, err = decodeSeries("median", doc.Median); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeSeries(field string, byMetric map[string]map[string]float64) (map[string][]Point, error) {
	if len(byMetric) > MaxMetrics {
		return nil, keyErr(KeyTrafficBand, "%s: %d metrics, more than the limit of %d", field, len(byMetric), MaxMetrics)
	}
	out := make(map[string][]Point, len(byMetric))
	for name, series := range byMetric {
		if err := checkMetric(field, name, len(series)); err != nil {
			return nil, err
		}
		points := make([]Point, 0, len(series))
		for k, v := range series {
			ts, err := parseUnix(k)
			if err != nil {
				return nil, keyErr(KeyTrafficBand, "%s of %q: %w", field, truncate(name), err)
			}
			if !finite(v) {
				return nil, keyErr(KeyTrafficBand, "%s of %q at %d is %v: want a finite number ≥ 0", field, truncate(name), ts, v)
			}
			points = append(points, Point{Time: time.Unix(ts, 0).UTC(), Value: v})
		}
		slices.SortFunc(points, func(a, b Point) int { return a.Time.Compare(b.Time) })
		out[name] = points
	}
	return out, nil
}
