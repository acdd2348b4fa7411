package console

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRenderSVG(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	pts := func(vs ...float64) []Point {
		var out []Point
		for i, v := range vs {
			out = append(out, Point{T: from.Add(time.Duration(i) * time.Minute), V: v})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		chart   Chart
		want    []string
		notWant []string
	}{
		{
			name: "cluster strings are escaped",
			chart: Chart{Title: `<script>alert(1)</script>`, From: from, To: from.Add(3 * time.Minute),
				Series: []Series{{Name: `"><img src=x onerror=alert(1)>`, Points: pts(1, 2, 3)}}},
			want:    []string{"&lt;script&gt;", "&#34;&gt;&lt;img"},
			notWant: []string{"<script>", "<img"},
		},
		{
			name: "gaps break the line and the last measured value is tagged",
			chart: Chart{Title: "t", From: from, To: from.Add(4 * time.Minute),
				Series: []Series{{Name: "pods", Points: pts(1, math.NaN(), 3, 4, math.NaN()), Steps: true}}},
			want: []string{`data-series="pods" data-last="4"`},
		},
		{
			name:  "an empty span draws no data",
			chart: Chart{Title: "t", From: from, To: from},
			want:  []string{noDataMessage},
		},
		{
			name: "now is marked inside the span only",
			chart: Chart{Title: "t", From: from, To: from.Add(time.Hour), Now: from.Add(30 * time.Minute),
				Series: []Series{{Name: "a", Points: pts(5)}}},
			want: []string{`class="now"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(RenderSVG(tc.chart))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("SVG lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("SVG contains %q:\n%s", w, got)
				}
			}
			if strings.Count(got, " M") > 0 && strings.Count(got, `d="M`)+strings.Count(got, `d=""`) == 0 {
				t.Errorf("malformed path:\n%s", got)
			}
		})
	}
	// Two segments for one gap.
	got := string(RenderSVG(Chart{Title: "t", From: from, To: from.Add(4 * time.Minute), Series: []Series{{Name: "p", Points: pts(1, math.NaN(), 3, 4)}}}))
	d := got[strings.Index(got, `<path class="line s0" d="`)+len(`<path class="line s0" d="`):]
	d = d[:strings.Index(d, `"`)]
	if n := strings.Count(d, "M"); n != 2 {
		t.Errorf("path %q has %d segments, want 2 around the gap", d, n)
	}
}

func TestPointJSONWritesGapsAsNull(t *testing.T) {
	b, err := json.Marshal(Series{Name: "pods", Points: []Point{{T: time.Unix(0, 0).UTC(), V: math.NaN()}, {T: time.Unix(60, 0).UTC(), V: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"pods","points":[{"t":"1970-01-01T00:00:00Z","v":null},{"t":"1970-01-01T00:01:00Z","v":2}]}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
