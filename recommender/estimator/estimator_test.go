package estimator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

func TestElasticNetRecoversPositiveWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := 400
	x := mat.NewDense(n, 3, nil)
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		a, b, c := rng.Float64()*10, rng.Float64()*10, rng.Float64()*10
		x.SetRow(i, []float64{a, b, c})
		y[i] = 3 + 2*a + 0.5*b - 1*c + 0.01*rng.NormFloat64() // c's true weight is negative
	}
	m, err := FitElasticNetCV(x, y, ElasticNetCVConfig{Positive: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Coef[2] != 0 {
		t.Errorf("negative weight not clamped: %v", m.Coef)
	}
	m2, err := FitElasticNetCV(x, y, ElasticNetCVConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for j, want := range []float64{2, 0.5, -1} {
		if math.Abs(m2.Coef[j]-want) > 0.02 {
			t.Errorf("coef[%d] = %.4f, want %.4f (l1 %.2f alpha %.3g)", j, m2.Coef[j], want, m2.L1Ratio, m2.Alpha)
		}
	}
	if math.Abs(m2.Intercept-3) > 0.1 {
		t.Errorf("intercept %.3f, want 3", m2.Intercept)
	}
}

// A LightGBM v3 model written by hand: tree 0 splits feature 0 at 1.5 (NaN goes left via missing type NaN,
// decision_type 10 = default-left | NaN<<2), then feature 1 at 0.5; tree 1 is a single leaf.
const smallModel = `tree
version=v3
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=regression
feature_names=a b
feature_infos=[0:3] [0:1]
tree_sizes=1 1

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=10 5
threshold=1.5 0.5
decision_type=10 2
left_child=-1 -2
right_child=1 -3
leaf_value=1 2 3
leaf_weight=1 1 1
leaf_count=1 1 1
internal_value=0 0
internal_weight=0 0
internal_count=3 2
is_linear=0
shrinkage=1


Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.25
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
a=1
b=1

parameters:
[boosting: gbdt]
end of parameters

pandas_categorical:null
`

func TestLightGBMSmallModel(t *testing.T) {
	b, err := ParseLightGBM(strings.NewReader(smallModel))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		x    []float64
		want float64
	}{
		{[]float64{1, 9}, 1.25},
		{[]float64{1.5, 0}, 1.25}, // x ≤ threshold goes left
		{[]float64{2, 0.5}, 2.25},
		{[]float64{2, 0.7}, 3.25},
		{[]float64{math.NaN(), 1}, 1.25}, // NaN follows the default-left missing branch
		{[]float64{2, math.NaN()}, 2.25}, // missing type None: NaN is read as 0
	}
	check := func(b *Booster) {
		for _, c := range cases {
			if got := b.Predict(c.x); got != c.want {
				t.Errorf("Predict(%v) = %v, want %v", c.x, got, c.want)
			}
		}
	}
	check(b)
	var sb strings.Builder
	if err := b.WriteLightGBM(&sb); err != nil {
		t.Fatal(err)
	}
	b2, err := ParseLightGBM(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, sb.String())
	}
	check(b2)
	if _, err := ParseLightGBM(strings.NewReader(strings.Replace(smallModel, "num_cat=0\nsplit_feature=0 1", "num_cat=1\nsplit_feature=0 1", 1))); err == nil {
		t.Error("categorical model accepted")
	}
}

func TestGBDTFitsStepAndRoundTrips(t *testing.T) {
	var x [][]float64
	var y []float64
	for i := 0; i < 200; i++ {
		v := float64(i) / 10
		x = append(x, []float64{v, float64(i % 7)})
		if v < 5 {
			y = append(y, 1)
		} else {
			y = append(y, 4)
		}
	}
	b, err := TrainGBDT(x, y, nil, DefaultGBDTConfig())
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := b.WriteLightGBM(&sb); err != nil {
		t.Fatal(err)
	}
	b2, err := ParseLightGBM(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range x {
		p := b.Predict(r)
		if math.Abs(p-y[i]) > 0.05 {
			t.Fatalf("row %d: predicted %.3f, want %.0f", i, p, y[i])
		}
		if p2 := b2.Predict(r); p2 != p {
			t.Fatalf("row %d: reloaded model predicts %v, trained %v", i, p2, p)
		}
	}
}

// workload generates 3 weeks of 10-minute history with per-pod CPU = a·traffic/replicas + a weekend bump.
func workload(a, bump float64, noise float64, seed uint64) []Sample {
	rng := rand.New(rand.NewPCG(seed, 3))
	start := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC) // Monday
	var out []Sample
	for i := 0; i < 3*7*144; i++ {
		ts := start.Add(time.Duration(i) * 10 * time.Minute)
		traffic := 1000 + 800*math.Sin(2*math.Pi*float64(i%144)/144) + 100*rng.Float64()
		replicas := float64(4 + rng.IntN(8))
		per := a * traffic / replicas
		if wd := ts.Weekday(); wd == time.Saturday || wd == time.Sunday {
			per += bump
		}
		per += noise * rng.NormFloat64()
		out = append(out, Sample{Time: ts, Resource: per * replicas, Replicas: replicas, Traffic: []float64{traffic}})
	}
	return out
}

func TestEstimatorRecoversSyntheticRelation(t *testing.T) {
	const a, bump = 0.05, 3.0 // per-pod CPU in cores·100: 0.05 per request/s, +3 on weekends
	hist := workload(a, bump, 0.2, 1)
	// With the default gates the linear part alone passes (the bump is small on the 0..100 scale), and the
	// weekend would be under-provisioned; a tighter MSE gate makes the residual model carry the bump.
	opts := DefaultOptions()
	opts.MaxMSE = 0.02
	e, err := Fit(hist, opts)
	if err != nil {
		t.Fatal(err)
	}
	if e.Policy != PolicyResidual {
		t.Errorf("policy %s, want %s", e.Policy, PolicyResidual)
	}
	t.Logf("policy %s, linear %+v, residual %+v, coef %v intercept %.3f", e.Policy, e.LinearTest, e.ResidualTest, e.Linear.Coef, e.Linear.Intercept)
	for _, tc := range []struct {
		name    string
		at      time.Time
		traffic float64
		target  float64
	}{
		{"weekday", time.Date(2024, 3, 27, 12, 0, 0, 0, time.UTC), 1500, 10},
		{"weekend", time.Date(2024, 3, 30, 12, 0, 0, 0, time.UTC), 1500, 10},
		{"weekday low", time.Date(2024, 3, 27, 3, 0, 0, 0, time.UTC), 400, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := 0.0
			if wd := tc.at.Weekday(); wd == time.Saturday || wd == time.Sunday {
				extra = bump
			}
			want := int(math.Ceil(a * tc.traffic / (tc.target - extra))) // truth: smallest n with a·T/n + bump ≤ target
			got, err := e.Solve(tc.at, []float64{tc.traffic}, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if d := got - want; d < -1 || d > 1 {
				t.Errorf("Solve = %d replicas, truth %d", got, want)
			}
		})
	}
}

func TestGatesRejectNoise(t *testing.T) {
	hist := workload(0.05, 0, 0, 2)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range hist {
		hist[i].Resource = 100 * rng.Float64() * hist[i].Replicas // unrelated to traffic
	}
	_, err := Fit(hist, DefaultOptions())
	var ge *GateError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want a GateError", err)
	}
	t.Log(err)
	// The message carries the measured figures and says which gate each policy fails.
	for _, s := range []string{
		"linear{" + ge.Linear.String(), "residual{" + ge.Residual.String(),
		fmt.Sprintf("correlation %.4f < 0.9", ge.Linear.Correlation), "its linear part has correlation",
		fmt.Sprintf("%d test rows", ge.TestRows), "÷ 100",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if ge.Linear.Correlation >= 0.9 {
		t.Errorf("noise correlates: %+v", ge.Linear)
	}
}

func TestGateFailuresShowFigures(t *testing.T) {
	opts := DefaultOptions()
	good := Figures{Correlation: 0.95, Significance: 1e-9, MSE: 2, MaxUnder: 3}
	for _, tc := range []struct {
		name      string
		lin, res  Figures
		wantLin   []string // failures of the linear policy, in order
		wantRes   []string
		wantPolcy Policy
	}{
		{"linear passes", good, good, nil, nil, PolicyLinear},
		{
			"under-estimation", Figures{Correlation: 0.95, Significance: 1e-9, BigE10: 2, MaxUnder: 12.5, MSE: 2}, good,
			[]string{"rows under-estimated by > 10: 2 (worst by 12.5)"}, nil, PolicyResidual,
		},
		{
			"all gates", Figures{Correlation: 0.5, Significance: 0.2, BigE10: 1, MaxUnder: 11, MSE: 30}, good,
			[]string{"correlation 0.5000 < 0.9", "significance 0.2 ≥ 0.01", "rows under-estimated by > 10: 1 (worst by 11)", "mse 30 > 10"},
			[]string{"its linear part has correlation 0.5000 (significance 0.2), needs ≥ 0.6 (< 0.01)"}, "",
		},
		{"NaN fails", Figures{Correlation: math.NaN(), Significance: math.NaN(), MSE: math.NaN()}, Figures{Correlation: 0.95, Significance: 1e-9, MSE: 11},
			[]string{"correlation NaN < 0.9", "significance NaN ≥ 0.01", "mse NaN > 10"},
			[]string{"mse 11 > 10", "its linear part has correlation NaN (significance NaN), needs ≥ 0.6 (< 0.01)"}, "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := linearFailures(tc.lin, opts); !slices.Equal(got, tc.wantLin) {
				t.Errorf("linear failures %q, want %q", got, tc.wantLin)
			}
			if got := residualFailures(tc.lin, tc.res, opts); !slices.Equal(got, tc.wantRes) {
				t.Errorf("residual failures %q, want %q", got, tc.wantRes)
			}
			p, ok := choosePolicy(tc.lin, tc.res, opts)
			if p != tc.wantPolcy || ok != (tc.wantPolcy != "") {
				t.Errorf("policy %q %v, want %q", p, ok, tc.wantPolcy)
			}
		})
	}
}

func TestFitResidualModelOption(t *testing.T) {
	hist := workload(0.05, 3, 0.2, 1)
	fixed := DefaultGBDTConfig()
	fixed.Patience, fixed.NumTrees = 0, 7
	for _, tc := range []struct {
		name               string
		cfg                *GBDTConfig
		minTrees, maxTrees int
	}{
		{"default early-stops", nil, 1, DefaultGBDTConfig().NumTrees},
		{"fixed rounds", &fixed, 7, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.ResidualModel = tc.cfg
			e, err := Fit(hist, opts)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(e.Residual.Trees); n < tc.minTrees || n > tc.maxTrees {
				t.Errorf("residual model has %d trees, want %d..%d", n, tc.minTrees, tc.maxTrees)
			}
		})
	}
}

func TestResampleAndShift(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pts := []Point{{at(0), 2}, {at(5), 3}, {at(10), 5}, {at(15), 4}, {at(20), 1}, {at(25), 1}}
	got := ResampleMax(pts, 10*time.Minute)
	want := []Point{{at(0), 3}, {at(10), 5}, {at(20), 1}}
	assertPoints(t, got, want)
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		want  []Point
	}{
		{"none", 0, want},
		{"5m", 5 * time.Minute, []Point{{at(0), 3}, {at(5), 5}, {at(20), 1}}},
		{"10m collides", 10 * time.Minute, []Point{{at(0), 5}, {at(20), 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ShiftScaleUp(want, tc.ahead)
			assertPoints(t, s, tc.want)
		})
	}
}

// A scale-up shifted by more than the points' spacing lands before lower points; they must not
// undo it (the reference's shift left 10:1 in force after 5:5, so the pods left again).
func TestShiftScaleUpPastLowerPoints(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pts := []Point{{at(0), 1}, {at(10), 1}, {at(20), 5}, {at(30), 5}, {at(40), 2}, {at(50), 2}, {at(60), 6}}
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		want  []Point
	}{
		{"15m over one point", 15 * time.Minute,
			[]Point{{at(0), 1}, {at(5), 5}, {at(10), 5}, {at(30), 5}, {at(40), 2}, {at(45), 6}, {at(50), 6}}},
		{"25m over two points", 25 * time.Minute,
			[]Point{{at(-5), 5}, {at(0), 5}, {at(10), 5}, {at(30), 5}, {at(35), 6}, {at(40), 6}, {at(50), 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ShiftScaleUp(pts, tc.ahead)
			assertPoints(t, s, tc.want)
		})
	}
}

func assertPoints(t *testing.T, got, want []Point) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b Point) bool { return a.Time.Equal(b.Time) && a.Replicas == b.Replicas }) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
