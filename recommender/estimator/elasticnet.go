package estimator

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// ElasticNet is a fitted linear model y ≈ Intercept + Coef·x, minimising
// (1/2n)‖y − Xw − b‖² + Alpha·L1Ratio·‖w‖₁ + ½·Alpha·(1 − L1Ratio)·‖w‖² (scikit-learn's parametrisation).
type ElasticNet struct {
	Coef      []float64
	Intercept float64
	Alpha     float64
	L1Ratio   float64
}

// Predict returns the model's value at x.
func (e *ElasticNet) Predict(x []float64) float64 { return e.Intercept + floats.Dot(e.Coef, x) }

// ElasticNetCVConfig mirrors scikit-learn's ElasticNetCV options used by the reference.
type ElasticNetCVConfig struct {
	L1Ratios []float64 // default .1 .5 .7 .9 .95 .99 1
	NAlphas  int       // alphas per l1 ratio on a log grid (default 40; scikit-learn uses 100)
	Eps      float64   // alpha_min / alpha_max (default 1e-3)
	Folds    int       // contiguous K-fold, as scikit-learn's KFold without shuffling (default 5)
	Positive bool      // constrain the coefficients to ≥ 0
	MaxIter  int       // coordinate-descent sweeps (default 1000)
	Tol      float64   // stop when the largest coefficient change < Tol·max|w| (default 1e-4)
}

func (c *ElasticNetCVConfig) defaults() {
	if len(c.L1Ratios) == 0 {
		c.L1Ratios = []float64{.1, .5, .7, .9, .95, .99, 1}
	}
	if c.NAlphas <= 0 {
		c.NAlphas = 40
	}
	if c.Eps <= 0 {
		c.Eps = 1e-3
	}
	if c.Folds <= 1 {
		c.Folds = 5
	}
	if c.MaxIter <= 0 {
		c.MaxIter = 1000
	}
	if c.Tol <= 0 {
		c.Tol = 1e-4
	}
}

// FitElasticNetCV chooses (l1 ratio, alpha) by K-fold cross-validated MSE and refits on all rows.
func FitElasticNetCV(x *mat.Dense, y []float64, cfg ElasticNetCVConfig) (*ElasticNet, error) {
	cfg.defaults()
	n, p := x.Dims()
	if n != len(y) {
		return nil, fmt.Errorf("elasticnet: %d rows but %d targets", n, len(y))
	}
	if n < cfg.Folds || p == 0 {
		return nil, fmt.Errorf("elasticnet: need at least %d rows and 1 feature, got %d×%d", cfg.Folds, n, p)
	}
	for _, l1 := range cfg.L1Ratios {
		if l1 <= 0 || l1 > 1 {
			return nil, fmt.Errorf("elasticnet: l1 ratio %g outside (0,1]", l1)
		}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	bestMSE, bestL1, bestAlpha := math.Inf(1), 0.0, 0.0
	for _, l1 := range cfg.L1Ratios {
		alphas := alphaGrid(x, y, all, l1, cfg)
		mse := make([]float64, len(alphas))
		for k := 0; k < cfg.Folds; k++ {
			lo, hi := k*n/cfg.Folds, (k+1)*n/cfg.Folds
			train := append(append([]int(nil), all[:lo]...), all[hi:]...)
			path := fitPath(x, y, train, alphas, l1, cfg)
			for a, m := range path {
				for _, i := range all[lo:hi] {
					d := y[i] - m.Predict(x.RawRowView(i))
					mse[a] += d * d / float64(n)
				}
			}
		}
		for a, m := range mse {
			if m < bestMSE {
				bestMSE, bestL1, bestAlpha = m, l1, alphas[a]
			}
		}
	}
	if math.IsInf(bestMSE, 1) || math.IsNaN(bestMSE) {
		return nil, errors.New("elasticnet: cross-validation produced no finite error")
	}
	m := fitPath(x, y, all, []float64{bestAlpha}, bestL1, cfg)[0]
	return m, nil
}

// alphaGrid is scikit-learn's path: from the smallest alpha that zeroes every coefficient down to Eps of it.
func alphaGrid(x *mat.Dense, y []float64, rows []int, l1 float64, cfg ElasticNetCVConfig) []float64 {
	xc, yc, _, _ := center(x, y, rows)
	n := float64(len(rows))
	amax := 0.0
	for _, col := range xc {
		d := floats.Dot(col, yc)
		if !cfg.Positive {
			d = math.Abs(d)
		}
		amax = math.Max(amax, d/(n*l1))
	}
	if amax <= 0 {
		amax = 1e-12
	}
	out := make([]float64, cfg.NAlphas)
	for i := range out {
		out[i] = amax * math.Pow(cfg.Eps, float64(i)/float64(max(1, cfg.NAlphas-1)))
	}
	return out
}

// center returns the centred columns of the selected rows and the means used.
func center(x *mat.Dense, y []float64, rows []int) (cols [][]float64, yc []float64, xm []float64, ym float64) {
	_, p := x.Dims()
	cols = make([][]float64, p)
	xm = make([]float64, p)
	for j := range cols {
		c := make([]float64, len(rows))
		for k, i := range rows {
			c[k] = x.At(i, j)
		}
		xm[j] = floats.Sum(c) / float64(len(c))
		floats.AddConst(-xm[j], c)
		cols[j] = c
	}
	yc = make([]float64, len(rows))
	for k, i := range rows {
		yc[k] = y[i]
	}
	ym = floats.Sum(yc) / float64(len(yc))
	floats.AddConst(-ym, yc)
	return cols, yc, xm, ym
}

// fitPath fits the alphas in decreasing order with warm starts, by cyclic coordinate descent.
func fitPath(x *mat.Dense, y []float64, rows []int, alphas []float64, l1 float64, cfg ElasticNetCVConfig) []*ElasticNet {
	cols, r, xm, ym := center(x, y, rows)
	n := float64(len(rows))
	p := len(cols)
	sq := make([]float64, p)
	for j, c := range cols {
		sq[j] = floats.Dot(c, c)
	}
	w := make([]float64, p)
	out := make([]*ElasticNet, len(alphas))
	for a, alpha := range alphas {
		l1pen, l2pen := n*alpha*l1, n*alpha*(1-l1)
		for it := 0; it < cfg.MaxIter; it++ {
			maxDelta, maxW := 0.0, 0.0
			for j, c := range cols {
				if sq[j] == 0 {
					continue
				}
				rho := floats.Dot(c, r) + sq[j]*w[j]
				var nw float64
				switch {
				case rho > l1pen:
					nw = (rho - l1pen) / (sq[j] + l2pen)
				case rho < -l1pen && !cfg.Positive:
					nw = (rho + l1pen) / (sq[j] + l2pen)
				}
				if d := nw - w[j]; d != 0 {
					floats.AddScaled(r, -d, c)
					maxDelta = math.Max(maxDelta, math.Abs(d))
					w[j] = nw
				}
				maxW = math.Max(maxW, math.Abs(w[j]))
			}
			if maxW == 0 || maxDelta < cfg.Tol*maxW {
				break
			}
		}
		coef := append([]float64(nil), w...)
		out[a] = &ElasticNet{Coef: coef, Intercept: ym - floats.Dot(coef, xm), Alpha: alpha, L1Ratio: l1}
	}
	return out
}
