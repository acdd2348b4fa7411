package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Config is the estimator configuration; it is saved as estimator_config.yaml next to the weights. The
// field names follow the reference's training config (freq, contextLength, predictionLength, learningRate,
// epochs, batchSize, patience).
type Config struct {
	Freq             string  `json:"freq"`
	ContextLength    int     `json:"contextLength"`
	PredictionLength int     `json:"predictionLength"`
	HiddenSize       int     `json:"hiddenSize"`
	NumLayers        int     `json:"numLayers"`
	LearningRate     float64 `json:"learningRate"`
	Epochs           int     `json:"epochs"`
	BatchSize        int     `json:"batchSize"`
	Patience         int     `json:"patience"`
	// ValidationFraction of each series' tail (at least PredictionLength points) is held out; early stopping
	// watches the validation loss. The reference watches the training loss (use_validation=False), which
	// never signals over-fitting.
	ValidationFraction float64 `json:"validationFraction"`
	// SamplesPerEpoch caps the windows drawn (without replacement, reshuffled each epoch) per epoch; 0 uses all.
	SamplesPerEpoch int    `json:"samplesPerEpoch"`
	Seed            uint64 `json:"seed"`
	// Quantiles are the network's output heads, trained with the pinball loss; the point forecast is the
	// 0.5 head (added when missing). Empty: DefaultQuantiles.
	Quantiles []float64 `json:"quantiles,omitempty"`
	// Methods are the forecasters each series chooses from on its validation window (see Methods);
	// empty: all of them. ["network"] keeps the network for every series.
	Methods []string `json:"methods,omitempty"`
}

// DefaultQuantiles are the quantile heads of a model whose config names none: a band for charts and
// burst detection (0.1..0.9) and the upper quantiles replay and the predictive portrait scale to.
var DefaultQuantiles = []float64{0.1, 0.5, 0.8, 0.9, 0.95}

// quantiles is the sorted, de-duplicated head list with the median.
func (c Config) quantiles() []float64 {
	q := append([]float64(nil), c.Quantiles...)
	if len(q) == 0 {
		q = append(q, DefaultQuantiles...)
	}
	q = append(q, 0.5)
	sort.Float64s(q)
	out := q[:0]
	for i, v := range q {
		if i == 0 || v != q[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// DefaultConfig returns the reference's documented defaults (10min, context 7, prediction 3, lr 1e-3,
// 100 epochs, batch 32, patience 15) plus this implementation's network and early-stopping settings.
// HiddenSize 0 sizes the network to the data (see autoHiddenSize).
func DefaultConfig() Config {
	return Config{
		Freq: "10min", ContextLength: 7, PredictionLength: 3, HiddenSize: 0, NumLayers: 4,
		LearningRate: 1e-3, Epochs: 100, BatchSize: 32, Patience: 15, ValidationFraction: 0.1, Seed: 1,
	}
}

// Network sizing. The input layer holds HiddenSize × (4C + 4FC) weights, the bulk of the model; with
// HiddenSize 0 it gets about paramsPerPoint weights per training point, so that one series of 700 hourly
// points does not get a 200k-parameter network (which learns it by heart), while a hundred series get
// the full width.
const (
	paramsPerPoint = 4
	minAutoHidden  = 4
	maxAutoHidden  = 32
)

// autoHiddenSize is the even hidden width giving about paramsPerPoint input weights per training point.
func autoHiddenSize(a Arch, trainPoints int) int {
	h := paramsPerPoint * trainPoints / max(a.featureSize(), 1)
	h -= h % 2
	return min(max(h, minAutoHidden), maxAutoHidden)
}

func (c Config) validate() error {
	var errs []error
	if _, err := ParseFreq(c.Freq); err != nil {
		errs = append(errs, err)
	}
	if c.ContextLength < 1 || c.PredictionLength < 1 {
		errs = append(errs, fmt.Errorf("contextLength (%d) and predictionLength (%d) must be positive", c.ContextLength, c.PredictionLength))
	}
	if c.HiddenSize != 0 && (c.HiddenSize < 2 || c.HiddenSize%2 != 0) {
		errs = append(errs, fmt.Errorf("hiddenSize must be 0 (sized to the data) or an even number ≥ 2, got %d", c.HiddenSize))
	}
	for _, q := range c.Quantiles {
		if !(q > 0 && q < 1) {
			errs = append(errs, fmt.Errorf("quantiles: %g is not in (0, 1)", q))
		}
	}
	for _, m := range c.Methods {
		if !slices.Contains(Methods, m) {
			errs = append(errs, fmt.Errorf("methods: %q is not one of %v", m, Methods))
		}
	}
	if c.NumLayers < 0 || c.Epochs < 1 || c.BatchSize < 1 || c.LearningRate <= 0 {
		errs = append(errs, fmt.Errorf("numLayers (%d) must be ≥ 0; epochs (%d), batchSize (%d), learningRate (%g) positive",
			c.NumLayers, c.Epochs, c.BatchSize, c.LearningRate))
	}
	if c.ValidationFraction < 0 || c.ValidationFraction >= 1 {
		errs = append(errs, fmt.Errorf("validationFraction must be in [0,1), got %g", c.ValidationFraction))
	}
	return errors.Join(errs...)
}

// Model is a trained forecaster.
type Model struct {
	Config   Config
	Features []TimeFeature
	// Series maps a series ID to its row in the series embedding (the reference's item2id.json).
	Series map[string]int
	// Info holds, per series ID, the forecaster chosen on its validation window and what it needs at
	// prediction time. A version-1 model has none: the network forecasts every series.
	Info map[string]*SeriesInfo
	step time.Duration
	net  *network
}

// EpochStats is reported after every epoch.
type EpochStats struct {
	Epoch int
	// TrainLoss is twice the mean pinball loss of the quantile heads on scaled values: with the median
	// head alone it is the mean absolute error, the reference's L1Loss.
	TrainLoss  float64
	ValidLoss  float64 // the same on the validation windows; NaN without a validation split
	Best       bool    // this epoch's weights are kept
	Elapsed    time.Duration
	NumSamples int
}

// TrainOptions holds what is not part of the saved configuration.
type TrainOptions struct {
	// OnEpoch, when set, receives the progress of every epoch (a progress bar, a log line).
	OnEpoch func(EpochStats)
}

// Train fits one model on all series together (one series-id embedding row each), then chooses, per
// series, the forecaster (network, baselines or their ensemble) with the smallest error on the series'
// validation window. All series must share the step of cfg.Freq and hold no NaN (see FillGaps).
// Training is deterministic for a given cfg.Seed.
func Train(series []Series, cfg Config, opts TrainOptions) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid forecaster config: %w", err)
	}
	step, _ := ParseFreq(cfg.Freq)
	feats := TimeFeaturesFor(step)
	arch := Arch{NumSeries: len(series), ContextLength: cfg.ContextLength, PredictionLength: cfg.PredictionLength,
		HiddenSize: cfg.HiddenSize, NumLayers: cfg.NumLayers, Quantiles: cfg.quantiles()}
	for _, f := range feats {
		c, _ := f.Cardinality()
		arch.Cardinalities = append(arch.Cardinalities, c)
	}
	m := &Model{Config: cfg, Features: feats, Series: map[string]int{}, Info: map[string]*SeriesInfo{}, step: step}
	seqLen := cfg.ContextLength + cfg.PredictionLength
	nVals := make([]int, len(series))
	trainPoints := 0
	for i, s := range series {
		if s.Step != step {
			return nil, fmt.Errorf("series %q has step %v, the model's freq %q is %v", s.ID, s.Step, cfg.Freq, step)
		}
		if _, dup := m.Series[s.ID]; dup {
			return nil, fmt.Errorf("series %q given twice", s.ID)
		}
		for j, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("series %q: value %d at %s is %v; fill gaps first (FillGaps)", s.ID, j, s.TimeAt(j).Format(time.RFC3339), v)
			}
		}
		m.Series[s.ID] = i
		n := len(s.Values)
		nVal := 0
		if cfg.ValidationFraction > 0 {
			nVal = max(cfg.PredictionLength, int(math.Round(cfg.ValidationFraction*float64(n))))
		}
		if n-nVal < seqLen {
			return nil, fmt.Errorf("series %q has %d points; need at least %d (context %d + prediction %d + validation %d)",
				s.ID, n, seqLen+nVal, cfg.ContextLength, cfg.PredictionLength, nVal)
		}
		nVals[i] = nVal
		trainPoints += n - nVal
		info := &SeriesInfo{Method: MethodNetwork, Scale: meanAbs(s.Values[:n-nVal]), NonNegative: true}
		for _, v := range s.Values {
			if v < 0 {
				info.NonNegative = false
				break
			}
		}
		m.Info[s.ID] = info
	}
	if arch.HiddenSize == 0 {
		arch.HiddenSize = autoHiddenSize(arch, trainPoints)
	}
	var train, valid []*sample
	for i, s := range series {
		n, nVal, scale := len(s.Values), nVals[i], m.Info[s.ID].Scale
		for t := 0; t+seqLen <= n; t++ {
			switch {
			case t+seqLen <= n-nVal:
				train = append(train, makeSample(arch, feats, i, s, t, true, scale))
			case t+cfg.ContextLength >= n-nVal: // the whole target lies in the held-out tail
				valid = append(valid, makeSample(arch, feats, i, s, t, true, scale))
			}
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b617061)) // "kapa": a fixed stream per seed
	net := newNetwork(arch)
	net.init(rng)
	best, err := fit(net, train, valid, cfg, rng, opts)
	if err != nil {
		return nil, err
	}
	best.roundToFloat32()
	m.net = best
	if err := m.chooseMethods(series, nVals); err != nil {
		return nil, err
	}
	return m, nil
}

// adam is the optimizer state (Kingma & Ba, with bias correction).
type adam struct {
	lr, b1, b2, eps float64
	t               int
	m, v            *network
}

func (o *adam) step(w, g *network) {
	o.t++
	c1 := 1 - math.Pow(o.b1, float64(o.t))
	c2 := 1 - math.Pow(o.b2, float64(o.t))
	wt, gt, mt, vt := w.tensors(), g.tensors(), o.m.tensors(), o.v.tensors()
	for i := range wt {
		wd, gd, md, vd := wt[i].data, gt[i].data, mt[i].data, vt[i].data
		for j, gv := range gd {
			md[j] = o.b1*md[j] + (1-o.b1)*gv
			vd[j] = o.b2*vd[j] + (1-o.b2)*gv*gv
			wd[j] -= o.lr * (md[j] / c1) / (math.Sqrt(vd[j]/c2) + o.eps)
		}
	}
}

func zero(n *network) {
	for _, t := range n.tensors() {
		clear(t.data)
	}
}

func fit(net *network, train, valid []*sample, cfg Config, rng *rand.Rand, opts TrainOptions) (*network, error) {
	if len(train) == 0 {
		return nil, errors.New("no training windows")
	}
	a := net.arch
	grad := newNetwork(a)
	opt := &adam{lr: cfg.LearningRate, b1: 0.9, b2: 0.999, eps: 1e-8, m: newNetwork(a), v: newNetwork(a)}
	bt := newBatch(a, cfg.BatchSize)
	perm := make([]int, len(train))
	for i := range perm {
		perm[i] = i
	}
	var best *network
	bestLoss := math.Inf(1)
	bad := 0
	p := a.PredictionLength
	batchSamples := make([]*sample, 0, cfg.BatchSize)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		t0 := time.Now()
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		n := len(perm)
		if cfg.SamplesPerEpoch > 0 && cfg.SamplesPerEpoch < n {
			n = cfg.SamplesPerEpoch
		}
		sum := 0.0
		for lo := 0; lo < n; lo += cfg.BatchSize {
			batchSamples = batchSamples[:0]
			for _, i := range perm[lo:min(lo+cfg.BatchSize, n)] {
				batchSamples = append(batchSamples, train[i])
			}
			net.forward(batchSamples, bt)
			sum += pinball(a, batchSamples, bt, true)
			zero(grad)
			net.backward(batchSamples, bt, grad)
			opt.step(net, grad)
		}
		st := EpochStats{Epoch: epoch, TrainLoss: sum / float64(n*p*a.numHeads()), ValidLoss: math.NaN(), NumSamples: n}
		watch := st.TrainLoss
		if len(valid) > 0 {
			st.ValidLoss = evalLoss(net, valid, bt)
			watch = st.ValidLoss
		}
		if math.IsNaN(watch) || math.IsInf(watch, 0) {
			return nil, fmt.Errorf("training diverged at epoch %d (loss %v); lower the learning rate", epoch, watch)
		}
		if watch < bestLoss {
			bestLoss, bad, st.Best = watch, 0, true
			best = net.clone()
		} else {
			bad++
		}
		st.Elapsed = time.Since(t0)
		if opts.OnEpoch != nil {
			opts.OnEpoch(st)
		}
		if cfg.Patience > 0 && bad >= cfg.Patience {
			break
		}
	}
	return best, nil
}

// pinball sums twice the pinball loss of every head and step of the batch (so that the median head alone
// sums absolute errors) and, with grad, writes its derivative, averaged over the batch, into bt.dout.
func pinball(a Arch, samples []*sample, bt *batch, grad bool) float64 {
	p, k := a.PredictionLength, a.numHeads()
	o := p * k
	inv := 2 / float64(len(samples)*o)
	sum := 0.0
	for i, s := range samples {
		for h := 0; h < k; h++ {
			tau := a.headQuantile(h)
			for j := 0; j < p; j++ {
				idx := i*o + h*p + j
				u := s.y[j] - bt.out[idx]
				var g float64
				if u > 0 {
					sum += 2 * tau * u
					g = -tau
				} else {
					sum += 2 * (tau - 1) * u
					if u < 0 {
						g = 1 - tau
					}
				}
				if grad {
					bt.dout[idx] = g * inv
				}
			}
		}
	}
	return sum
}

// evalLoss is the loss of EpochStats on samples.
func evalLoss(net *network, samples []*sample, bt *batch) float64 {
	a := net.arch
	sum := 0.0
	for lo := 0; lo < len(samples); lo += bt.size {
		part := samples[lo:min(lo+bt.size, len(samples))]
		net.forward(part, bt)
		sum += pinball(a, part, bt, false)
	}
	return sum / float64(len(samples)*a.outputs())
}
