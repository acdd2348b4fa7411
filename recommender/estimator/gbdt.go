package estimator

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// GBDTConfig configures the histogram gradient-boosted trees (regression, L2 loss). Defaults follow the
// reference's LGBMRegressor(num_leaves=31, learning_rate=0.1, n_estimators=50, min_child_weight=0).
//
// Early stopping (Patience > 0) holds out the last ValidFraction of the rows, which must be in time order:
// on time series a random hold-out would put the neighbours of every validation row in the training set
// and reward memorising the recent past. Trees are grown on the other rows only; after each round the
// validation loss (weighted MSE, with the training weights) is measured, and training stops once Patience
// rounds in a row have not beaten the best loss. Only the trees up to the best round are kept, so the model
// written in LightGBM's format is the best iteration's. Training has no random step (no bagging, no feature
// sampling): the same rows and configuration give the same trees, so there is no seed to set.
type GBDTConfig struct {
	NumLeaves     int     // maximum leaves per tree, grown leaf-wise (best gain first) as LightGBM
	NumTrees      int     // boosting rounds; with early stopping, the most rounds
	LearningRate  float64 // shrinkage, folded into the leaf values as LightGBM does
	MinDataInLeaf int     // min_child_samples
	MinSumHessian float64 // min_child_weight
	MaxBin        int     // histogram bins per feature
	Lambda        float64 // L2 regularisation of leaf values
	FeatureNames  []string
	BoostFromMean bool // start from the weighted mean of y (LightGBM's boost_from_average)

	// Patience enables early stopping: stop after this many rounds without a better validation loss
	// (LightGBM's early_stopping_round). 0 trains NumTrees rounds on all rows.
	Patience int
	// ValidFraction is the share of rows, taken from the end, held out for early stopping; in (0, 1).
	ValidFraction float64
	// MinRounds is the fewest boosting rounds kept whatever the validation loss says, against a small,
	// noisy validation split. With 0, a model none of whose trees beats the starting score on the
	// validation rows is that score alone, written as a one-leaf tree.
	MinRounds int
}

// DefaultGBDTConfig is the reference's residual-model configuration with early stopping on the last 20% of
// the rows (patience 10, no minimum: a residual of pure noise gets a constant model, not a tree fitted to
// the noise). Unlike the reference (boosting='dart', which drops random trees), it boosts
// plainly: deterministic, and the saved model predicts what was validated.
func DefaultGBDTConfig() GBDTConfig {
	return GBDTConfig{NumLeaves: 31, NumTrees: 50, LearningRate: 0.1, MinDataInLeaf: 3, MaxBin: 255, BoostFromMean: true,
		Patience: 10, ValidFraction: 0.2}
}

// Booster is an additive ensemble of regression trees; its prediction is the sum of the trees' leaves.
type Booster struct {
	NumFeatures  int
	FeatureNames []string
	FeatureInfos []string // LightGBM's "[min:max]" per feature, or "none"
	Trees        []Tree
}

// Tree is one tree in LightGBM's array layout: internal node i splits on SplitFeature[i] at Threshold[i]
// (go left when x ≤ threshold); a child < 0 is the leaf ^child.
type Tree struct {
	NumLeaves      int
	SplitFeature   []int
	SplitGain      []float64
	Threshold      []float64
	DecisionType   []int
	LeftChild      []int
	RightChild     []int
	LeafValue      []float64
	LeafWeight     []float64
	LeafCount      []int
	InternalValue  []float64
	InternalWeight []float64
	InternalCount  []int
	Shrinkage      float64
}

// LightGBM's decision_type bits.
const (
	decisionCategorical = 1
	decisionDefaultLeft = 2
	missingNone         = 0
	missingZero         = 1
	missingNaN          = 2
	zeroThreshold       = 1e-35
)

// Predict returns the ensemble's value at x.
func (b *Booster) Predict(x []float64) float64 {
	s := 0.0
	for i := range b.Trees {
		s += b.Trees[i].predict(x)
	}
	return s
}

func (t *Tree) predict(x []float64) float64 {
	if t.NumLeaves <= 1 {
		return t.LeafValue[0]
	}
	node := 0
	for node >= 0 {
		node = t.decide(x[t.SplitFeature[node]], node)
	}
	return t.LeafValue[^node]
}

// decide is LightGBM's NumericalDecision, including its missing-value handling.
func (t *Tree) decide(v float64, node int) int {
	dt := t.DecisionType[node]
	missing := (dt >> 2) & 3
	if math.IsNaN(v) && missing != missingNaN {
		v = 0
	}
	if (missing == missingZero && v >= -zeroThreshold && v <= zeroThreshold) || (missing == missingNaN && math.IsNaN(v)) {
		if dt&decisionDefaultLeft != 0 {
			return t.LeftChild[node]
		}
		return t.RightChild[node]
	}
	if v <= t.Threshold[node] {
		return t.LeftChild[node]
	}
	return t.RightChild[node]
}

// binner maps a feature's values to histogram bins; upper[b] is the largest value in bin b's range.
type binner struct{ upper []float64 }

func newBinner(vals []float64, maxBin int) binner {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	var distinct []float64
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			distinct = append(distinct, v)
		}
	}
	var upper []float64
	if len(distinct) <= maxBin {
		for i := 0; i+1 < len(distinct); i++ {
			upper = append(upper, (distinct[i]+distinct[i+1])/2)
		}
	} else {
		// Equal-count bins over the sorted values, cut between distinct values.
		for b := 1; b < maxBin; b++ {
			i := b * len(s) / maxBin
			if i == 0 || s[i] == s[i-1] {
				continue
			}
			cut := (s[i-1] + s[i]) / 2
			if len(upper) == 0 || cut > upper[len(upper)-1] {
				upper = append(upper, cut)
			}
		}
	}
	return binner{upper: append(upper, math.Inf(1))}
}

func (b binner) bin(v float64) int { return sort.SearchFloat64s(b.upper, v) }

type leafState struct {
	rows      []int
	g, h      float64
	bestGain  float64
	bestFeat  int
	bestBin   int
	parent    int // internal node index whose child this leaf is, -1 for the root
	leftChild bool
}

// TrainGBDT fits trees to y with optional sample weights w (nil for 1) under L2 loss. With early stopping
// (cfg.Patience > 0) the rows must be in time order; see GBDTConfig.
func TrainGBDT(x [][]float64, y, w []float64, cfg GBDTConfig) (*Booster, error) {
	n := len(x)
	if n == 0 || n != len(y) || (w != nil && len(w) != n) {
		return nil, fmt.Errorf("gbdt: %d rows, %d targets, %d weights", n, len(y), len(w))
	}
	if cfg.NumLeaves < 2 || cfg.NumTrees < 1 || cfg.LearningRate <= 0 || cfg.MaxBin < 2 {
		return nil, errors.New("gbdt: need NumLeaves ≥ 2, NumTrees ≥ 1, LearningRate > 0, MaxBin ≥ 2")
	}
	p := len(x[0])
	for i := range x {
		if len(x[i]) != p {
			return nil, fmt.Errorf("gbdt: row %d has %d features, want %d", i, len(x[i]), p)
		}
	}
	if w == nil {
		w = make([]float64, n)
		for i := range w {
			w[i] = 1
		}
	}
	nt := n // training rows; the rest validate
	if cfg.Patience > 0 {
		if !(cfg.ValidFraction > 0 && cfg.ValidFraction < 1) {
			return nil, fmt.Errorf("gbdt: early stopping needs 0 < ValidFraction < 1, got %g", cfg.ValidFraction)
		}
		nt = n - int(math.Round(cfg.ValidFraction*float64(n)))
		if nt < 1 || nt == n {
			return nil, fmt.Errorf("gbdt: %d rows cannot be split into training and %g validation rows", n, cfg.ValidFraction)
		}
	}
	x, y, w, xv, yv, wv := x[:nt], y[:nt], w[:nt], x[nt:], y[nt:], w[nt:]
	b := &Booster{NumFeatures: p, FeatureNames: cfg.FeatureNames}
	if len(b.FeatureNames) != p {
		b.FeatureNames = make([]string, p)
		for j := range b.FeatureNames {
			b.FeatureNames[j] = fmt.Sprintf("Column_%d", j)
		}
	}
	// Bins and feature ranges come from the training rows alone, as LightGBM's do from its train set.
	bins := make([]binner, p)
	xb := make([][]int, p) // feature-major bin indices
	for j := 0; j < p; j++ {
		col := make([]float64, nt)
		for i := range x {
			col[i] = x[i][j]
		}
		bins[j] = newBinner(col, cfg.MaxBin)
		xb[j] = make([]int, nt)
		for i, v := range col {
			xb[j][i] = bins[j].bin(v)
		}
		lo, hi := col[0], col[0]
		for _, v := range col {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		if lo == hi {
			b.FeatureInfos = append(b.FeatureInfos, "none")
		} else {
			b.FeatureInfos = append(b.FeatureInfos, fmt.Sprintf("[%s:%s]", fmtFloat(lo), fmtFloat(hi)))
		}
	}
	init := 0.0
	if cfg.BoostFromMean {
		sw, swy := 0.0, 0.0
		for i := range y {
			sw += w[i]
			swy += w[i] * y[i]
		}
		if sw > 0 {
			init = swy / sw
		}
	}
	pred := filled(nt, init)
	vpred := filled(n-nt, init)
	best, bestLoss := 0, math.Inf(1) // best: the number of trees with the lowest validation loss so far
	if cfg.MinRounds <= 0 {
		bestLoss = weightedMSE(yv, vpred, wv) // the starting score alone competes
	}
	g, h := make([]float64, nt), make([]float64, nt)
	for it := 0; it < cfg.NumTrees; it++ {
		for i := range g {
			g[i] = (pred[i] - y[i]) * w[i]
			h[i] = w[i]
		}
		t := growTree(xb, bins, g, h, cfg)
		for i := range pred {
			pred[i] += t.predict(x[i])
		}
		for i := range vpred {
			vpred[i] += t.predict(xv[i])
		}
		if it == 0 {
			// LightGBM stores the starting score in the first tree's leaves; pred already holds it.
			for l := range t.LeafValue {
				t.LeafValue[l] += init
			}
		}
		b.Trees = append(b.Trees, t)
		if cfg.Patience <= 0 {
			continue
		}
		if loss := weightedMSE(yv, vpred, wv); len(b.Trees) <= cfg.MinRounds || loss < bestLoss {
			best, bestLoss = len(b.Trees), loss
		} else if len(b.Trees)-best >= cfg.Patience {
			break
		}
	}
	switch {
	case cfg.Patience <= 0:
	case best == 0:
		sw := 0.0
		for _, v := range w {
			sw += v
		}
		b.Trees = []Tree{{NumLeaves: 1, LeafValue: []float64{init}, LeafWeight: []float64{sw}, LeafCount: []int{nt}, Shrinkage: 1}}
	default:
		b.Trees = slices.Clip(b.Trees[:best])
	}
	return b, nil
}

func filled(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// weightedMSE is Σw(y−p)²/Σw, or the plain mean when the weights sum to 0 (all validation residuals 0).
func weightedMSE(y, p, w []float64) float64 {
	var s, sw, plain float64
	for i := range y {
		d := y[i] - p[i]
		s += w[i] * d * d
		sw += w[i]
		plain += d * d
	}
	if sw <= 0 {
		return plain / float64(len(y))
	}
	return s / sw
}

func growTree(xb [][]int, bins []binner, g, h []float64, cfg GBDTConfig) Tree {
	all := make([]int, len(g))
	for i := range all {
		all[i] = i
	}
	root := &leafState{rows: all, parent: -1}
	for _, i := range all {
		root.g += g[i]
		root.h += h[i]
	}
	findSplit(root, xb, bins, g, h, cfg)
	leaves := []*leafState{root}
	t := Tree{Shrinkage: cfg.LearningRate}
	for len(leaves) < cfg.NumLeaves {
		best := -1
		for i, l := range leaves {
			if l.bestGain > 0 && (best < 0 || l.bestGain > leaves[best].bestGain) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		l := leaves[best]
		node := len(t.SplitFeature)
		t.SplitFeature = append(t.SplitFeature, l.bestFeat)
		t.SplitGain = append(t.SplitGain, l.bestGain)
		t.Threshold = append(t.Threshold, bins[l.bestFeat].upper[l.bestBin])
		t.DecisionType = append(t.DecisionType, decisionDefaultLeft) // missing type None; NaN is read as 0
		t.InternalValue = append(t.InternalValue, -l.g/(l.h+cfg.Lambda)*cfg.LearningRate)
		t.InternalWeight = append(t.InternalWeight, l.h)
		t.InternalCount = append(t.InternalCount, len(l.rows))
		t.LeftChild = append(t.LeftChild, 0)
		t.RightChild = append(t.RightChild, 0)
		if l.parent >= 0 {
			if l.leftChild {
				t.LeftChild[l.parent] = node
			} else {
				t.RightChild[l.parent] = node
			}
		}
		left := &leafState{parent: node, leftChild: true}
		right := &leafState{parent: node}
		for _, i := range l.rows {
			if xb[l.bestFeat][i] <= l.bestBin {
				left.rows = append(left.rows, i)
				left.g += g[i]
				left.h += h[i]
			} else {
				right.rows = append(right.rows, i)
				right.g += g[i]
				right.h += h[i]
			}
		}
		findSplit(left, xb, bins, g, h, cfg)
		findSplit(right, xb, bins, g, h, cfg)
		leaves[best] = left
		leaves = append(leaves, right)
	}
	t.NumLeaves = len(leaves)
	for li, l := range leaves {
		if l.parent >= 0 {
			if l.leftChild {
				t.LeftChild[l.parent] = ^li
			} else {
				t.RightChild[l.parent] = ^li
			}
		}
		t.LeafValue = append(t.LeafValue, -l.g/(l.h+cfg.Lambda)*cfg.LearningRate)
		t.LeafWeight = append(t.LeafWeight, l.h)
		t.LeafCount = append(t.LeafCount, len(l.rows))
	}
	return t
}

// findSplit scans the histograms of every feature for the best L2 gain.
func findSplit(l *leafState, xb [][]int, bins []binner, g, h []float64, cfg GBDTConfig) {
	l.bestGain = 0
	minData := max(1, cfg.MinDataInLeaf)
	if len(l.rows) < 2*minData {
		return
	}
	parent := l.g * l.g / (l.h + cfg.Lambda)
	for j := range xb {
		nb := len(bins[j].upper)
		if nb < 2 {
			continue
		}
		hg, hh := make([]float64, nb), make([]float64, nb)
		hc := make([]int, nb)
		for _, i := range l.rows {
			b := xb[j][i]
			hg[b] += g[i]
			hh[b] += h[i]
			hc[b]++
		}
		var gl, hl float64
		cl := 0
		for b := 0; b < nb-1; b++ {
			gl, hl, cl = gl+hg[b], hl+hh[b], cl+hc[b]
			cr := len(l.rows) - cl
			if cl < minData || cr < minData {
				continue
			}
			gr, hr := l.g-gl, l.h-hl
			if hl < cfg.MinSumHessian || hr < cfg.MinSumHessian || hl <= 0 || hr <= 0 {
				continue
			}
			gain := gl*gl/(hl+cfg.Lambda) + gr*gr/(hr+cfg.Lambda) - parent
			if gain > l.bestGain+1e-12 {
				l.bestGain, l.bestFeat, l.bestBin = gain, j, b
			}
		}
	}
}
