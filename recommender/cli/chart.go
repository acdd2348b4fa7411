package cli

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartData is what the forecast chart shows.
type chartData struct {
	Title    string
	History  []Point // observed values before the forecast
	Forecast []Point
	Actual   []Point // observed values over the forecast span (held out), may be empty
}

// writeChartPNG draws history, forecast and actuals as lines over time and writes a PNG (pure Go; no cgo).
func writeChartPNG(w io.Writer, d chartData) error {
	p := plot.New()
	p.Title.Text = d.Title
	p.X.Label.Text = "time (UTC)"
	p.Y.Label.Text = "value"
	p.X.Tick.Marker = plot.TimeTicks{Format: "01-02\n15:04", Time: func(t float64) time.Time { return time.Unix(int64(t), 0).UTC() }}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true

	series := []struct {
		name  string
		pts   []Point
		color color.RGBA
		dash  []vg.Length
	}{
		{"history", d.History, color.RGBA{R: 90, G: 90, B: 90, A: 255}, nil},
		{"actual", d.Actual, color.RGBA{R: 31, G: 119, B: 180, A: 255}, nil},
		{"forecast", d.Forecast, color.RGBA{R: 214, G: 39, B: 40, A: 255}, []vg.Length{vg.Points(4), vg.Points(2)}},
	}
	for _, s := range series {
		xys := make(plotter.XYs, 0, len(s.pts))
		for _, pt := range s.pts {
			if math.IsNaN(pt.Value) || math.IsInf(pt.Value, 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pt.Time.Unix()), Y: pt.Value})
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("chart line %s: %w", s.name, err)
		}
		l.LineStyle = draw.LineStyle{Color: s.color, Width: vg.Points(1.2), Dashes: s.dash}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	wt, err := p.WriterTo(10*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("render chart: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}
