package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

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
	// Fill is the rule that fills missing input steps (forecast.FillRule); empty is linear.
	Fill string
	// Quantile, when in (0, 1), adds the forecast's quantile as a column (and a band on the chart).
	Quantile float64
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
--chart draws history, forecast and actuals as a PNG. The summary names the forecaster the series
uses (chosen at training on its validation window) and its validation error. Forecasts of traffic
are never negative; missing input steps are reported and filled (--fill).`,
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
	f.StringVar(&o.Series, "series", "", "series ID in the model (default: the model's only series): NAMESPACE/NAME/METRIC for a series trained from\nworkload and metric columns or config targets (e.g. default/web/qps), or the ID of an unlabelled dataset (\"default\")")
	f.StringVar(&o.Fill, "fill", string(forecast.FillLinear), "how missing input steps are filled: linear, forward or zero")
	f.Float64Var(&o.Quantile, "quantile", 0, "also write this quantile of the forecast, in (0, 1), as a column (e.g. 0.9)")
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
	case o.Quantile < 0 || o.Quantile >= 1 || math.IsNaN(o.Quantile):
		return fmt.Errorf("--quantile %v: must be in (0, 1), or 0 for none", o.Quantile)
	}
	rule, err := forecast.ParseFillRule(cmpOr(o.Fill, string(forecast.FillLinear)))
	if err != nil {
		return fmt.Errorf("--fill: %w", err)
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
	s, gaps, err := regularizeFill(id, pts, m.Step(), rule)
	if err != nil {
		return fmt.Errorf("--input %s: %w", o.Input, err)
	}
	if l := gapLine(id, gaps, m.Step(), rule); l != "" {
		fmt.Fprintln(out, l)
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
	rows, err := rollingForecast(m, id, s, o.Holdout, horizons, o.Quantile)
	if err != nil {
		return err
	}
	if err := writeFile(o.Output, func(w io.Writer) error { return writeForecastCSV(w, rows, o.Quantile) }); err != nil {
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
	if in := m.SeriesInfo(id); in != nil {
		fmt.Fprintln(out, choiceLine(id, in))
	} else {
		fmt.Fprintf(out, "series %s: method %s (a model of format 1: no per-series choice)\n", displayID(id), forecast.MethodNetwork)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rollingForecast forecasts horizons blocks after the first len−holdout values of s, feeding each block's
// forecast to the next. Actuals come from the held-out tail; with q > 0 each row also has the q-quantile.
func rollingForecast(m *forecast.Model, id string, s forecast.Series, holdout, horizons int, q float64) ([]ForecastRow, error) {
	cut := len(s.Values) - holdout
	hist := slices.Clone(s.Values[:cut])
	var rows []ForecastRow
	for h := 0; h < horizons; h++ {
		qs := []forecast.Query{{ID: id, History: hist, Last: s.TimeAt(len(hist) - 1)}}
		pred, err := m.PredictBatch(qs)
		if err != nil {
			return nil, fmt.Errorf("predict series %s: %w", displayID(id), err)
		}
		upper := pred
		if q > 0 {
			if upper, err = m.PredictBatchQuantile(qs, q); err != nil {
				return nil, fmt.Errorf("predict series %s: %w", displayID(id), err)
			}
		}
		for j, v := range pred[0] {
			i := len(hist)
			actual := math.NaN()
			if i < len(s.Values) {
				actual = s.Values[i]
			}
			rows = append(rows, ForecastRow{Time: s.TimeAt(i), Forecast: v, Quantile: upper[0][j], Actual: actual})
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
		return "", fmt.Errorf("--series: the model holds %d series, name one (NAMESPACE/NAME/METRIC), e.g. %s", len(ids), someIDs(ids))
	}
	if _, ok := m.Series[want]; ok {
		return want, nil
	}
	// Accept the series as people write it: "ns/name/metric" (or the " | " display form) for series
	// trained with workload and metric columns.
	for _, id := range ids {
		if displayID(id) == want || slashID(id) == want {
			return id, nil
		}
	}
	return "", fmt.Errorf("--series %q: not in the model, which holds %d series, e.g. %s", want, len(ids), someIDs(ids))
}

// maxListedIDs is how many series IDs an error lists.
const maxListedIDs = 5

// someIDs lists the first few IDs in the NAMESPACE/NAME/METRIC form, and how many more there are.
func someIDs(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i == maxListedIDs {
			fmt.Fprintf(&b, " and %d more", len(ids)-maxListedIDs)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", slashID(id))
	}
	return b.String()
}

// slashID writes a series ID with its NUL separators (forecast.SeriesID) as "/": "ns/name/metric".
func slashID(id string) string { return strings.ReplaceAll(id, "\x00", "/") }

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
