package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
}

// DefaultConfig returns the reference's documented defaults (10min, context 7, prediction 3, lr 1e-3,
// 100 epochs, batch 32, patience 15) plus this implementation's network and early-stopping settings.
func DefaultConfig() Config {
	return Config{
		Freq: "10min", ContextLength: 7, PredictionLength: 3, HiddenSize: 64, NumLayers: 4,
		LearningRate: 1e-3, Epochs: 100, BatchSize: 32, Patience: 15, ValidationFraction: 0.1, Seed: 1,
	}
}

func (c Config) validate() error {
	var errs []error
	if _, err := ParseFreq(c.Freq); err != nil {
		errs = append(errs, err)
	}
	if c.ContextLength < 1 || c.PredictionLength < 1 {
		errs = append(errs, fmt.Errorf("contextLength (%d) and predictionLength (%d) must be positive", c.ContextLength, c.PredictionLength))
	}
	if c.HiddenSize < 2 || c.HiddenSize%2 != 0 {
		errs = append(errs, fmt.Errorf("hiddenSize must be an even number ≥ 2, got %d", c.HiddenSize))
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
	step   time.Duration
	net    *network
}

// EpochStats is reported after every epoch.
type EpochStats struct {
	Epoch      int
	TrainLoss  float64 // mean absolute error on scaled values, as the reference's L1Loss
	ValidLoss  float64 // NaN without a validation split
	Best       bool    // this epoch's weights are kept
	Elapsed    time.Duration
	NumSamples int
}

// TrainOptions holds what is not part of the saved configuration.
type TrainOptions struct {
	// OnEpoch, when set, receives the progress of every epoch (a progress bar, a log line).
	OnEpoch func(EpochStats)
}

// Train fits one model on all series together (one series-id embedding row each). All series must share
// the step of cfg.Freq. Training is deterministic for a given cfg.Seed.
func Train(series []Series, cfg Config, opts TrainOptions) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid forecaster config: %w", err)
	}
	step, _ := ParseFreq(cfg.Freq)
	feats := TimeFeaturesFor(step)
	arch := Arch{NumSeries: len(series), ContextLength: cfg.ContextLength, PredictionLength: cfg.PredictionLength,
		HiddenSize: cfg.HiddenSize, NumLayers: cfg.NumLayers}
	for _, f := range feats {
		c, _ := f.Cardinality()
		arch.Cardinalities = append(arch.Cardinalities, c)
	}
	m := &Model{Config: cfg, Features: feats, Series: map[string]int{}, step: step}
	var train, valid []*sample
	seqLen := cfg.ContextLength + cfg.PredictionLength
	for i, s := range series {
		if s.Step != step {
			return nil, fmt.Errorf("series %q has step %v, the model's freq %q is %v", s.ID, s.Step, cfg.Freq, step)
		}
		if _, dup := m.Series[s.ID]; dup {
			return nil, fmt.Errorf("series %q given twice", s.ID)
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
		for t := 0; t+seqLen <= n; t++ {
			smp := makeSample(arch, feats, i, s, t, true)
			switch {
			case t+seqLen <= n-nVal:
				train = append(train, smp)
			case t+cfg.ContextLength >= n-nVal: // the whole target lies in the held-out tail
				valid = append(valid, smp)
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
			bs := len(batchSamples)
			net.forward(batchSamples, bt)
			inv := 1 / float64(bs*p)
			for i, s := range batchSamples {
				for j := 0; j < p; j++ {
					d := bt.out[i*p+j] - s.y[j]
					sum += math.Abs(d)
					bt.dout[i*p+j] = sign(d) * inv
				}
			}
			zero(grad)
			net.backward(batchSamples, bt, grad)
			opt.step(net, grad)
		}
		st := EpochStats{Epoch: epoch, TrainLoss: sum / float64(n*p), ValidLoss: math.NaN(), NumSamples: n}
		watch := st.TrainLoss
		if len(valid) > 0 {
			st.ValidLoss = evalL1(net, valid, bt)
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

func sign(d float64) float64 {
	switch {
	case d > 0:
		return 1
	case d < 0:
		return -1
	}
	return 0
}

// evalL1 is the mean absolute error on scaled values over samples.
func evalL1(net *network, samples []*sample, bt *batch) float64 {
	p := net.arch.PredictionLength
	sum := 0.0
	for lo := 0; lo < len(samples); lo += bt.size {
		part := samples[lo:min(lo+bt.size, len(samples))]
		net.forward(part, bt)
		for i, s := range part {
			for j := 0; j < p; j++ {
				sum += math.Abs(bt.out[i*p+j] - s.y[j])
			}
		}
	}
	return sum / float64(len(samples)*p)
}
