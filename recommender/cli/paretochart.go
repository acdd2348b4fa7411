package cli

import (
	"fmt"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/kapacitystack/kapacity/recommender/replay"
)

// writeParetoChartPNG draws the cost/violation frontiers of a --pareto replay: replica-hours against
// minutes over 100 % CPU (on a log scale, +1), the HPA at every swept target as one line, every other
// swept policy as a line over its forecast quantiles; down and left is better.
func writeParetoChartPNG(w io.Writer, rep *replay.Report) error {
	if rep.Pareto == nil {
		return fmt.Errorf("no sweep in the report (run with --pareto)")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: cost against overload (down-left is better)", rep.Trace)
	p.X.Label.Text = "minutes over 100% CPU + 1 (log)"
	p.Y.Label.Text = "replica-hours"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	xy := func(pts []replay.ParetoPoint) plotter.XYs {
		out := make(plotter.XYs, 0, len(pts))
		for _, pt := range pts {
			if pt.Error == "" && !math.IsNaN(pt.ReplicaHours) {
				out = append(out, plotter.XY{X: pt.MinutesOver100 + 1, Y: pt.ReplicaHours})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].X < out[j].X })
		return out
	}
	add := func(name string, pts []replay.ParetoPoint) error {
		d := xy(pts)
		if len(d) == 0 {
			return nil
		}
		l, s, err := plotter.NewLinePoints(d)
		if err != nil {
			return err
		}
		col := policyColors[name]
		l.Color, s.Color = col, col
		l.Width = vg.Points(1.5)
		s.Shape = draw.CircleGlyph{}
		p.Add(l, s)
		p.Legend.Add(name, l, s)
		return nil
	}
	if err := add(replay.PolicyHPA, rep.Pareto.HPA); err != nil {
		return err
	}
	byPolicy := map[string][]replay.ParetoPoint{}
	var names []string
	for _, pt := range rep.Pareto.Points {
		if _, ok := byPolicy[pt.Policy]; !ok {
			names = append(names, pt.Policy)
		}
		byPolicy[pt.Policy] = append(byPolicy[pt.Policy], pt)
	}
	for _, n := range names {
		if err := add(n, byPolicy[n]); err != nil {
			return err
		}
	}
	img := vgimg.New(9*vg.Inch, 6*vg.Inch)
	p.Draw(draw.New(img))
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}
