package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// ForecastOptions are the flags of `kapacity forecast`.
type ForecastOptions struct {
	ModelPath string
	Input     string
	Output    string
	Chart     string
	// Series is the model's series ID to forecast; empty picks the model's only series.
	Series string
	// Holdout is the number of trailing input points (at the model's step) kept out of the history and
	// shown as actuals next to the forecast.
	Holdout int
	// Horizons is the number of consecutive prediction-length blocks to forecast, each fed with the
	// previous ones (0: enough to cover Holdout, at least 1).
	Horizons int
}

// NewForecastCommand returns `kapacity forecast`.
func NewForecastCommand() *cobra.Command {
	var o ForecastOptions
	cmd := &cobra.Command{
		Use:   "forecast",
		Short: "Forecast a timestamp,value CSV with a trained traffic model",
		Long: `Forecast reads a timestamp,value CSV, puts it on the model's grid (bucket mean), forecasts the
next prediction-length points (or --horizons blocks of them) and writes timestamp,forecast,actual rows.
With --holdout N the last N points are held out and written as actuals, so the forecast can be judged;
--chart draws history, forecast and actuals as a PNG.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunForecast(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ModelPath, "model-path", "", "directory of the trained model (kapacity train --model-save-path)")
	f.StringVar(&o.Input, "input", "", "input CSV with timestamp,value columns")
	f.StringVar(&o.Output, "output", "", "output CSV (timestamp,forecast,actual)")
	f.StringVar(&o.Chart, "chart", "", "optional PNG chart of history, forecast and actuals")
	f.StringVar(&o.Series, "series", "", "series ID in the model (default: the model's only series)")
	f.IntVar(&o.Holdout, "holdout", 0, "trailing input points held out as actuals")
	f.IntVar(&o.Horizons, "horizons", 0, "prediction-length blocks to forecast (0: cover --holdout, at least 1)")
	for _, n := range []string{"model-path", "input", "output"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// RunForecast runs `kapacity forecast`; a summary line goes to out.
func RunForecast(_ context.Context, o ForecastOptions, out io.Writer) error {
	switch {
	case o.ModelPath == "":
		return errors.New("--model-path is required")
	case o.Input == "":
		return errors.New("--input is required")
	case o.Output == "":
		return errors.New("--output is required")
	case o.Holdout < 0:
		return fmt.Errorf("--holdout %d: must be ≥ 0", o.Holdout)
	case o.Horizons < 0:
		return fmt.Errorf("--horizons %d: must be ≥ 0", o.Horizons)
	}
	m, err := forecast.Load(o.ModelPath)
	if err != nil {
		return fmt.Errorf("--model-path %s: %w", o.ModelPath, err)
	}
	id, err := pickSeries(m, o.Series)
	if err != nil {
		return err
	}
	pts, err := readPointsFile(o.Input)
	if err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	s, err := regularize(id, pts, m.Step())
	if err != nil {
		return fmt.Errorf("--input %s: %w", o.Input, err)
	}
	ctxLen, predLen := m.Config.ContextLength, m.Config.PredictionLength
	if n := len(s.Values) - o.Holdout; n < ctxLen {
		return fmt.Errorf("--input %s: %d points at the model's step %s after the holdout of %d, the model needs a context of %d",
			o.Input, max(n, 0), m.Step(), o.Holdout, ctxLen)
	}
	horizons := o.Horizons
	if horizons == 0 {
		horizons = max(1, (o.Holdout+predLen-1)/predLen)
	}
	rows, err := rollingForecast(m, id, s, o.Holdout, horizons)
	if err != nil {
		return err
	}
	if err := writeFile(o.Output, func(w io.Writer) error { return writeForecastCSV(w, rows) }); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if o.Chart != "" {
		cut := len(s.Values) - o.Holdout
		from := max(0, cut-max(ctxLen, 3*len(rows)))
		d := chartData{Title: fmt.Sprintf("%s: forecast of %s", displayID(id), o.Input)}
		for i := from; i < cut; i++ {
			d.History = append(d.History, Point{s.TimeAt(i), s.Values[i]})
		}
		if cut > 0 {
			// Start the forecast and actual lines at the last observation so they join the history.
			last := Point{s.TimeAt(cut - 1), s.Values[cut-1]}
			d.Forecast = append(d.Forecast, last)
			if o.Holdout > 0 {
				d.Actual = append(d.Actual, last)
			}
		}
		for _, r := range rows {
			d.Forecast = append(d.Forecast, Point{r.Time, r.Forecast})
			if !math.IsNaN(r.Actual) {
				d.Actual = append(d.Actual, Point{r.Time, r.Actual})
			}
		}
		if err := writeFile(o.Chart, func(w io.Writer) error { return writeChartPNG(w, d) }); err != nil {
			return fmt.Errorf("--chart: %w", err)
		}
	}
	fmt.Fprintf(out, "forecast %d points of series %s at %s from %s to %s\n", len(rows), displayID(id), m.Step(),
		rows[0].Time.Format("2006-01-02T15:04:05Z"), rows[len(rows)-1].Time.Format("2006-01-02T15:04:05Z"))
	return nil
}

// rollingForecast forecasts horizons blocks after the first len−holdout values of s, feeding each block's
// forecast to the next. Actuals come from the held-out tail.
func rollingForecast(m *forecast.Model, id string, s forecast.Series, holdout, horizons int) ([]ForecastRow, error) {
	cut := len(s.Values) - holdout
	hist := slices.Clone(s.Values[:cut])
	var rows []ForecastRow
	for h := 0; h < horizons; h++ {
		last := s.TimeAt(len(hist) - 1)
		pred, err := m.Predict(id, hist, last)
		if err != nil {
			return nil, fmt.Errorf("predict series %s: %w", displayID(id), err)
		}
		for _, v := range pred {
			i := len(hist)
			actual := math.NaN()
			if i < len(s.Values) {
				actual = s.Values[i]
			}
			rows = append(rows, ForecastRow{Time: s.TimeAt(i), Forecast: v, Actual: actual})
			hist = append(hist, v)
		}
	}
	return rows, nil
}

// pickSeries returns want if the model knows it, or the model's only series when want is empty.
func pickSeries(m *forecast.Model, want string) (string, error) {
	ids := make([]string, 0, len(m.Series))
	for id := range m.Series {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if want == "" {
		if len(ids) == 1 {
			return ids[0], nil
		}
		return "", fmt.Errorf("--series: the model holds %d series, name one of %q", len(ids), displayIDs(ids))
	}
	if _, ok := m.Series[want]; ok {
		return want, nil
	}
	// Accept "workload/metric" spelled with a slash for series trained with workload and metric columns.
	for _, id := range ids {
		if displayID(id) == want {
			return id, nil
		}
	}
	return "", fmt.Errorf("--series %q: not in the model, which holds %q", want, displayIDs(ids))
}

// displayID shows a series ID with its NUL separators (forecast.SeriesID) as " | ".
func displayID(id string) string {
	b := []byte{}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			b = append(b, " | "...)
			continue
		}
		b = append(b, id[i])
	}
	return string(b)
}

func displayIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = displayID(id)
	}
	return out
}

// writeFile writes path through fn, removing the file when fn fails.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
