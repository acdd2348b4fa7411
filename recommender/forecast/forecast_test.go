package forecast

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// synthetic returns an hourly series with a daily cycle, a weekly (weekend) dip and Gaussian noise.
func synthetic(id string, n int, level, noise float64, seed uint64) Series {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // a Monday
	s := Series{ID: id, Start: start, Step: time.Hour, Values: make([]float64, n)}
	for i := range s.Values {
		t := s.TimeAt(i)
		v := level * (1 + 0.4*math.Sin(2*math.Pi*float64(t.Hour())/24))
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v *= 0.6
		}
		s.Values[i] = v + noise*rng.NormFloat64()
	}
	return s
}

func testConfig() Config {
	c := DefaultConfig()
	c.Freq, c.ContextLength, c.PredictionLength = "1H", 24, 6
	c.HiddenSize, c.Epochs, c.Patience, c.SamplesPerEpoch, c.LearningRate = 32, 40, 8, 1024, 3e-3
	return c
}

// rolling forecasts test in consecutive horizons from the model and from seasonal-naive.
func rolling(t *testing.T, m *Model, full Series, cut, season int) (model, naive Accuracy) {
	t.Helper()
	p := m.Config.PredictionLength
	var qs []Query
	var act, fn []float64
	for o := cut; o+p <= len(full.Values); o += p {
		qs = append(qs, Query{ID: full.ID, History: full.Values[:o], Last: full.TimeAt(o - 1)})
		act = append(act, full.Values[o:o+p]...)
		fn = append(fn, SeasonalNaive(full.Values[:o], season, p)...)
	}
	out, err := m.PredictBatch(qs)
	if err != nil {
		t.Fatal(err)
	}
	var fm []float64
	for _, o := range out {
		fm = append(fm, o...)
	}
	train := full.Values[:cut]
	return Evaluate(act, fm, train, season), Evaluate(act, fn, train, season)
}

func TestForecasterBeatsSeasonalNaive(t *testing.T) {
	const n, cut = 24 * 7 * 10, 24 * 7 * 8
	full := []Series{synthetic("a", n, 100, 6, 1), synthetic("b", n, 1000, 60, 2)}
	var train []Series
	for _, s := range full {
		tr := s
		tr.Values = s.Values[:cut]
		train = append(train, tr)
	}
	cfg := testConfig()
	m1, err := Train(train, cfg, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Train(train, cfg, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	season := SeasonLength(time.Hour, cut)
	if season != 168 {
		t.Fatalf("season = %d, want a week (168)", season)
	}
	for _, s := range full {
		acc, naive := rolling(t, m1, s, cut, season)
		acc2, _ := rolling(t, m2, s, cut, season)
		t.Logf("%s: model MAE %.3f sMAPE %.2f%%, seasonal-naive MAE %.3f sMAPE %.2f%%", s.ID, acc.MAE, acc.SMAPE, naive.MAE, naive.SMAPE)
		if acc.MAE >= naive.MAE {
			t.Errorf("%s: model MAE %.3f does not beat seasonal-naive %.3f", s.ID, acc.MAE, naive.MAE)
		}
		if acc != acc2 {
			t.Errorf("%s: same seed, different results: %+v vs %+v", s.ID, acc, acc2)
		}
	}
}

// TestGradients checks the analytic gradients against central finite differences on a tiny network, with
// the loss ½‖out − y‖² (smooth, unlike L1).
func TestGradients(t *testing.T) {
	a := Arch{NumSeries: 2, ContextLength: 3, PredictionLength: 2, Cardinalities: []int{5, 4}, HiddenSize: 6, NumLayers: 2}
	rng := rand.New(rand.NewPCG(3, 4))
	net := newNetwork(a)
	net.init(rng)
	var samples []*sample
	for i := 0; i < 3; i++ {
		s := &sample{series: i % 2, x: make([]float64, 3), y: make([]float64, 2), start: []int{i, i + 1}, end: []int{4 - i, 3 - i}}
		for j := range s.x {
			s.x[j] = rng.NormFloat64()
		}
		for j := range s.y {
			s.y[j] = rng.NormFloat64()
		}
		samples = append(samples, s)
	}
	bt := newBatch(a, len(samples))
	loss := func() float64 {
		net.forward(samples, bt)
		l := 0.0
		for i, s := range samples {
			for j, y := range s.y {
				d := bt.out[i*2+j] - y
				l += 0.5 * d * d
			}
		}
		return l
	}
	loss()
	for i, s := range samples {
		for j, y := range s.y {
			bt.dout[i*2+j] = bt.out[i*2+j] - y
		}
	}
	g := newNetwork(a)
	net.backward(samples, bt, g)
	gt := g.tensors()
	for ti, w := range net.tensors() {
		for k := range w.data {
			old := w.data[k]
			const h = 1e-6
			w.data[k] = old + h
			lp := loss()
			w.data[k] = old - h
			lm := loss()
			w.data[k] = old
			num := (lp - lm) / (2 * h)
			if diff := math.Abs(num - gt[ti].data[k]); diff > 1e-6*math.Max(1, math.Abs(num)) {
				t.Fatalf("%s[%d]: analytic %g, numeric %g", w.name, k, gt[ti].data[k], num)
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := synthetic("ns/app\x00qps", 24*7*3, 50, 2, 9)
	cfg := testConfig()
	cfg.Epochs = 2
	m, err := Train([]Series{s}, cfg, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	last := s.TimeAt(len(s.Values) - 1)
	want, _ := m.Predict(s.ID, s.Values, last)
	have, err := got.Predict(s.ID, s.Values, last)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if want[i] != have[i] {
			t.Fatalf("step %d: reloaded model predicts %v, trained %v", i, have[i], want[i])
		}
	}
	if !reflect.DeepEqual(got.Config, m.Config) || !reflect.DeepEqual(got.Info, m.Info) {
		t.Fatalf("config %+v, want %+v", got.Config, m.Config)
	}
	if _, err := got.Predict("other", s.Values, last); err == nil || !strings.Contains(err.Error(), "not in the model") {
		t.Fatalf("unknown series: err = %v", err)
	}

	for _, tc := range []struct {
		name, file, content, wantErr string
	}{
		{"newer version", manifestFile, `{"format":"kapacity-sntsf","version":3}`, "version 3 is not supported"},
		{"other format", manifestFile, `{"format":"torch","version":1}`, `format "torch"`},
		{"corrupt weights", weightsFile, "KSNW0000000000000000", "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := t.TempDir()
			if err := m.Save(bad); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bad, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestBaselinesAndMetrics(t *testing.T) {
	hist := []float64{1, 2, 3, 4, 5, 6}
	for _, tc := range []struct {
		name      string
		season, h int
		want      []float64
	}{
		{"last value", 1, 3, []float64{6, 6, 6}},
		{"season 3", 3, 4, []float64{4, 5, 6, 4}},
		{"season longer than history", 10, 2, []float64{6, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SeasonalNaive(hist, tc.season, tc.h)
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	acc := Evaluate([]float64{1, 2, 0}, []float64{2, 2, 0}, []float64{0, 1, 2, 3}, 1)
	want := Accuracy{MAE: 1.0 / 3, RMSE: math.Sqrt(1.0 / 3), MASE: 1.0 / 3, SMAPE: 100 * (2.0 / 3) / 3, N: 3}
	if math.Abs(acc.MAE-want.MAE) > 1e-12 || math.Abs(acc.RMSE-want.RMSE) > 1e-12 || math.Abs(acc.MASE-want.MASE) > 1e-12 || math.Abs(acc.SMAPE-want.SMAPE) > 1e-12 {
		t.Fatalf("got %+v, want %+v", acc, want)
	}
	for _, tc := range []struct {
		step time.Duration
		n    int
		want int
	}{{time.Hour, 400, 168}, {time.Hour, 100, 24}, {time.Hour, 30, 1}, {5 * time.Minute, 4000, 288}} {
		if got := SeasonLength(tc.step, tc.n); got != tc.want {
			t.Errorf("SeasonLength(%v, %d) = %d, want %d", tc.step, tc.n, got, tc.want)
		}
	}
}

func TestRegularize(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Regularize("x", []time.Time{t0.Add(20 * time.Minute), t0, t0.Add(5 * time.Minute)}, []float64{9, 1, 3}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The empty bucket is a gap (NaN), never a 0 the source did not report.
	if !s.Start.Equal(t0) || len(s.Values) != 3 || s.Values[0] != 2 || !math.IsNaN(s.Values[1]) || s.Values[2] != 9 {
		t.Fatalf("got %v %v, want %v [2 NaN 9]", s.Start, s.Values, t0)
	}
	for _, f := range []string{"min", "1min", "10min", "H", "1H", "D", "1D"} {
		if _, err := ParseFreq(f); err != nil {
			t.Errorf("ParseFreq(%q): %v", f, err)
		}
	}
	if _, err := ParseFreq("1W"); err == nil {
		t.Error("ParseFreq(1W) accepted")
	}
}
