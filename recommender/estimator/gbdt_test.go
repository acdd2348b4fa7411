package estimator

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// residualSeries returns n rows in time order (10-minute steps) with the residual model's time features
// [minute of day, weekday] and an unrelated uniform column, and a target that is either pure noise or a
// daily shape of the minute plus noise.
func residualSeries(n int, learnable bool, seed uint64) (x [][]float64, y []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; i++ {
		minute := float64(i%144) * 10
		x = append(x, []float64{minute, float64(i / 144 % 7), rng.Float64()})
		v := rng.NormFloat64()
		if learnable {
			v = 3*math.Sin(2*math.Pi*minute/1440) + 0.5*v
		}
		y = append(y, v)
	}
	return x, y
}

func validMSE(b *Booster, x [][]float64, y []float64) float64 {
	s := 0.0
	for i := range x {
		d := y[i] - b.Predict(x[i])
		s += d * d
	}
	return s / float64(len(x))
}

// rounds is the number of boosting rounds a booster kept: 0 for the starting score alone.
func rounds(b *Booster) int {
	if len(b.Trees) == 1 && b.Trees[0].NumLeaves == 1 {
		return 0
	}
	return len(b.Trees)
}

func TestGBDTEarlyStopping(t *testing.T) {
	const n = 2016 // two weeks of 10-minute rows
	for _, tc := range []struct {
		name                 string
		learnable            bool
		minRounds            int
		minKept, maxKept     int
		wantBelowFirstByHalf bool // the kept model's validation MSE is under half the first round's
	}{
		{"pure noise", false, 0, 0, 3, false},
		{"pure noise, 2 rounds minimum", false, 2, 2, 5, false},
		{"daily shape", true, 0, 20, 50, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := residualSeries(n, tc.learnable, 1)
			cfg := DefaultGBDTConfig()
			cfg.MinRounds = tc.minRounds
			b, err := TrainGBDT(x, y, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			nt := n - int(math.Round(cfg.ValidFraction*n))
			xv, yv := x[nt:], y[nt:]
			fixedCfg := cfg
			fixedCfg.Patience = 0
			fixed, err := TrainGBDT(x[:nt], y[:nt], nil, fixedCfg) // the same training rows, all 50 rounds
			if err != nil {
				t.Fatal(err)
			}
			kept, first, all := validMSE(b, xv, yv), validMSE(&Booster{Trees: fixed.Trees[:1]}, xv, yv), validMSE(fixed, xv, yv)
			t.Logf("%d rounds kept; validation MSE %.4f (1 round %.4f, %d rounds %.4f)", rounds(b), kept, first, len(fixed.Trees), all)
			if r := rounds(b); r < tc.minKept || r > tc.maxKept {
				t.Errorf("kept %d rounds, want %d..%d", r, tc.minKept, tc.maxKept)
			}
			if kept > all {
				t.Errorf("validation MSE %.4f with early stopping, %.4f with all %d rounds", kept, all, len(fixed.Trees))
			}
			if tc.wantBelowFirstByHalf && !(kept < 0.5*first) {
				t.Errorf("validation MSE %.4f with %d rounds, not well below 1 round's %.4f", kept, rounds(b), first)
			}
			// The kept model, a constant one included, survives LightGBM's text format.
			var sb strings.Builder
			if err := b.WriteLightGBM(&sb); err != nil {
				t.Fatal(err)
			}
			b2, err := ParseLightGBM(strings.NewReader(sb.String()))
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, sb.String())
			}
			for _, r := range xv {
				if p, p2 := b.Predict(r), b2.Predict(r); p != p2 {
					t.Fatalf("reloaded model predicts %v, trained %v", p2, p)
				}
			}
		})
	}
}

// The model written is the best iteration's, and training twice writes the same bytes.
func TestGBDTEarlyStoppingWritesBestIterationDeterministically(t *testing.T) {
	x, y := residualSeries(1000, true, 2)
	cfg := DefaultGBDTConfig()
	cfg.NumTrees = 200 // more than the validation loss can use, so early stopping ends training
	var texts [2]string
	var b *Booster
	for i := range texts {
		var err error
		if b, err = TrainGBDT(x, y, nil, cfg); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := b.WriteLightGBM(&sb); err != nil {
			t.Fatal(err)
		}
		texts[i] = sb.String()
	}
	if texts[0] != texts[1] {
		t.Fatal("two trainings on the same rows wrote different models")
	}
	if len(b.Trees) >= cfg.NumTrees {
		t.Fatalf("kept all %d trees; early stopping never stopped", len(b.Trees))
	}
	if got := strings.Count(texts[0], "\nTree="); got != len(b.Trees) {
		t.Errorf("model file has %d trees, booster %d", got, len(b.Trees))
	}
	b2, err := ParseLightGBM(strings.NewReader(texts[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range x {
		if p, p2 := b.Predict(r), b2.Predict(r); p != p2 {
			t.Fatalf("reloaded model predicts %v, trained %v", p2, p)
		}
	}
}

func TestGBDTEarlyStoppingConfig(t *testing.T) {
	x, y := residualSeries(100, true, 3)
	for _, tc := range []struct {
		name    string
		rows    int
		edit    func(*GBDTConfig)
		wantErr string
	}{
		{"valid fraction 0", 100, func(c *GBDTConfig) { c.ValidFraction = 0 }, "ValidFraction"},
		{"valid fraction 1", 100, func(c *GBDTConfig) { c.ValidFraction = 1 }, "ValidFraction"},
		{"no validation row", 2, func(c *GBDTConfig) { c.ValidFraction = 0.1 }, "cannot be split"},
		{"min rounds above the best", 100, func(c *GBDTConfig) { c.MinRounds = 30 }, ""},
		{"off", 100, func(c *GBDTConfig) { c.Patience, c.ValidFraction = 0, 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultGBDTConfig()
			tc.edit(&cfg)
			b, err := TrainGBDT(x[:tc.rows], y[:tc.rows], nil, cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rounds(b) < cfg.MinRounds {
				t.Errorf("kept %d rounds, want at least %d", rounds(b), cfg.MinRounds)
			}
			if cfg.Patience == 0 && len(b.Trees) != cfg.NumTrees {
				t.Errorf("without early stopping kept %d trees, want %d", len(b.Trees), cfg.NumTrees)
			}
		})
	}
}

// TestEveryTrainedModelPredictsIdenticallyInLeaves writes every kind of model the trainer produces in
// LightGBM's text format, loads it with github.com/dmitryikh/leaves (the declared predictor, an
// independent reader of LightGBM's format) and checks it predicts bit-for-bit what the trees predict,
// on the training rows, on values exactly at the split thresholds, outside the training range and on
// NaN features. A model LightGBM itself trained loads the same way.
func TestEveryTrainedModelPredictsIdenticallyInLeaves(t *testing.T) {
	x, y := residualSeries(2016, true, 3)
	xn, yn := residualSeries(600, false, 4)
	tests := []struct {
		name string
		x    [][]float64
		y    []float64
		cfg  func(*GBDTConfig)
	}{
		{"default, early-stopped", x, y, func(*GBDTConfig) {}},
		{"all rounds, no early stopping", x, y, func(c *GBDTConfig) { c.Patience = 0 }},
		{"many small leaves", x, y, func(c *GBDTConfig) { c.NumLeaves, c.MinDataInLeaf, c.Patience = 63, 1, 0 }},
		{"stumps", x, y, func(c *GBDTConfig) { c.NumLeaves, c.NumTrees, c.Patience = 2, 30, 0 }},
		{"pure noise: the starting score alone", xn, yn, func(*GBDTConfig) {}},
		{"few bins, regularised", x, y, func(c *GBDTConfig) { c.MaxBin, c.Lambda, c.Patience = 8, 5, 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultGBDTConfig()
			tc.cfg(&cfg)
			b, err := TrainGBDT(tc.x, tc.y, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPredictor(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.NumFeatures() != len(tc.x[0]) {
				t.Fatalf("leaves reads %d features, want %d", p.NumFeatures(), len(tc.x[0]))
			}
			rows := append([][]float64(nil), tc.x...)
			for _, tr := range b.Trees {
				for i, f := range tr.SplitFeature {
					r := append([]float64(nil), tc.x[0]...)
					r[f] = tr.Threshold[i] // exactly at the threshold: LightGBM goes left (≤)
					rows = append(rows, r)
				}
			}
			rows = append(rows, []float64{-1e9, -1e9, -1e9}, []float64{1e9, 1e9, 1e9}, []float64{math.NaN(), 3, math.NaN()})
			for i, r := range rows {
				if got, want := p.Predict(r), b.Predict(r); got != want {
					t.Fatalf("row %d %v: leaves predicts %v, the trainer's trees %v", i, r, got, want)
				}
			}
		})
	}
	if _, err := LoadLightGBM([]byte("not a model")); err == nil {
		t.Error("garbage loaded as a model")
	}
}
