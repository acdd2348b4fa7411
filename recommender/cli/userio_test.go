package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/forecast"
	"github.com/kapacitystack/kapacity/recommender/replay"
)

// runCommand runs a cobra command with args, returning its standard output and error output.
func runCommand(t *testing.T, cmd interface {
	SetArgs([]string)
	SetOut(io.Writer)
	SetErr(io.Writer)
	ExecuteContext(context.Context) error
}, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestReplayJSONToStdoutIsMachineOutputAlone: `kapacity replay --json -` must leave standard output to
// the JSON report, so that `| jq` works; the table and the progress go to standard error, which is not
// a terminal here, so it holds no carriage return.
func TestReplayJSONToStdoutIsMachineOutputAlone(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "traffic.csv")
	writeTraceCSV(t, trace, 24*12, "")
	out, errOut, err := runCommand(t, NewReplayCommand(), "--trace", trace, "--epochs", "2", "--policies", "hpa,predictive", "--json", "-")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	var rep struct{ Policies []replay.PolicyResult }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("standard output is not one JSON document: %v\n%.300s", err, out)
	}
	if len(rep.Policies) != 3 {
		t.Errorf("JSON has %d policies, want oracle, hpa, predictive", len(rep.Policies))
	}
	if !strings.Contains(errOut, "replica-h") {
		t.Errorf("the table should go to standard error:\n%s", errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("progress written with \\r to a non-terminal:\n%q", errOut)
	}
	if !strings.Contains(errOut, "train forecaster") {
		t.Errorf("progress lacks the training stage:\n%s", errOut)
	}
}

func TestReplayHelpShowsNoSentinelDefault(t *testing.T) {
	out, _, err := runCommand(t, NewReplayCommand(), "--help")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "-1ns") {
		t.Errorf("--help shows a -1ns default:\n%s", out)
	}
	if !strings.Contains(out, "--scale-up-ahead duration") || !strings.Contains(out, "--pareto") {
		t.Errorf("--help lacks --scale-up-ahead or --pareto:\n%s", out)
	}
	trace := filepath.Join(t.TempDir(), "traffic.csv")
	writeTraceCSV(t, trace, 48, "")
	if err := runReplayArgs([]string{"--trace", trace, "--scale-up-ahead", "-1m"}); err == nil || !strings.Contains(err.Error(), "--scale-up-ahead -1m0s: must not be negative") {
		t.Errorf("negative --scale-up-ahead: %v", err)
	}
}

// TestReplayReportWording checks two statements of the table: a ratio of 0 is a result ("0.000×"),
// never "-", and an oracle capped by --max-replicas says so.
func TestReplayReportWording(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "traffic.csv")
	writeTraceCSV(t, trace, 24*4, "")
	// 140 at the peak, 10 per pod at 100 %: the peak needs 24 pods at 60 %; at most 5 are allowed.
	out, errOut, err := runCommand(t, NewReplayCommand(), "--trace", trace, "--policies", "hpa", "--pod-capacity", "10",
		"--max-replicas", "5", "--train-fraction", "0.5")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "the oracle is capped there too") || !strings.Contains(out, "--max-replicas 5") {
		t.Errorf("no note that the oracle is capped by --max-replicas:\n%s", out)
	}
	out, errOut, err = runCommand(t, NewReplayCommand(), "--trace", trace, "--policies", "hpa", "--pod-capacity", "10")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if strings.Contains(out, "capped") {
		t.Errorf("a note on capping where nothing is capped:\n%s", out)
	}
	oracle := lineOf(out, "oracle ")
	if !strings.Contains(oracle, "0.000×") {
		t.Errorf("the oracle's violations vs hpa (0 minutes) should read 0.000×, not -:\n%s", oracle)
	}
}

func lineOf(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), strings.TrimSpace(prefix)) {
			return l
		}
	}
	return ""
}

// TestReplayPareto checks the sweep's outputs: the HPA at every target, every policy with the tuned
// HPA's replica-hours and a verdict, the best policy, the JSON and the frontier chart.
func TestReplayPareto(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "traffic.csv")
	writeTraceCSV(t, trace, 24*10, "")
	chart, js := filepath.Join(dir, "p.png"), filepath.Join(dir, "p.json")
	out, errOut, err := runCommand(t, NewReplayCommand(), "--trace", trace, "--epochs", "2", "--pareto",
		"--pareto-chart", chart, "--json", js, "--quiet")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	for _, want := range []string{"HPA at each swept CPU target", "15%", "tuned hpa replica-h", replay.PolicyPredictiveBurst, replay.PolicyBurst, "best: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var rep struct{ Pareto *replay.Pareto }
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Pareto == nil {
		t.Fatalf("JSON report: %v, pareto %v", err, rep.Pareto)
	}
	if len(rep.Pareto.HPA) != len(replay.DefaultSweep().HPATargets) || len(rep.Pareto.Frontier) == 0 || rep.Pareto.Best == nil {
		t.Errorf("pareto: %d HPA points, %d on the frontier, best %v", len(rep.Pareto.HPA), len(rep.Pareto.Frontier), rep.Pareto.Best)
	}
	for _, p := range rep.Pareto.Points {
		if p.Error == "" && !(p.TunedHPAReplicaHours > 0) {
			t.Errorf("%s q%.2f: tuned HPA replica-hours %v", p.Policy, p.Quantile, p.TunedHPAReplicaHours)
		}
	}
	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("pareto chart: %v", err)
	}
	if err := runReplayArgs([]string{"--trace", trace, "--pareto-chart", chart}); err == nil || !strings.Contains(err.Error(), "--pareto-chart needs --pareto") {
		t.Errorf("--pareto-chart without --pareto: %v", err)
	}
}

// TestTrainWithoutDatasetOrTargetsNamesTheFlag: no targets and no --dataset-file must name the missing
// flag, not fail on a kubeconfig the user never meant to use.
func TestTrainWithoutDatasetOrTargetsNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("freq: 1H\npredictionLength: 4\ncontextLength: 24\n"), 0o644)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none"))
	_, _, err := runCommand(t, NewTrainCommand(), "--config-file", cfg, "--model-save-path", filepath.Join(dir, "m"))
	if err == nil || !strings.Contains(err.Error(), "--dataset-file is required") || strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("err = %v, want it to name --dataset-file", err)
	}
}

// writeGappyCSV writes hourly points of a daily cycle, leaving out the hours for which skip is true.
func writeGappyCSV(t *testing.T, path string, n int, skip func(i int) bool) {
	t.Helper()
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i := 0; i < n; i++ {
		if skip(i) {
			continue
		}
		ts := t0.Add(time.Duration(i) * time.Hour)
		fmt.Fprintf(&b, "%s,%.3f\n", ts.Format(time.RFC3339), 100+40*math.Sin(2*math.Pi*float64(ts.Hour())/24))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrainReportsAndFillsGaps: missing steps are counted and filled (not zeros the loss then explodes
// on), a series that is mostly gaps is refused with the figures, and the forecaster each series uses
// is reported with its validation error.
func TestTrainReportsAndFillsGaps(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(tinyConfig), 0o644)
	tests := []struct {
		name    string
		skip    func(i int) bool
		fill    string
		wantOut []string
		wantErr string
	}{
		{"a few gaps are filled", func(i int) bool { return i%10 == 3 || (i > 100 && i < 110) }, "", []string{"steps of 1h0m0s missing", "filled by rule \"linear\"", "method ", "validation MASE"}, ""},
		// Whole days of zeros: the window scale's floor keeps the loss finite and small.
		{"zeros when asked for", func(i int) bool { return i/24%3 == 1 }, "zero", []string{"filled by rule \"zero\""}, ""},
		{"mostly gaps is refused", func(i int) bool { return i%3 != 0 }, "", nil, "are missing, more than the 50% allowed"},
		{"unknown rule", func(i int) bool { return false }, "mean", nil, "--fill: fill rule \"mean\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data.csv")
			writeGappyCSV(t, data, 24*14, tc.skip)
			var out bytes.Buffer
			m, err := RunTrain(context.Background(), TrainOptions{ConfigFile: cfg, ModelSavePath: filepath.Join(t.TempDir(), "m"), DatasetFile: data, Fill: tc.fill}, nil, t0, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("train: %v\n%s", err, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, l := range strings.Split(out.String(), "\n") {
				var loss float64
				if _, after, ok := strings.Cut(l, "train_loss="); ok {
					fmt.Sscan(after, &loss)
					if !(loss < 10) {
						t.Errorf("loss blew up: %s", l)
					}
				}
			}
			if m == nil {
				t.Fatal("no model")
			}
		})
	}
}

// TestForecastSeriesIDs: --series accepts NAMESPACE/NAME/METRIC, and an unknown one lists a few IDs
// and how many more, not the whole model.
func TestForecastSeriesIDs(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("timestamp,value,workload,metric\n")
	for s := 0; s < 8; s++ {
		for i := 0; i < 24*10; i++ {
			ts := t0.Add(time.Duration(i) * time.Hour)
			fmt.Fprintf(&b, "%s,%d,ns/web-%d,qps\n", ts.Format(time.RFC3339), 100+s+10*(ts.Hour()%6), s)
		}
	}
	data, cfg := filepath.Join(dir, "d.csv"), filepath.Join(dir, "c.yaml")
	os.WriteFile(data, []byte(b.String()), 0o644)
	os.WriteFile(cfg, []byte("freq: 1H\npredictionLength: 4\ncontextLength: 24\nhyperParams: {epochs: 2, samplesPerEpoch: 256}\n"), 0o644)
	model := filepath.Join(dir, "m")
	if _, err := RunTrain(context.Background(), TrainOptions{ConfigFile: cfg, ModelSavePath: model, DatasetFile: data}, nil, t0, io.Discard); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in.csv")
	writeTraceCSV(t, input, 48, "")
	var out bytes.Buffer
	err := RunForecast(context.Background(), ForecastOptions{ModelPath: model, Input: input, Output: filepath.Join(dir, "f.csv"), Series: "ns/web-3/qps"}, &out)
	if err != nil {
		t.Fatalf("--series ns/web-3/qps: %v", err)
	}
	if !strings.Contains(out.String(), "series ns/web-3 | qps: method ") {
		t.Errorf("summary does not name the method:\n%s", out.String())
	}
	err = RunForecast(context.Background(), ForecastOptions{ModelPath: model, Input: input, Output: filepath.Join(dir, "f.csv"), Series: "ns/nope/qps"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"ns/web-0/qps"`) || !strings.Contains(err.Error(), "and 3 more") || len(err.Error()) > 300 {
		t.Errorf("unknown series error %q: want a few IDs and the count of the others", err)
	}
	help, _, _ := runCommand(t, NewForecastCommand(), "--help")
	if !strings.Contains(help, "NAMESPACE/NAME/METRIC") {
		t.Errorf("--help does not document the series ID format:\n%s", help)
	}
}

// TestForecastQuantileColumn: --quantile adds the quantile as a column, never below the forecast for
// an upper quantile, and never negative.
func TestForecastQuantileColumn(t *testing.T) {
	dir := t.TempDir()
	model, _ := trainTiny(t, dir)
	input := filepath.Join(dir, "in.csv")
	writeTraceCSV(t, input, 24*3, "")
	outCSV := filepath.Join(dir, "f.csv")
	if err := RunForecast(context.Background(), ForecastOptions{ModelPath: model, Input: input, Output: outCSV, Quantile: 0.9, Horizons: 2}, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(outCSV)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "timestamp,forecast,q0.9,actual" {
		t.Fatalf("header %q", lines[0])
	}
	for _, l := range lines[1:] {
		var f, q float64
		parts := strings.Split(l, ",")
		fmt.Sscan(parts[1], &f)
		fmt.Sscan(parts[2], &q)
		if q < f || f < 0 {
			t.Errorf("row %q: quantile %v under the forecast %v, or a negative forecast", l, q, f)
		}
	}
	_ = forecast.FillLinear
}

// TestExampleTrainingConfigs parses the shipped training configs and trains each on synthetic data of
// its step (with fewer epochs): the examples work as documented.
func TestExampleTrainingConfigs(t *testing.T) {
	for _, tc := range []struct {
		file string
		step time.Duration
		days int
	}{{"train-hourly.yaml", time.Hour, 28}, {"train-5min.yaml", 5 * time.Minute, 15}} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "training", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseTrainConfig(raw)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if step, _ := forecast.ParseFreq(c.Freq); step != tc.step || len(c.Targets) != 1 {
				t.Fatalf("%s: freq %s, %d targets", tc.file, c.Freq, len(c.Targets))
			}
			dir := t.TempDir()
			c.HyperParams.Epochs = 2
			fast, _ := json.Marshal(c)
			cfg := filepath.Join(dir, "c.yaml")
			os.WriteFile(cfg, fast, 0o644)
			var b strings.Builder
			b.WriteString("timestamp,value\n")
			n := int(time.Duration(tc.days) * 24 * time.Hour / tc.step)
			for i := 0; i < n; i++ {
				ts := t0.Add(time.Duration(i) * tc.step)
				fmt.Fprintf(&b, "%d,%.2f\n", ts.Unix(), 100+50*math.Sin(2*math.Pi*float64(ts.Hour())/24))
			}
			data := filepath.Join(dir, "d.csv")
			os.WriteFile(data, []byte(b.String()), 0o644)
			var out bytes.Buffer
			m, err := RunTrain(context.Background(), TrainOptions{ConfigFile: cfg, ModelSavePath: filepath.Join(dir, "m"), DatasetFile: data}, nil, t0, &out)
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.file, err, out.String())
			}
			if m.HiddenSize() < 4 || m.HiddenSize() > 32 {
				t.Errorf("%s: hidden size %d, want it sized to the data within 4..32", tc.file, m.HiddenSize())
			}
		})
	}
}
