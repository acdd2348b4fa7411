package estimator

import (
	"sort"
	"time"
)

// Point is one predicted replica count.
type Point struct {
	Time     time.Time
	Replicas int
}

// ResampleMax buckets points by freq (left-closed, labelled by the bucket start, aligned to the Unix epoch,
// as pandas' resample for freqs dividing a day) and keeps each bucket's maximum, so that a bucket never
// has fewer replicas than any point in it needs. Empty buckets are skipped.
func ResampleMax(points []Point, freq time.Duration) []Point {
	if freq <= 0 || len(points) == 0 {
		return append([]Point(nil), points...)
	}
	m := map[int64]int{}
	for _, p := range points {
		k := p.Time.Truncate(freq).Unix()
		if v, ok := m[k]; !ok || p.Replicas > v {
			m[k] = p.Replicas
		}
	}
	out := make([]Point, 0, len(m))
	for k, v := range m {
		out = append(out, Point{Time: time.Unix(k, 0).UTC(), Replicas: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// ShiftScaleUp moves every scale-up point (more replicas than the previous point; never the first)
// ahead earlier, so the pods are ready when the traffic arrives; scale-downs keep their time. Unlike the
// reference, the result is re-sorted and, where a shifted point lands on or before an earlier one, the
// larger count wins, so the series stays ordered and never under-provisions.
func ShiftScaleUp(points []Point, ahead time.Duration) []Point {
	out := append([]Point(nil), points...)
	if ahead <= 0 {
		return out
	}
	for i := 1; i < len(points); i++ {
		if points[i].Replicas > points[i-1].Replicas {
			out[i].Time = points[i].Time.Add(-ahead)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	// Points that land on the same time keep the larger count.
	res := out[:0:0]
	for _, p := range out {
		for len(res) > 0 && !res[len(res)-1].Time.Before(p.Time) {
			if res[len(res)-1].Replicas > p.Replicas {
				p.Replicas = res[len(res)-1].Replicas
			}
			res = res[:len(res)-1]
		}
		res = append(res, p)
	}
	return res
}
