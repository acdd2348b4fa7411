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
// ahead earlier, so the pods are ready when the traffic arrives; scale-downs keep their time. points
// must be sorted by time. Unlike the reference, every resulting point asks for the most replicas that
// any input point needs from its time to ahead later, so a scale-up shifted past earlier, lower points
// (ahead longer than the points' spacing) raises them too instead of being undone by them; points that
// land on the same time become one. The series never under-provisions.
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
	for i := range out {
		out[i].Replicas = mostNeeded(points, out[i].Time, ahead)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	// Points at the same time got the same count from mostNeeded: keep one.
	res := out[:0:0]
	for _, p := range out {
		if len(res) == 0 || !res[len(res)-1].Time.Equal(p.Time) {
			res = append(res, p)
		}
	}
	return res
}

// mostNeeded is the largest count that sorted points ask for during [from, from+ahead]: the one in
// effect at from (the last point at or before it, if any) and every point after it within ahead.
func mostNeeded(points []Point, from time.Time, ahead time.Duration) int {
	i := sort.Search(len(points), func(i int) bool { return points[i].Time.After(from) })
	most := 0
	if i > 0 {
		most = points[i-1].Replicas
	}
	for until := from.Add(ahead); i < len(points) && !points[i].Time.After(until); i++ {
		most = max(most, points[i].Replicas)
	}
	return most
}
