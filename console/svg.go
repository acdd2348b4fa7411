package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is one value of a series at an instant; NaN is a gap (nothing measured).
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// MarshalJSON writes a gap (NaN) as null: JSON has no NaN.
func (p Point) MarshalJSON() ([]byte, error) {
	v := "null"
	if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
		v = strconv.FormatFloat(p.V, 'g', -1, 64)
	}
	t, err := p.T.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return []byte(`{"t":` + string(t) + `,"v":` + v + `}`), nil
}

// Series is one line of a chart.
type Series struct {
	Name string `json:"name"`
	// Class picks the line's colour and dash in console.css (s0…s5, merged, actual, hpa, oracle).
	Class  string  `json:"-"`
	Points []Point `json:"points"`
	// Steps draws the value as holding until the next point (replica counts), instead of a slope.
	Steps bool `json:"-"`
}

// Chart is a time chart rendered as inline SVG (no script, no external resource).
type Chart struct {
	Title    string
	Unit     string
	From, To time.Time
	// Now, when inside [From, To], is marked with a vertical line: left of it is measured or
	// evaluated in the past, right of it is what the spec and portraits say will happen.
	Now    time.Time
	Series []Series
}

// Geometry of the drawing, in SVG user units.
const (
	chartW, chartH           = 860.0, 280.0
	padLeft, padRight        = 52.0, 12.0
	padTop, padBottom        = 28.0, 46.0
	plotW                    = chartW - padLeft - padRight
	plotH                    = chartH - padTop - padBottom
	maxPointsPerSeries       = 4000
	legendSpacing            = 200.0
	legendY                  = chartH - 8
	timeTicks                = 6
	valueTicks               = 5
	noDataMessage            = "no data"
	svgNumberPrecision       = 1
	maxSeriesPerChart        = 12
	chartTimeLayoutShort     = "15:04"
	chartTimeLayoutSeconds   = "15:04:05"
	shortSpanThreshold       = 10 * time.Minute
	chartTimeLayoutLong      = "Jan 2 15:04"
	longSpanThreshold        = 36 * time.Hour
	minimumValueRangeCeiling = 1.0
)

// svgNum formats a coordinate with one decimal.
func svgNum(v float64) string { return strconv.FormatFloat(v, 'f', svgNumberPrecision, 64) }

// RenderSVG draws the chart. Every text that came from the cluster is escaped; series are
// capped in number and length so a hostile or huge object cannot make the page unbounded.
func RenderSVG(c Chart) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %s %s" role="img" aria-label="%s" data-chart="%s">`,
		svgNum(chartW), svgNum(chartH), esc(c.Title), esc(c.Title))
	fmt.Fprintf(&b, `<text class="chart-title" x="%s" y="16">%s</text>`, svgNum(padLeft), esc(c.Title))
	span := c.To.Sub(c.From)
	if span <= 0 {
		b.WriteString(`<text class="nodata" x="430" y="140">` + noDataMessage + `</text></svg>`)
		return template.HTML(b.String())
	}
	series := c.Series
	if len(series) > maxSeriesPerChart {
		series = series[:maxSeriesPerChart]
	}
	lo, hi := 0.0, math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
				hi = math.Max(hi, p.V)
				lo = math.Min(lo, p.V)
			}
		}
	}
	if math.IsInf(hi, -1) {
		hi = minimumValueRangeCeiling
	}
	tick := niceStep((hi-lo)/valueTicks, hi)
	hi = math.Ceil(hi/tick) * tick
	if hi <= lo {
		hi = lo + tick
	}
	x := func(t time.Time) float64 { return padLeft + plotW*float64(t.Sub(c.From))/float64(span) }
	y := func(v float64) float64 { return padTop + plotH*(1-(v-lo)/(hi-lo)) }

	// Grid and axes.
	for v := lo; v <= hi+tick/2; v += tick {
		fmt.Fprintf(&b, `<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, svgNum(padLeft), svgNum(padLeft+plotW), svgNum(y(v)), svgNum(y(v)))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`, svgNum(padLeft-6), svgNum(y(v)+4), formatValue(v))
	}
	layout := chartTimeLayoutShort
	if span < shortSpanThreshold {
		layout = chartTimeLayoutSeconds
	}
	if span > longSpanThreshold {
		layout = chartTimeLayoutLong
	}
	for i := 0; i <= timeTicks; i++ {
		t := c.From.Add(time.Duration(float64(span) * float64(i) / timeTicks))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, svgNum(x(t)), svgNum(padTop+plotH+16), t.UTC().Format(layout))
	}
	if c.Unit != "" {
		fmt.Fprintf(&b, `<text class="tick" x="4" y="%s">%s</text>`, svgNum(padTop-8), esc(c.Unit))
	}
	if !c.Now.IsZero() && !c.Now.Before(c.From) && !c.Now.After(c.To) {
		fmt.Fprintf(&b, `<line class="now" x1="%s" x2="%s" y1="%s" y2="%s"/><text class="tick" x="%s" y="%s">now</text>`,
			svgNum(x(c.Now)), svgNum(x(c.Now)), svgNum(padTop), svgNum(padTop+plotH), svgNum(x(c.Now)+3), svgNum(padTop+10))
	}

	// Lines: one path per series, gaps (NaN) break it.
	for i, s := range series {
		pts := s.Points
		if len(pts) > maxPointsPerSeries {
			pts = pts[len(pts)-maxPointsPerSeries:]
		}
		var d strings.Builder
		pen := false
		last := math.NaN()
		var lastX, lastY float64
		for j, p := range pts {
			if p.T.Before(c.From) || p.T.After(c.To) || math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				pen = false
				continue
			}
			last = p.V
			px, py := x(p.T), y(p.V)
			lastX, lastY = px, py
			if !pen {
				fmt.Fprintf(&d, "M%s %s", svgNum(px), svgNum(py))
				pen = true
			} else {
				if s.Steps {
					fmt.Fprintf(&d, "H%s", svgNum(px))
				}
				fmt.Fprintf(&d, "L%s %s", svgNum(px), svgNum(py))
			}
			// A step holds until the next point; the last one ends where the data ends (a
			// measurement says nothing about the future).
			if s.Steps && j+1 < len(pts) && pts[j+1].T.After(c.To) {
				fmt.Fprintf(&d, "H%s", svgNum(x(c.To)))
			}
		}
		class := s.Class
		if class == "" {
			class = "s" + strconv.Itoa(i%6)
		}
		lastAttr := ""
		if !math.IsNaN(last) {
			lastAttr = ` data-last="` + formatValue(last) + `"`
		}
		fmt.Fprintf(&b, `<path class="line %s" d="%s" data-series="%s"%s/>`, esc(class), d.String(), esc(s.Name), lastAttr)
		if !math.IsNaN(last) {
			// The latest value, visible even when it is the only one.
			fmt.Fprintf(&b, `<circle class="line %s" cx="%s" cy="%s" r="2.5"/>`, esc(class), svgNum(lastX), svgNum(lastY))
		}
		lx := padLeft + legendSpacing*float64(i%4)
		ly := legendY - 14*float64(1-min(i/4, 1))
		if len(series) <= 4 {
			ly = legendY
		}
		fmt.Fprintf(&b, `<line class="line %s" x1="%s" x2="%s" y1="%s" y2="%s"/><text class="legend" x="%s" y="%s">%s</text>`,
			esc(class), svgNum(lx), svgNum(lx+18), svgNum(ly-4), svgNum(ly-4), svgNum(lx+22), svgNum(ly), esc(truncate(s.Name, 26)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceStep is a tick spacing of 1, 2 or 5 times a power of ten near raw; at least 1 for counts.
func niceStep(raw, hi float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return math.Max(1, hi)
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	var step float64
	switch f := raw / p; {
	case f <= 1:
		step = p
	case f <= 2:
		step = 2 * p
	case f <= 5:
		step = 5 * p
	default:
		step = 10 * p
	}
	return step
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
