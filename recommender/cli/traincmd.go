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
	"time"

	"github.com/spf13/cobra"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"sigs.k8s.io/yaml"

	autoscalingv1alpha1 "github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/recommender/forecast"
)

// TrainConfig is the training config file of the reference's train.py, with optional extensions in
// hyperParams. Unknown fields are rejected.
type TrainConfig struct {
	// Targets are the workloads whose metrics are fetched from the history API (unused with a dataset file,
	// except to name the series of an unlabelled one).
	Targets          []TrainTarget `json:"targets,omitempty"`
	Freq             string        `json:"freq"`
	PredictionLength int           `json:"predictionLength"`
	ContextLength    int           `json:"contextLength"`
	HyperParams      HyperParams   `json:"hyperParams"`
}

// TrainTarget is one workload to learn the traffic of.
type TrainTarget struct {
	WorkloadNamespace string                                    `json:"workloadNamespace"`
	WorkloadRef       autoscalingv2.CrossVersionObjectReference `json:"workloadRef"`
	// HistoryLength is how much history to fetch: "<n>D", "<n>H", "<n>min".
	HistoryLength string                           `json:"historyLength"`
	Metrics       []autoscalingv1alpha1.MetricSpec `json:"metrics"`
}

// HyperParams are the training hyper-parameters. learningRate, epochs and batchSize are the reference's;
// the others extend it (zero or absent: forecast.DefaultConfig's value).
type HyperParams struct {
	LearningRate       float64  `json:"learningRate,omitempty"`
	Epochs             int      `json:"epochs,omitempty"`
	BatchSize          int      `json:"batchSize,omitempty"`
	Patience           int      `json:"patience,omitempty"`
	HiddenSize         int      `json:"hiddenSize,omitempty"`
	NumLayers          int      `json:"numLayers,omitempty"`
	ValidationFraction *float64 `json:"validationFraction,omitempty"`
	SamplesPerEpoch    int      `json:"samplesPerEpoch,omitempty"`
	Seed               *uint64  `json:"seed,omitempty"`
	// Quantiles are the network's quantile heads (default forecast.DefaultQuantiles).
	Quantiles []float64 `json:"quantiles,omitempty"`
	// Methods restricts the forecasters each series may choose from (default: all of forecast.Methods).
	Methods []string `json:"methods,omitempty"`
}

// LoadTrainConfig reads and validates a training config file.
func LoadTrainConfig(path string) (*TrainConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config-file: %w", err)
	}
	c, err := ParseTrainConfig(b)
	if err != nil {
		return nil, fmt.Errorf("--config-file %s: %w", path, err)
	}
	return c, nil
}

// ParseTrainConfig parses YAML (or JSON) config and validates it; errors name the field.
func ParseTrainConfig(b []byte) (*TrainConfig, error) {
	var c TrainConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every field and reports all problems, each naming its field.
func (c *TrainConfig) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Freq == "" {
		add("freq: required (min, 1min, 10min, H, 1H, D, 1D)")
	} else if _, err := forecast.ParseFreq(c.Freq); err != nil {
		add("freq: %w", err)
	}
	if c.PredictionLength < 1 {
		add("predictionLength: %d, must be ≥ 1", c.PredictionLength)
	}
	if c.ContextLength < 1 {
		add("contextLength: %d, must be ≥ 1", c.ContextLength)
	}
	h := c.HyperParams
	if h.LearningRate < 0 || math.IsNaN(h.LearningRate) {
		add("hyperParams.learningRate: %g, must be > 0", h.LearningRate)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"epochs", h.Epochs}, {"batchSize", h.BatchSize}, {"patience", h.Patience}, {"hiddenSize (0: sized to the data)", h.HiddenSize},
		{"numLayers", h.NumLayers}, {"samplesPerEpoch", h.SamplesPerEpoch}} {
		if f.v < 0 {
			add("hyperParams.%s: %d, must be > 0", f.name, f.v)
		}
	}
	for i, q := range h.Quantiles {
		if !(q > 0 && q < 1) {
			add("hyperParams.quantiles[%d]: %g, must be in (0, 1)", i, q)
		}
	}
	for i, m := range h.Methods {
		if !slices.Contains(forecast.Methods, m) {
			add("hyperParams.methods[%d]: %q, must be one of %s", i, m, strings.Join(forecast.Methods, ", "))
		}
	}
	if v := h.ValidationFraction; v != nil && (*v < 0 || *v >= 1 || math.IsNaN(*v)) {
		add("hyperParams.validationFraction: %g, must be in [0, 1)", *v)
	}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if t.WorkloadNamespace == "" {
			add("%s.workloadNamespace: required", p)
		}
		if _, err := workloadGroupKind(t.WorkloadRef); err != nil {
			add("%s.workloadRef: %w", p, err)
		}
		if t.HistoryLength == "" {
			add("%s.historyLength: required (e.g. 24H, 7D)", p)
		} else if _, err := forecast.ParseFreq(t.HistoryLength); err != nil {
			add("%s.historyLength: %w", p, err)
		}
		if len(t.Metrics) == 0 {
			add("%s.metrics: at least one metric is required", p)
		}
		for j, m := range t.Metrics {
			if m.Name == "" {
				add("%s.metrics[%d].name: required (it names the series)", p, j)
			}
			if _, err := metricQuery(t.WorkloadNamespace, t.WorkloadRef, m); err != nil {
				add("%s.metrics[%d]: %w", p, j, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ForecastConfig is the forecaster configuration the file describes.
func (c *TrainConfig) ForecastConfig() forecast.Config {
	fc := forecast.DefaultConfig()
	fc.Freq, fc.ContextLength, fc.PredictionLength = c.Freq, c.ContextLength, c.PredictionLength
	h := c.HyperParams
	setPos := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	if h.LearningRate > 0 {
		fc.LearningRate = h.LearningRate
	}
	setPos(&fc.Epochs, h.Epochs)
	setPos(&fc.BatchSize, h.BatchSize)
	setPos(&fc.Patience, h.Patience)
	setPos(&fc.HiddenSize, h.HiddenSize)
	setPos(&fc.NumLayers, h.NumLayers)
	setPos(&fc.SamplesPerEpoch, h.SamplesPerEpoch)
	if h.ValidationFraction != nil {
		fc.ValidationFraction = *h.ValidationFraction
	}
	if h.Seed != nil {
		fc.Seed = *h.Seed
	}
	fc.Quantiles, fc.Methods = h.Quantiles, h.Methods
	return fc
}

// workloadKey is the reference's workload column value, "<namespace>/<name>".
func workloadKey(ns, name string) string { return ns + "/" + name }

// TrainOptions are the flags of `kapacity train`.
type TrainOptions struct {
	ConfigFile    string
	ModelSavePath string
	DatasetFile   string
	// Fill is the rule that fills missing steps (forecast.FillRule); empty is linear interpolation.
	Fill string
	Kube KubeOptions
}

// NewTrainCommand returns `kapacity train`.
func NewTrainCommand() *cobra.Command {
	var o TrainOptions
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the traffic forecaster from a config file and a CSV dataset or the history API",
		Long: `Train fits the SNTSF traffic forecaster on every series of the dataset and saves the model
directory (manifest.json, estimator_config.yaml, item2id.json, weights.bin).

The dataset is --dataset-file, a CSV with timestamp,value[,workload,metric] columns (workload
"<namespace>/<name>", metric = the metric's name in the config), or, without it, the history of every
metric of the config's targets fetched from the history API.

Missing steps are reported and filled (--fill); a series with more than half its steps missing is
refused. After training, every series keeps the forecaster (the network, seasonal-naive, seasonal
mean, Theta or their ensemble) that did best on its validation window; the choice and its error are
printed per series and saved with the model. deploy/examples/ has training configs for 5-minute and
hourly data with sizing guidance.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var src HistorySource
			if o.DatasetFile == "" {
				// Name the missing input before trying a cluster connection that would fail for
				// another reason (no kubeconfig).
				c, err := LoadTrainConfig(o.ConfigFile)
				if err != nil {
					return err
				}
				if len(c.Targets) == 0 {
					return errNoDataset
				}
				s, err := o.Kube.HistorySource()
				if err != nil {
					return err
				}
				src = s
			}
			_, err := RunTrain(cmd.Context(), o, src, time.Now(), cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigFile, "config-file", "", "training config file (YAML)")
	f.StringVar(&o.ModelSavePath, "model-save-path", "", "directory to save the model to")
	f.StringVar(&o.DatasetFile, "dataset-file", "", "CSV dataset (timestamp,value[,workload,metric]); without it, history is fetched")
	f.StringVar(&o.Fill, "fill", string(forecast.FillLinear), "how missing steps are filled: linear (interpolate), forward (repeat the last value) or zero")
	o.Kube.AddFlags(f)
	_ = cmd.MarkFlagRequired("config-file")
	_ = cmd.MarkFlagRequired("model-save-path")
	return cmd
}

// RunTrain runs `kapacity train`: src is used only without a dataset file; now ends the history range.
func RunTrain(ctx context.Context, o TrainOptions, src HistorySource, now time.Time, out io.Writer) (*forecast.Model, error) {
	if o.ConfigFile == "" {
		return nil, errors.New("--config-file is required")
	}
	if o.ModelSavePath == "" {
		return nil, errors.New("--model-save-path is required")
	}
	c, err := LoadTrainConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	rule := forecast.FillLinear
	if o.Fill != "" {
		if rule, err = forecast.ParseFillRule(o.Fill); err != nil {
			return nil, fmt.Errorf("--fill: %w", err)
		}
	}
	fc := c.ForecastConfig()
	step, _ := forecast.ParseFreq(fc.Freq)
	var series []forecast.Series
	var gaps []string
	if o.DatasetFile != "" {
		series, gaps, err = datasetSeries(o.DatasetFile, c, step, rule)
	} else {
		series, gaps, err = historySeries(ctx, src, c, step, now, rule)
	}
	if err != nil {
		return nil, err
	}
	for _, g := range gaps {
		fmt.Fprintln(out, g)
	}
	points := 0
	for _, s := range series {
		points += len(s.Values)
	}
	fmt.Fprintf(out, "training on %d series, %d points at %s (context %d, prediction %d, %d epochs max)\n",
		len(series), points, step, fc.ContextLength, fc.PredictionLength, fc.Epochs)
	start := time.Now()
	m, err := forecast.Train(series, fc, forecast.TrainOptions{OnEpoch: func(e forecast.EpochStats) {
		fmt.Fprintln(out, epochLine(e, fc.Epochs))
	}})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := m.Save(o.ModelSavePath); err != nil {
		return nil, fmt.Errorf("--model-save-path %s: %w", o.ModelSavePath, err)
	}
	writeChoices(out, m, series)
	fmt.Fprintf(out, "saved model (%d parameters, hidden size %d) to %s in %s\n", m.NumParams(), m.HiddenSize(), o.ModelSavePath, time.Since(start).Round(time.Millisecond))
	return m, nil
}

// errNoDataset is the error of `kapacity train` with neither a dataset nor targets to fetch.
var errNoDataset = errors.New("--dataset-file is required: the --config-file has no targets whose history could be fetched instead")

// maxChoiceLines is how many series writeChoices lists one by one before summarising.
const maxChoiceLines = 20

// writeChoices prints the forecaster each series chose and its validation error next to
// seasonal-naive's, then how many series chose each method.
func writeChoices(out io.Writer, m *forecast.Model, series []forecast.Series) {
	counts := map[string]int{}
	for i, s := range series {
		in := m.SeriesInfo(s.ID)
		if in == nil {
			continue
		}
		counts[in.Method]++
		if i < maxChoiceLines {
			fmt.Fprintln(out, choiceLine(s.ID, in))
		}
	}
	if len(series) > maxChoiceLines {
		fmt.Fprintf(out, "... and %d more series (kapacity forecast --series ID shows each)\n", len(series)-maxChoiceLines)
	}
	var parts []string
	for _, meth := range forecast.Methods {
		if counts[meth] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", meth, counts[meth]))
		}
	}
	fmt.Fprintf(out, "methods chosen: %s\n", strings.Join(parts, ", "))
}

// choiceLine says which forecaster a series uses and how it scored on validation.
func choiceLine(id string, in *forecast.SeriesInfo) string {
	if len(in.Validation) == 0 {
		return fmt.Sprintf("series %s: method %s (too short to validate)", displayID(id), in.Method)
	}
	c, n := in.Chosen(), in.Validation[forecast.MethodSeasonalNaive]
	return fmt.Sprintf("series %s: method %s, validation MASE %.3f sMAPE %.2f%% (seasonal-naive MASE %.3f sMAPE %.2f%%) over %d windows",
		displayID(id), in.Method, c.MASE, c.SMAPE, n.MASE, n.SMAPE, in.ValidationWindows)
}

// epochLine is the progress line of one epoch: a bar, the losses and whether the weights were kept.
func epochLine(e forecast.EpochStats, total int) string {
	const width = 20
	done := min(width, e.Epoch*width/max(total, 1))
	bar := strings.Repeat("#", done) + strings.Repeat(".", width-done)
	valid := "-"
	if !math.IsNaN(e.ValidLoss) {
		valid = fmt.Sprintf("%.5f", e.ValidLoss)
	}
	best := ""
	if e.Best {
		best = " *"
	}
	return fmt.Sprintf("[%s] epoch %d/%d train_loss=%.5f valid_loss=%s samples=%d %s%s",
		bar, e.Epoch, total, e.TrainLoss, valid, e.NumSamples, e.Elapsed.Round(time.Millisecond), best)
}

// datasetSeries reads the dataset CSV into one regular series per (workload, metric), gaps filled by
// rule; it returns a line per series with gaps.
func datasetSeries(path string, c *TrainConfig, step time.Duration, rule forecast.FillRule) ([]forecast.Series, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--dataset-file: %w", err)
	}
	defer f.Close()
	recs, labelled, err := readRecords(f, path)
	if err != nil {
		return nil, nil, fmt.Errorf("--dataset-file: %w", err)
	}
	groups := map[string][]Point{}
	for _, r := range recs {
		id := defaultSeriesID(c)
		if labelled {
			id = forecast.SeriesID(r.Workload, r.Metric)
		}
		if !math.IsNaN(r.Value) {
			groups[id] = append(groups[id], r.Point)
		}
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	series := make([]forecast.Series, 0, len(ids))
	var gaps []string
	for _, id := range ids {
		s, g, err := regularizeFill(id, groups[id], step, rule)
		if err != nil {
			return nil, nil, fmt.Errorf("--dataset-file %s, series %s: %w", path, displayID(id), err)
		}
		if l := gapLine(id, g, step, rule); l != "" {
			gaps = append(gaps, l)
		}
		series = append(series, s)
	}
	return series, gaps, nil
}

// defaultSeriesID names the series of an unlabelled (timestamp,value) dataset: the config's only target
// metric when there is exactly one, else "default".
func defaultSeriesID(c *TrainConfig) string {
	if len(c.Targets) == 1 && len(c.Targets[0].Metrics) == 1 {
		t := c.Targets[0]
		return forecast.SeriesID(workloadKey(t.WorkloadNamespace, t.WorkloadRef.Name), t.Metrics[0].Name)
	}
	return "default"
}

// historySeries fetches every target metric from the history API, gaps filled by rule.
func historySeries(ctx context.Context, src HistorySource, c *TrainConfig, step time.Duration, now time.Time, rule forecast.FillRule) ([]forecast.Series, []string, error) {
	if len(c.Targets) == 0 {
		return nil, nil, errNoDataset
	}
	if src == nil {
		return nil, nil, errors.New("no history source: give --dataset-file or a history API connection")
	}
	var series []forecast.Series
	var gaps []string
	for i, t := range c.Targets {
		length, _ := forecast.ParseFreq(t.HistoryLength)
		for j, m := range t.Metrics {
			q, err := metricQuery(t.WorkloadNamespace, t.WorkloadRef, m)
			if err != nil {
				return nil, nil, fmt.Errorf("targets[%d].metrics[%d]: %w", i, j, err)
			}
			pts, err := fetchPoints(ctx, src, q, now, length)
			if err != nil {
				return nil, nil, fmt.Errorf("targets[%d].metrics[%d] (%s): %w", i, j, m.Name, err)
			}
			id := forecast.SeriesID(workloadKey(t.WorkloadNamespace, t.WorkloadRef.Name), m.Name)
			s, g, err := regularizeFill(id, dropNaN(pts), step, rule)
			if err != nil {
				return nil, nil, fmt.Errorf("targets[%d].metrics[%d] (%s): %w", i, j, m.Name, err)
			}
			if l := gapLine(id, g, step, rule); l != "" {
				gaps = append(gaps, l)
			}
			series = append(series, s)
		}
	}
	return series, gaps, nil
}

func dropNaN(pts []Point) []Point {
	out := make([]Point, 0, len(pts))
	for _, p := range pts {
		if !math.IsNaN(p.Value) {
			out = append(out, p)
		}
	}
	return out
}
