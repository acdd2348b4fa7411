package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/forecast"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// writeTraceCSV writes n hourly points of a daily sine in the traces' format ("YYYY-MM-DD HH:MM:SS").
func writeTraceCSV(t *testing.T, path string, n int, labels string) {
	t.Helper()
	var b strings.Builder
	if labels == "" {
		b.WriteString("timestamp,value\n")
	} else {
		b.WriteString("timestamp,value,workload,metric\n")
	}
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * time.Hour)
		v := 100 + 40*math.Sin(2*math.Pi*float64(ts.Hour())/24)
		fmt.Fprintf(&b, "%s,%.3f", ts.Format("2006-01-02 15:04:05"), v)
		if labels != "" {
			b.WriteString("," + labels)
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

const tinyConfig = `
targets:
- workloadNamespace: default
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  historyLength: 7D
  metrics:
  - name: qps
    type: Pods
    pods:
      metric: {name: http_requests}
      target: {type: AverageValue, averageValue: "1"}
freq: 1H
predictionLength: 4
contextLength: 24
hyperParams: {learningRate: 0.003, epochs: 6, batchSize: 32, hiddenSize: 16, patience: 3}
`

func trainTiny(t *testing.T, dir string) (string, *bytes.Buffer) {
	t.Helper()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(tinyConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.csv")
	writeTraceCSV(t, data, 24*14, "")
	model := filepath.Join(dir, "model")
	var out bytes.Buffer
	start := time.Now()
	if _, err := RunTrain(context.Background(), TrainOptions{ConfigFile: cfg, ModelSavePath: model, DatasetFile: data}, nil, t0, &out); err != nil {
		t.Fatalf("RunTrain: %v\n%s", err, out.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("training took %s", d)
	}
	return model, &out
}

func TestTrainThenLoad(t *testing.T) {
	dir := t.TempDir()
	model, out := trainTiny(t, dir)
	if n := strings.Count(out.String(), "] epoch "); n < 1 || n > 6 {
		t.Errorf("want 1..6 epoch lines, got %d:\n%s", n, out)
	}
	if !strings.Contains(out.String(), "train_loss=") || !strings.Contains(out.String(), "saved model") {
		t.Errorf("progress output lacks losses or the summary:\n%s", out)
	}
	m, err := forecast.Load(model)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := forecast.SeriesID("default/web", "qps")
	if _, ok := m.Series[want]; !ok || len(m.Series) != 1 {
		t.Errorf("series map %v, want only %q", m.Series, want)
	}
	if m.Config.ContextLength != 24 || m.Config.PredictionLength != 4 || m.Config.HiddenSize != 16 {
		t.Errorf("config not applied: %+v", m.Config)
	}
}

func TestForecastCSVAndChart(t *testing.T) {
	dir := t.TempDir()
	model, _ := trainTiny(t, dir)
	input := filepath.Join(dir, "in.csv")
	writeTraceCSV(t, input, 24*3, "")
	tests := []struct {
		name              string
		holdout, horizons int
		wantRows          int
		wantActuals       int
	}{
		{"one horizon", 0, 0, 4, 0},
		{"holdout covers two horizons", 6, 0, 8, 6},
		{"explicit horizons", 0, 3, 12, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outCSV, chart := filepath.Join(t.TempDir(), "f.csv"), filepath.Join(t.TempDir(), "f.png")
			var log bytes.Buffer
			err := RunForecast(context.Background(), ForecastOptions{ModelPath: model, Input: input, Output: outCSV, Chart: chart,
				Holdout: tc.holdout, Horizons: tc.horizons}, &log)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(outCSV)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(rows[0], ","); got != "timestamp,forecast,actual" {
				t.Errorf("header %q", got)
			}
			if len(rows)-1 != tc.wantRows {
				t.Fatalf("%d rows, want %d", len(rows)-1, tc.wantRows)
			}
			actuals := 0
			cut := t0.Add(time.Duration(24*3-tc.holdout) * time.Hour)
			for i, r := range rows[1:] {
				ts, err := time.Parse(time.RFC3339, r[0])
				if err != nil || !ts.Equal(cut.Add(time.Duration(i)*time.Hour)) {
					t.Errorf("row %d timestamp %q (err %v), want %s", i, r[0], err, cut.Add(time.Duration(i)*time.Hour))
				}
				if v, err := parseFloat(r[1]); err != nil || math.IsNaN(v) || v < 0 || v > 300 {
					t.Errorf("row %d forecast %q implausible", i, r[1])
				}
				if r[2] != "" {
					actuals++
				}
			}
			if actuals != tc.wantActuals {
				t.Errorf("%d actuals, want %d", actuals, tc.wantActuals)
			}
			pf, err := os.Open(chart)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			img, err := png.Decode(pf)
			if err != nil {
				t.Fatalf("chart is not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 200 {
				t.Errorf("chart size %v", b)
			}
		})
	}
}

func TestForecastErrors(t *testing.T) {
	dir := t.TempDir()
	model, _ := trainTiny(t, dir)
	short := filepath.Join(dir, "short.csv")
	writeTraceCSV(t, short, 10, "")
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("time,v\n1,2\n"), 0o644)
	tests := []struct {
		name string
		o    ForecastOptions
		want string
	}{
		{"missing model", ForecastOptions{ModelPath: filepath.Join(dir, "nope"), Input: short, Output: "x"}, "--model-path"},
		{"short input", ForecastOptions{ModelPath: model, Input: short, Output: filepath.Join(dir, "o.csv")}, "needs a context of 24"},
		{"bad header", ForecastOptions{ModelPath: model, Input: bad, Output: filepath.Join(dir, "o.csv")}, "lacks the timestamp and value"},
		{"unknown series", ForecastOptions{ModelPath: model, Input: short, Output: "x", Series: "x/y"}, "--series \"x/y\""},
		{"negative holdout", ForecastOptions{ModelPath: model, Input: short, Output: "x", Holdout: -1}, "--holdout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := RunForecast(context.Background(), tc.o, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTrainConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "freq: 10min\npredictionLength: 3\ncontextLength: 7\nhyperParams: {learningRate: 0.001, epochs: 100, batchSize: 32}\n", ""},
		{"unknown field", "freq: 10min\npredictionLength: 3\ncontextLength: 7\nfoo: 1\n", `unknown field "foo"`},
		{"bad freq", "freq: 7X\npredictionLength: 3\ncontextLength: 7\n", "freq:"},
		{"missing freq", "predictionLength: 3\ncontextLength: 7\n", "freq: required"},
		{"zero prediction", "freq: 1H\ncontextLength: 7\n", "predictionLength: 0"},
		{"negative epochs", "freq: 1H\npredictionLength: 3\ncontextLength: 7\nhyperParams: {epochs: -1}\n", "hyperParams.epochs"},
		{"wrong type", "freq: 1H\npredictionLength: three\ncontextLength: 7\n", "predictionLength"},
		{"target without history", "freq: 1H\npredictionLength: 3\ncontextLength: 7\ntargets:\n- workloadNamespace: a\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n  metrics: [{name: q, type: External, external: {metric: {name: m}, target: {type: Value, value: '1'}}}]\n", "targets[0].historyLength: required"},
		{"metric without name", "freq: 1H\npredictionLength: 3\ncontextLength: 7\ntargets:\n- workloadNamespace: a\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n  historyLength: 1D\n  metrics: [{type: External, external: {metric: {name: m}, target: {type: Value, value: '1'}}}]\n", "targets[0].metrics[0].name: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTrainConfig([]byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func parseFloat(s string) (float64, error) {
	var v float64
	_, err := fmt.Sscan(s, &v)
	return v, err
}
