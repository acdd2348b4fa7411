package estimator

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Sample is one history row: the total resource usage of the ready pods, the ready replica count and the
// traffic metrics (in a fixed order) at Time.
type Sample struct {
	Time     time.Time
	Resource float64
	Replicas float64
	Traffic  []float64
}

// Options are the reference job's estimation flags.
type Options struct {
	TimeDeltaHours float64       // --re-time-delta-hours: UTC offset for the time features
	TestSize       time.Duration // --re-test-dataset-size-in-seconds (default 24h)
	MinCorrelation float64       // --re-min-correlation-allowed (default 0.9)
	MaxMSE         float64       // --re-max-mse-allowed (default 10), on the 0..100 resource scale
	// BigErrorLimit is the under-estimation (y − ŷ, 0..100 scale) that no test point may exceed (reference: 10).
	BigErrorLimit float64
	// ResidualModel configures the residual GBDT; nil is DefaultGBDTConfig (early stopping on the last 20%
	// of the training rows) with MinDataInLeaf 1 when the training span is under 10 days, as the reference.
	ResidualModel *GBDTConfig
}

// DefaultOptions are the reference's defaults.
func DefaultOptions() Options {
	return Options{TestSize: 24 * time.Hour, MinCorrelation: 0.9, MaxMSE: 10, BigErrorLimit: 10}
}

// Policy is the model chosen by the quality gates.
type Policy string

// Policies, named as the reference's decision_type.
const (
	PolicyLinear   Policy = "linear"
	PolicyResidual Policy = "residual"
)

// Figures are the test-split measurements that the quality gates look at, on the per-pod resource divided
// by the estimator's ScaleFactor (the reference's 0..100 scale).
type Figures struct {
	Correlation  float64 `json:"correlation"`
	Significance float64 `json:"significance"` // two-sided p-value of the Pearson correlation
	BigE10       int     `json:"big_e_10"`     // points under-estimated by more than BigErrorLimit
	MaxUnder     float64 `json:"max_under"`    // the largest under-estimation y − ŷ, 0 if none
	MSE          float64 `json:"mse"`
}

func (f Figures) String() string {
	return fmt.Sprintf("correlation=%.4f significance=%.3g big_e_10=%d max_under=%.4g mse=%.4g",
		f.Correlation, f.Significance, f.BigE10, f.MaxUnder, f.MSE)
}

// Significance level of the correlation gate, fixed in the reference.
const maxSignificance = 0.01

// The residual policy is only trusted on top of a linear model at least this correlated (reference).
const minLinearCorrelationForResidual = 0.6

// linearFailures lists the gates the linear policy fails, each with the measured figure; none means it passes.
func linearFailures(f Figures, o Options) []string {
	var out []string
	// Negated comparisons, so that a NaN figure fails.
	if !(f.Correlation >= o.MinCorrelation) {
		out = append(out, fmt.Sprintf("correlation %.4f < %g", f.Correlation, o.MinCorrelation))
	}
	if !(f.Significance < maxSignificance) {
		out = append(out, fmt.Sprintf("significance %.3g ≥ %g", f.Significance, maxSignificance))
	}
	if f.BigE10 > 0 {
		out = append(out, fmt.Sprintf("rows under-estimated by > %g: %d (worst by %.4g)", o.BigErrorLimit, f.BigE10, f.MaxUnder))
	}
	if !(f.MSE <= o.MaxMSE) {
		out = append(out, fmt.Sprintf("mse %.4g > %g", f.MSE, o.MaxMSE))
	}
	return out
}

// residualFailures lists the gates the residual policy fails: its own figures pass the linear gates, and
// the linear model under it is correlated and significant.
func residualFailures(lin, res Figures, o Options) []string {
	out := linearFailures(res, o)
	if !(lin.Correlation >= minLinearCorrelationForResidual && lin.Significance < maxSignificance) {
		out = append(out, fmt.Sprintf("its linear part has correlation %.4f (significance %.3g), needs ≥ %g (< %g)",
			lin.Correlation, lin.Significance, minLinearCorrelationForResidual, maxSignificance))
	}
	return out
}

// choosePolicy applies the reference's order: linear if it passes, else residual if it passes.
func choosePolicy(lin, res Figures, o Options) (Policy, bool) {
	switch {
	case len(linearFailures(lin, o)) == 0:
		return PolicyLinear, true
	case len(residualFailures(lin, res, o)) == 0:
		return PolicyResidual, true
	}
	return "", false
}

// GateError says that neither policy passed the quality gates; its message has the measured figures and,
// per policy, which gates failed by how much.
type GateError struct {
	Linear, Residual Figures
	Opts             Options
	TestRows         int     // rows in the test split
	ScaleFactor      float64 // the figures are on the per-pod resource divided by it
}

func (e *GateError) Error() string {
	return fmt.Sprintf("estimator: no policy passes the quality gates on the %d test rows (last %v; per-pod resource ÷ %g): "+
		"linear{%s; fails: %s} residual{%s; fails: %s}",
		e.TestRows, e.Opts.TestSize, e.ScaleFactor,
		e.Linear, strings.Join(linearFailures(e.Linear, e.Opts), ", "),
		e.Residual, strings.Join(residualFailures(e.Linear, e.Residual, e.Opts), ", "))
}

// Estimator is a fitted Linear-Residual model: per-pod resource = linear(per-pod traffic)
// [+ GBDT residual(per-pod traffic, linear prediction, weekday, minute of day)].
type Estimator struct {
	Policy   Policy
	Linear   *ElasticNet
	Residual *Booster
	// residual predicts with Residual as loaded by leaves from its LightGBM text (see Predictor).
	residual      *Predictor
	ScaleFactor   float64 // resource values were divided by it to land in 0..100
	WeekdayBinary bool    // train span < 10 days: weekday is 0 (Mon–Fri) or 1 (Sat, Sun)
	ReplicasMax   int
	LinearTest    Figures
	ResidualTest  Figures
	opts          Options
}

func (e *Estimator) timeFeatures(t time.Time) (weekday, minute float64) {
	lt := t.UTC().Add(time.Duration(e.opts.TimeDeltaHours * float64(time.Hour)))
	wd := (int(lt.Weekday()) + 6) % 7 // Monday = 0
	if e.WeekdayBinary {
		if wd >= 5 {
			wd = 1
		} else {
			wd = 0
		}
	}
	return float64(wd), float64(lt.Hour()*60 + lt.Minute())
}

func (e *Estimator) residualRow(t time.Time, perPod []float64, lin float64) []float64 {
	wd, mn := e.timeFeatures(t)
	return append(append(append([]float64(nil), perPod...), lin), wd, mn)
}

// PerPod predicts the per-pod resource (in raw units) at t with n replicas for the traffic.
func (e *Estimator) PerPod(t time.Time, traffic []float64, n float64) float64 {
	per := make([]float64, len(traffic))
	for i, v := range traffic {
		if !math.IsNaN(v) {
			per[i] = v / n
		}
	}
	y := e.Linear.Predict(per)
	if e.Policy == PolicyResidual {
		y += e.residual.Predict(e.residualRow(t, per, y))
	}
	return y * e.ScaleFactor
}

// Fit trains and gates the estimator on history, following the reference's preprocessing: rows with
// missing values or zero replicas are dropped, the resource is scaled to 0..100, the last TestSize is the
// test split. Traffic columns with > 10% NaN or a zero sum are an error here (the reference drops them
// silently, which shifts the column order the caller relies on at solve time).
func Fit(history []Sample, opts Options) (*Estimator, error) {
	if len(history) == 0 {
		return nil, errors.New("estimator: empty history")
	}
	nf := len(history[0].Traffic)
	if nf == 0 {
		return nil, errors.New("estimator: no traffic metric")
	}
	rows := append([]Sample(nil), history...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Time.Before(rows[j].Time) })
	maxRes, maxRep := 0.0, 0.0
	nan := make([]int, nf)
	sum := make([]float64, nf)
	for _, r := range rows {
		if len(r.Traffic) != nf {
			return nil, fmt.Errorf("estimator: row at %v has %d traffic values, want %d", r.Time, len(r.Traffic), nf)
		}
		maxRes, maxRep = math.Max(maxRes, r.Resource), math.Max(maxRep, r.Replicas)
		for j, v := range r.Traffic {
			if math.IsNaN(v) {
				nan[j]++
			} else {
				sum[j] += v
			}
		}
	}
	for j := range nan {
		if float64(nan[j]) > 0.1*float64(len(rows)) || sum[j] == 0 {
			return nil, fmt.Errorf("estimator: traffic metric %d has %d/%d missing values or sums to 0", j, nan[j], len(rows))
		}
	}
	e := &Estimator{ScaleFactor: 1, opts: opts, ReplicasMax: max(100, int(math.Ceil(2*maxRep)))}
	if maxRes > 100 {
		e.ScaleFactor = math.Pow(10, math.Ceil(math.Log10(maxRes/100)))
	}
	var clean []Sample
	for _, r := range rows {
		ok := r.Replicas > 0 && !math.IsNaN(r.Resource) && !math.IsNaN(r.Replicas)
		for _, v := range r.Traffic {
			ok = ok && !math.IsNaN(v)
		}
		if ok {
			clean = append(clean, r)
		}
	}
	if len(clean) < 10 {
		return nil, fmt.Errorf("estimator: %d usable rows, need at least 10", len(clean))
	}
	cut := clean[len(clean)-1].Time.Add(-opts.TestSize)
	var train, test []Sample
	for _, r := range clean {
		if r.Time.Before(cut) {
			train = append(train, r)
		} else {
			test = append(test, r)
		}
	}
	if len(train) < 10 || len(test) < 3 {
		return nil, fmt.Errorf("estimator: %d train and %d test rows (test = last %v); need at least 10 and 3", len(train), len(test), opts.TestSize)
	}
	e.WeekdayBinary = train[len(train)-1].Time.Sub(train[0].Time) < 10*24*time.Hour
	xy := func(s []Sample) (*mat.Dense, []float64) {
		x := mat.NewDense(len(s), nf, nil)
		y := make([]float64, len(s))
		for i, r := range s {
			for j, v := range r.Traffic {
				x.Set(i, j, v/r.Replicas)
			}
			y[i] = r.Resource / e.ScaleFactor / r.Replicas
		}
		return x, y
	}
	xtr, ytr := xy(train)
	var err error
	if e.Linear, err = FitElasticNetCV(xtr, ytr, ElasticNetCVConfig{Positive: true}); err != nil {
		return nil, fmt.Errorf("estimator: linear model: %w", err)
	}
	// Residual model on the training rows, weighted by |residual| as the reference. The rows are in time
	// order, so its early-stopping validation rows are the most recent ones.
	rx := make([][]float64, len(train))
	ry, rw := make([]float64, len(train)), make([]float64, len(train))
	tot := 0.0
	for i, r := range train {
		lin := e.Linear.Predict(xtr.RawRowView(i))
		rx[i] = e.residualRow(r.Time, xtr.RawRowView(i), lin)
		ry[i] = ytr[i] - lin
		rw[i] = math.Abs(ry[i])
		tot += rw[i]
	}
	for i := range rw {
		if tot > 0 {
			rw[i] /= tot
		} else {
			rw[i] = 1
		}
	}
	gcfg := DefaultGBDTConfig()
	if e.WeekdayBinary {
		gcfg.MinDataInLeaf = 1
	}
	if opts.ResidualModel != nil {
		gcfg = *opts.ResidualModel
	}
	if e.Residual, err = TrainGBDT(rx, ry, rw, gcfg); err != nil {
		return nil, fmt.Errorf("estimator: residual model: %w", err)
	}
	if e.residual, err = NewPredictor(e.Residual); err != nil {
		return nil, fmt.Errorf("estimator: residual model: %w", err)
	}
	xte, yte := xy(test)
	lin, res := make([]float64, len(test)), make([]float64, len(test))
	for i, r := range test {
		lin[i] = e.Linear.Predict(xte.RawRowView(i))
		res[i] = lin[i] + e.residual.Predict(e.residualRow(r.Time, xte.RawRowView(i), lin[i]))
	}
	e.LinearTest = measure(yte, lin, opts.BigErrorLimit)
	e.ResidualTest = measure(yte, res, opts.BigErrorLimit)
	var ok bool
	if e.Policy, ok = choosePolicy(e.LinearTest, e.ResidualTest, opts); !ok {
		return nil, &GateError{Linear: e.LinearTest, Residual: e.ResidualTest, Opts: opts, TestRows: len(test), ScaleFactor: e.ScaleFactor}
	}
	return e, nil
}

// measure computes the gate figures of predictions p against y.
func measure(y, p []float64, bigErr float64) Figures {
	var f Figures
	for i := range y {
		d := y[i] - p[i]
		f.MSE += d * d / float64(len(y))
		f.MaxUnder = math.Max(f.MaxUnder, d)
		if d > bigErr {
			f.BigE10++
		}
	}
	f.Correlation, f.Significance = pearson(y, p)
	return f
}

// pearson returns r and its two-sided p-value (t-test with n−2 degrees of freedom, as scipy.stats.pearsonr).
// Constant inputs give r = 0, p = 1.
func pearson(x, y []float64) (r, p float64) {
	n := float64(len(x))
	if n < 3 {
		return 0, 1
	}
	r = stat.Correlation(x, y, nil)
	if math.IsNaN(r) {
		return 0, 1
	}
	if math.Abs(r) >= 1 {
		return r, 0
	}
	t := r * math.Sqrt((n-2)/(1-r*r))
	return r, 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 2}.Survival(math.Abs(t))
}

// ErrNoResult means no replica count keeps the per-pod usage under the target (the reference's NO_RESULT).
var ErrNoResult = errors.New("no replica count meets the resource target")

// Solve returns the smallest replica count n in [1, ReplicasMax] whose predicted per-pod usage at t is ≤
// target (raw units, per pod). As the reference, when no n qualifies but usage falls with 1/n
// (correlation > 0.9, p < 0.01), the answer is ReplicasMax; otherwise ErrNoResult.
func (e *Estimator) Solve(t time.Time, traffic []float64, target float64) (int, error) {
	inv := make([]float64, e.ReplicasMax)
	use := make([]float64, e.ReplicasMax)
	for n := 1; n <= e.ReplicasMax; n++ {
		inv[n-1] = 1 / float64(n)
		use[n-1] = e.PerPod(t, traffic, float64(n))
		if use[n-1] <= target {
			return n, nil
		}
	}
	if r, p := pearson(inv, use); r > 0.9 && p < 0.01 {
		return e.ReplicasMax, nil
	}
	return 0, fmt.Errorf("at %v (traffic %v, target %g per pod): %w", t, traffic, target, ErrNoResult)
}
