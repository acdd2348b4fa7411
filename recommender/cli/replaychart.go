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
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/kapacitystack/kapacity/recommender/replay"
)

// policyColors keeps each policy's colour across the panels.
var policyColors = map[string]color.RGBA{
	replay.PolicyOracle:             {R: 40, G: 40, B: 40, A: 255},
	replay.PolicyHPA:                {R: 214, G: 39, B: 40, A: 255},
	replay.PolicyCron:               {R: 148, G: 103, B: 189, A: 255},
	replay.PolicyPredictive:         {R: 31, G: 119, B: 180, A: 255},
	replay.PolicyPredictiveReactive: {R: 44, G: 160, B: 44, A: 255},
	replay.PolicyBurst:              {R: 255, G: 127, B: 14, A: 255},
	replay.PolicyPredictiveBurst:    {R: 23, G: 190, B: 207, A: 255},
}

// writeReplayChartPNG draws three aligned panels over the replayed span: the traffic, the pods of each
// policy and their utilisation against the target (clipped at 200 %).
func writeReplayChartPNG(w io.Writer, rep *replay.Report) error {
	c := rep.Chart
	ticks := plot.TimeTicks{Format: "01-02\n15:04", Time: func(t float64) time.Time { return time.Unix(int64(t), 0).UTC() }}
	newPanel := func(title, y string) *plot.Plot {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = y
		p.X.Tick.Marker = ticks
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		return p
	}
	traffic := newPanel(fmt.Sprintf("replay of %s", rep.Trace), "traffic")
	pods := newPanel("pods per policy", "pods")
	util := newPanel("utilisation of the serving pods' CPU requests (max per step)", "utilisation")
	util.Y.Min, util.Y.Max = 0, 2

	addLine := func(p *plot.Plot, name string, ys []float64, clip float64, col color.RGBA, width vg.Length) error {
		xys := make(plotter.XYs, 0, len(ys))
		for i, v := range ys {
			if i >= len(c.Times) || math.IsNaN(v) {
				continue
			}
			if clip > 0 && v > clip {
				v = clip
			}
			xys = append(xys, plotter.XY{X: float64(c.Times[i].Unix()), Y: v})
		}
		if len(xys) == 0 {
			return nil
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("chart line %s: %w", name, err)
		}
		l.LineStyle = draw.LineStyle{Color: col, Width: width}
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	if err := addLine(traffic, "traffic", c.Traffic, 0, color.RGBA{R: 90, G: 90, B: 90, A: 255}, vg.Points(0.8)); err != nil {
		return err
	}
	target := make([]float64, len(c.Times))
	for i := range target {
		target[i] = c.Target
	}
	if err := addLine(util, "target", target, 0, color.RGBA{R: 255, G: 127, B: 14, A: 255}, vg.Points(1)); err != nil {
		return err
	}
	for _, pol := range c.Policies {
		col, ok := policyColors[pol.Name]
		if !ok {
			col = color.RGBA{R: 127, G: 127, B: 127, A: 255}
		}
		if err := addLine(pods, pol.Name, pol.Pods, 0, col, vg.Points(0.8)); err != nil {
			return err
		}
		if err := addLine(util, pol.Name, pol.Utilisation, 2, col, vg.Points(0.6)); err != nil {
			return err
		}
	}

	const width, height = 14 * vg.Inch, 10 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4),
		PadRight: vg.Points(8), PadY: vg.Points(6)}
	plots := [][]*plot.Plot{{traffic}, {pods}, {util}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(w); err != nil {
		return fmt.Errorf("encode PNG: %w", err)
	}
	return nil
}
