package forecast

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/synth"
)

func TestFillGaps(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		in      []float64
		rule    FillRule
		want    []float64
		missing int
		wantErr string
	}{
		{"no gap", []float64{1, 2}, FillLinear, []float64{1, 2}, 0, ""},
		{"interpolated", []float64{1, nan, nan, 4, 5}, FillLinear, []float64{1, 2, 3, 4, 5}, 2, ""},
		{"forward", []float64{1, nan, nan, 4, 5}, FillForward, []float64{1, 1, 1, 4, 5}, 2, ""},
		{"zero only when asked", []float64{1, nan, 3}, FillZero, []float64{1, 0, 3}, 1, ""},
		{"leading and trailing take the nearest value", []float64{nan, 2, 3, nan}, FillLinear, []float64{2, 2, 3, 3}, 2, ""},
		{"mostly gaps refused", []float64{1, nan, nan, nan, 5}, FillLinear, nil, 3, "3 of 5 steps (60%) are missing"},
		{"all gaps refused", []float64{nan, nan}, FillLinear, nil, 2, "all 2 steps are missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := append([]float64(nil), tc.in...)
			g, err := FillGaps(v, tc.rule)
			if g.Missing != tc.missing {
				t.Errorf("missing %d, want %d", g.Missing, tc.missing)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if v[i] != tc.want[i] {
					t.Fatalf("filled %v, want %v", v, tc.want)
				}
			}
		})
	}
	if _, err := ParseFillRule("mean"); err == nil || !strings.Contains(err.Error(), "linear") {
		t.Errorf("ParseFillRule(mean) = %v, want an error listing the rules", err)
	}
}

// quickConfig is a small hourly model that trains in about a second.
func quickConfig() Config {
	c := DefaultConfig()
	c.Freq, c.ContextLength, c.PredictionLength = "1H", 48, 24
	c.Epochs, c.Patience, c.SamplesPerEpoch, c.LearningRate = 8, 3, 512, 3e-3
	return c
}

func synthSeries(t *testing.T, f synth.Family, seed uint64, n int) Series {
	t.Helper()
	s, err := synth.Generate(f, seed, n, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return Series{ID: s.ID, Start: s.Start, Step: s.Step, Values: s.Values}
}

// TestEverySeriesKeepsItsBestValidatedMethod trains on series of different kinds and checks the promise
// of the selection: each series' chosen method scored no worse on its validation window than
// seasonal-naive and every other candidate, the choice is reported with its scores, and it survives a
// save and load.
func TestEverySeriesKeepsItsBestValidatedMethod(t *testing.T) {
	var series []Series
	for i, f := range []synth.Family{synth.Clean, synth.Trend, synth.LevelShift, synth.Noisy} {
		series = append(series, synthSeries(t, f, uint64(i+1), 24*7*4))
	}
	m, err := Train(series, quickConfig(), TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range series {
		in := m.SeriesInfo(s.ID)
		if in == nil || len(in.Validation) < 5 || in.ValidationWindows < 2 {
			t.Fatalf("%s: info %+v, want scores of every candidate over several windows", s.ID, in)
		}
		chosen, naive := in.Chosen(), in.Validation[MethodSeasonalNaive]
		t.Logf("%s: %s (MASE %.3f, sMAPE %.2f); seasonal-naive MASE %.3f, sMAPE %.2f", s.ID, in.Method, chosen.MASE, chosen.SMAPE, naive.MASE, naive.SMAPE)
		rel := func(sc Score) float64 { return sc.MASE/naive.MASE + sc.SMAPE/naive.SMAPE }
		for meth, sc := range in.Validation {
			if rel(sc) < rel(chosen)-1e-12 {
				t.Errorf("%s: %s scored %.4f on validation, better than the chosen %s (%.4f)", s.ID, meth, rel(sc), in.Method, rel(chosen))
			}
		}
	}
	// A level shift breaks seasonal-naive; the chosen method must have adapted.
	if in := m.SeriesInfo(series[2].ID); in.Method == MethodSeasonalNaive || in.Method == MethodSeasonalMean {
		t.Errorf("level shift: chose %s, which repeats the old level", in.Method)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range series {
		q := Query{ID: s.ID, History: s.Values, Last: s.TimeAt(len(s.Values) - 1)}
		a, _ := m.PredictBatch([]Query{q})
		b, err := got.PredictBatch([]Query{q})
		if err != nil {
			t.Fatal(err)
		}
		for j := range a[0] {
			if a[0][j] != b[0][j] {
				t.Fatalf("%s step %d: reloaded %v, trained %v", s.ID, j, b[0][j], a[0][j])
			}
		}
	}
}

// TestForecastsOfTrafficAreNeverNegative trains on traffic falling towards zero (where a trend or a
// network extrapolates below it) and checks every method and quantile stays at or above zero.
func TestForecastsOfTrafficAreNeverNegative(t *testing.T) {
	s := Series{ID: "falling", Start: synth.Start, Step: time.Hour, Values: make([]float64, 24*7*3)}
	for i := range s.Values {
		s.Values[i] = math.Max(0, 100-0.25*float64(i)+20*math.Sin(2*math.Pi*float64(i)/24))
	}
	m, err := Train([]Series{s}, quickConfig(), TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := []Query{{ID: s.ID, History: s.Values, Last: s.TimeAt(len(s.Values) - 1)}}
	for _, meth := range Methods {
		out, err := m.PredictMethod(q, meth)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range out[0] {
			if v < 0 {
				t.Fatalf("%s: step %d forecasts %v", meth, j, v)
			}
		}
	}
	for _, p := range []float64{0.1, 0.5, 0.9} {
		out, _ := m.PredictBatchQuantile(q, p)
		for j, v := range out[0] {
			if v < 0 {
				t.Fatalf("quantile %v: step %d forecasts %v", p, j, v)
			}
		}
	}
}

// TestQuantilesAreOrderedAndCoverTheMedian checks the probabilistic output: quantiles never cross, the
// point forecast lies between the 0.1 and 0.9 quantiles, and the upper quantile is above the median on
// a noisy series (the heads learned a band).
func TestQuantilesAreOrderedAndCoverTheMedian(t *testing.T) {
	series := []Series{synthSeries(t, synth.Noisy, 3, 24*7*4)}
	cfg := quickConfig()
	cfg.Methods = []string{MethodNetwork}
	m, err := Train(series, cfg, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := series[0]
	q := []Query{{ID: s.ID, History: s.Values, Last: s.TimeAt(len(s.Values) - 1)}}
	point, _ := m.PredictBatch(q)
	var prev []float64
	wider := 0
	for _, p := range []float64{0.1, 0.3, 0.5, 0.7, 0.9, 0.95} {
		out, err := m.PredictBatchQuantile(q, p)
		if err != nil {
			t.Fatal(err)
		}
		for j := range out[0] {
			if prev != nil && out[0][j] < prev[j] {
				t.Fatalf("quantile %v at step %d: %v below the lower quantile's %v", p, j, out[0][j], prev[j])
			}
			if p == 0.5 && out[0][j] != point[0][j] {
				t.Fatalf("step %d: 0.5 quantile %v is not the point forecast %v", j, out[0][j], point[0][j])
			}
			if p == 0.9 && out[0][j] > point[0][j] {
				wider++
			}
		}
		prev = out[0]
	}
	if wider < len(point[0])*3/4 {
		t.Errorf("the 0.9 quantile is above the median at only %d of %d steps", wider, len(point[0]))
	}
	if _, err := m.PredictBatchQuantile(q, 1); err == nil {
		t.Error("quantile 1 accepted")
	}
}

// TestNetworkSizesItselfToTheData checks that with hiddenSize 0 one short series gets a small network and
// many series a wider one.
func TestNetworkSizesItselfToTheData(t *testing.T) {
	a := Arch{NumSeries: 1, ContextLength: 168, PredictionLength: 48, Cardinalities: []int{24, 8, 32}, NumLayers: 4}
	if h := autoHiddenSize(a, 700); h != minAutoHidden {
		t.Errorf("700 points: hidden %d, want %d", h, minAutoHidden)
	}
	if h := autoHiddenSize(a, 100*800); h != maxAutoHidden {
		t.Errorf("80,000 points: hidden %d, want %d", h, maxAutoHidden)
	}
	a.HiddenSize = autoHiddenSize(a, 700)
	if n := newNetwork(a).numParams(); n > 40_000 {
		t.Errorf("700 points get %d parameters", n)
	}
}

// TestFormatOneModelStillLoads rewrites a single-head model as format 1 (no series.json, no quantile
// heads in the network shape, version 1 in the manifest and the weights) and checks it loads and
// forecasts every series with the network, as it did.
func TestFormatOneModelStillLoads(t *testing.T) {
	s := synthSeries(t, synth.Clean, 5, 24*7*3)
	cfg := quickConfig()
	cfg.Quantiles, cfg.Methods = []float64{0.5}, []string{MethodNetwork}
	m, err := Train([]Series{s}, cfg, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := []Query{{ID: s.ID, History: s.Values, Last: s.TimeAt(len(s.Values) - 1)}}
	want, _ := m.PredictBatch(q)
	m.net.arch.Quantiles = nil // format 1: one head, implicitly the median
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(dir, infoFile)))
	must(os.WriteFile(filepath.Join(dir, manifestFile), []byte(`{"format":"kapacity-sntsf","version":1}`), 0o644))
	w, err := os.ReadFile(filepath.Join(dir, weightsFile))
	must(err)
	binary.LittleEndian.PutUint32(w[4:], 1)
	binary.LittleEndian.PutUint32(w[len(w)-4:], crc32.ChecksumIEEE(w[:len(w)-4]))
	must(os.WriteFile(filepath.Join(dir, weightsFile), w, 0o644))
	got, err := Load(dir)
	if err != nil {
		t.Fatalf("format 1 model: %v", err)
	}
	if got.SeriesInfo(s.ID) != nil || len(got.Quantiles()) != 1 {
		t.Fatalf("format 1 model: info %v, quantiles %v; want the network alone", got.SeriesInfo(s.ID), got.Quantiles())
	}
	have, err := got.PredictBatch(q)
	if err != nil {
		t.Fatal(err)
	}
	for j := range want[0] {
		if math.Abs(have[0][j]-want[0][j]) > 1e-9*math.Max(1, math.Abs(want[0][j])) {
			t.Fatalf("step %d: format 1 model predicts %v, the model it was %v", j, have[0][j], want[0][j])
		}
	}
}
