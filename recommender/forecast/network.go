package forecast

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Arch is the shape of the network; it is saved with the model and fixes the weight shapes.
type Arch struct {
	NumSeries        int   `json:"numSeries"`
	ContextLength    int   `json:"contextLength"`
	PredictionLength int   `json:"predictionLength"`
	Cardinalities    []int `json:"cardinalities"`
	HiddenSize       int   `json:"hiddenSize"`
	NumLayers        int   `json:"numLayers"`
	// Quantiles are the output heads: PredictionLength outputs per quantile, in this order. Models of
	// format version 1 have none: a single head trained on L1 loss, the median.
	Quantiles []float64 `json:"quantiles,omitempty"`
}

// numHeads is the number of quantile heads (1 for a version-1 model).
func (a Arch) numHeads() int { return max(1, len(a.Quantiles)) }

// outputs is the width of the output layer: PredictionLength per head.
func (a Arch) outputs() int { return a.PredictionLength * a.numHeads() }

// headQuantile is the quantile head k is trained for.
func (a Arch) headQuantile(k int) float64 {
	if len(a.Quantiles) == 0 {
		return 0.5
	}
	return a.Quantiles[k]
}

// featureSize is the width of the SNTSF feature vector: 4C + 4FC, as in the reference.
func (a Arch) featureSize() int {
	c, f := a.ContextLength, len(a.Cardinalities)
	return 4*c + 4*f*c
}

// tensor is one named, row-major weight matrix.
type tensor struct {
	name       string
	rows, cols int
	data       []float64
}

func newTensor(name string, rows, cols int) *tensor {
	return &tensor{name: name, rows: rows, cols: cols, data: make([]float64, rows*cols)}
}

func (t *tensor) general() blas64.General {
	return blas64.General{Rows: t.rows, Cols: t.cols, Stride: t.cols, Data: t.data}
}

// network holds the SNTSF weights. The reference applies its squeeze-excitation ("gated") layers to the
// full 4C+4FC feature vector, which costs O((4C+4FC)^2) per layer: 133M weights for one day of 5-minute
// context. We first project the features to HiddenSize (a linear layer) and gate there, which keeps the
// model under 1 MiB and trainable in seconds; everything before the projection is the reference's design.
type network struct {
	arch    Arch
	static  *tensor   // NumSeries x C
	timeEmb []*tensor // card_k x C
	win     *tensor   // Hidden x D
	bin     *tensor   // 1 x Hidden
	w1, w2  []*tensor // (Hidden/2 x Hidden), (Hidden x Hidden/2) per gated layer, no bias (as the reference)
	wout    *tensor   // P·heads x Hidden
	bout    *tensor   // 1 x P·heads
}

func newNetwork(a Arch) *network {
	n := &network{arch: a}
	c, h, hr := a.ContextLength, a.HiddenSize, a.HiddenSize/2
	n.static = newTensor("static_embedding", a.NumSeries, c)
	for k, card := range a.Cardinalities {
		n.timeEmb = append(n.timeEmb, newTensor("time_embedding_"+itoa(k), card, c))
	}
	n.win = newTensor("input.weight", h, a.featureSize())
	n.bin = newTensor("input.bias", 1, h)
	for l := 0; l < a.NumLayers; l++ {
		n.w1 = append(n.w1, newTensor("gate_"+itoa(l)+".w1", hr, h))
		n.w2 = append(n.w2, newTensor("gate_"+itoa(l)+".w2", h, hr))
	}
	n.wout = newTensor("output.weight", a.outputs(), h)
	n.bout = newTensor("output.bias", 1, a.outputs())
	return n
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// tensors lists the weights in their fixed file order.
func (n *network) tensors() []*tensor {
	ts := []*tensor{n.static}
	ts = append(ts, n.timeEmb...)
	ts = append(ts, n.win, n.bin)
	for l := range n.w1 {
		ts = append(ts, n.w1[l], n.w2[l])
	}
	return append(ts, n.wout, n.bout)
}

// init follows PyTorch's defaults, which the reference relies on: N(0,1) embeddings and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) linear layers.
func (n *network) init(rng *rand.Rand) {
	for _, t := range n.tensors() {
		switch {
		case t == n.static || contains(n.timeEmb, t):
			for i := range t.data {
				t.data[i] = rng.NormFloat64()
			}
		default:
			fanIn := t.cols
			if t == n.bin {
				fanIn = n.win.cols
			} else if t == n.bout {
				fanIn = n.wout.cols
			}
			b := 1 / math.Sqrt(float64(fanIn))
			for i := range t.data {
				t.data[i] = (2*rng.Float64() - 1) * b
			}
		}
	}
}

func contains(ts []*tensor, t *tensor) bool {
	for _, u := range ts {
		if u == t {
			return true
		}
	}
	return false
}

func (n *network) clone() *network {
	c := newNetwork(n.arch)
	src, dst := n.tensors(), c.tensors()
	for i := range src {
		copy(dst[i].data, src[i].data)
	}
	return c
}

// roundToFloat32 makes the in-memory weights equal to what the model file stores, so that a saved and
// reloaded model predicts bit-for-bit the same values.
func (n *network) roundToFloat32() {
	for _, t := range n.tensors() {
		for i, v := range t.data {
			t.data[i] = float64(float32(v))
		}
	}
}

func (n *network) numParams() int {
	s := 0
	for _, t := range n.tensors() {
		s += len(t.data)
	}
	return s
}

// sample is one training or prediction window, already scaled.
type sample struct {
	series     int
	x          []float64 // C scaled context values
	y          []float64 // P scaled targets (nil when predicting)
	start, end []int     // time feature indices at the first and the last prediction step
	scale      float64
}

// batch holds the activations of one forward pass, kept for the backward pass.
type batch struct {
	size int
	f    []float64   // B x D features
	z    [][]float64 // L+1 of B x H
	r    [][]float64 // L of B x H/2 (after ReLU)
	s    [][]float64 // L of B x H (sigmoid gates)
	out  []float64   // B x P·heads
	// scratch for the backward pass
	dz, dzp, ds, dr []float64
	dout, df        []float64
}

func newBatch(a Arch, size int) *batch {
	h, hr := a.HiddenSize, a.HiddenSize/2
	b := &batch{size: size, f: make([]float64, size*a.featureSize()), out: make([]float64, size*a.outputs())}
	for l := 0; l <= a.NumLayers; l++ {
		b.z = append(b.z, make([]float64, size*h))
	}
	for l := 0; l < a.NumLayers; l++ {
		b.r = append(b.r, make([]float64, size*hr))
		b.s = append(b.s, make([]float64, size*h))
	}
	b.dz, b.dzp, b.ds = make([]float64, size*h), make([]float64, size*h), make([]float64, size*h)
	b.dr = make([]float64, size*hr)
	b.dout = make([]float64, size*a.outputs())
	b.df = make([]float64, size*a.featureSize())
	return b
}

func mat(rows, cols int, d []float64) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: d[:rows*cols]}
}

// differencingRho is the reference's ρ in d_k = v_{k+1} − ρ·v_k.
const differencingRho = 0.8

// features writes the SNTSF feature vector of s into f (length 4C+4FC).
func (n *network) features(s *sample, f []float64) {
	c := n.arch.ContextLength
	nf := len(n.timeEmb)
	st := n.static.data[s.series*c : (s.series+1)*c]
	off := 0
	copy(f[off:off+c], st)
	off += c
	for k, e := range n.timeEmb {
		copy(f[off+k*c:off+(k+1)*c], e.data[s.start[k]*c:(s.start[k]+1)*c])
	}
	off += nf * c
	for k, e := range n.timeEmb {
		copy(f[off+k*c:off+(k+1)*c], e.data[s.end[k]*c:(s.end[k]+1)*c])
	}
	off += nf * c
	copy(f[off:off+c], s.x)
	off += c
	mean := 0.0
	for _, v := range s.x {
		mean += v
	}
	mean /= float64(c)
	prev := mean
	for i, v := range s.x {
		f[off+i] = v - differencingRho*prev
		prev = v
	}
	off += c
	for i, v := range s.x {
		f[off+i] = v * st[i]
	}
	off += c
	for k, e := range n.timeEmb {
		row := e.data[s.end[k]*c : (s.end[k]+1)*c]
		for i, v := range s.x {
			f[off+k*c+i] = v * row[i]
		}
	}
	off += nf * c
	for k, e := range n.timeEmb {
		row := e.data[s.start[k]*c : (s.start[k]+1)*c]
		for i, v := range s.x {
			f[off+k*c+i] = v * row[i]
		}
	}
}

// forward computes the scaled outputs of the samples into b.out.
func (n *network) forward(samples []*sample, b *batch) {
	a := n.arch
	bs, d, h, hr, p := len(samples), a.featureSize(), a.HiddenSize, a.HiddenSize/2, a.outputs()
	for i, s := range samples {
		n.features(s, b.f[i*d:(i+1)*d])
	}
	z0 := b.z[0][:bs*h]
	for i := 0; i < bs; i++ {
		copy(z0[i*h:(i+1)*h], n.bin.data)
	}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, mat(bs, d, b.f), n.win.general(), 1, mat(bs, h, z0))
	for l := 0; l < a.NumLayers; l++ {
		zp, r, s, z := b.z[l][:bs*h], b.r[l][:bs*hr], b.s[l][:bs*h], b.z[l+1][:bs*h]
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, mat(bs, h, zp), n.w1[l].general(), 0, mat(bs, hr, r))
		for i, v := range r {
			if v < 0 {
				r[i] = 0
			}
		}
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, mat(bs, hr, r), n.w2[l].general(), 0, mat(bs, h, s))
		for i, v := range s {
			g := 1 / (1 + math.Exp(-v))
			s[i] = g
			z[i] = zp[i] * g
		}
	}
	out := b.out[:bs*p]
	for i := 0; i < bs; i++ {
		copy(out[i*p:(i+1)*p], n.bout.data)
	}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, mat(bs, h, b.z[a.NumLayers]), n.wout.general(), 1, mat(bs, p, out))
}

// backward accumulates into g the gradients of the loss whose derivative w.r.t. b.out is in b.dout.
func (n *network) backward(samples []*sample, b *batch, g *network) {
	a := n.arch
	bs, d, h, hr, p := len(samples), a.featureSize(), a.HiddenSize, a.HiddenSize/2, a.outputs()
	dout := mat(bs, p, b.dout)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, dout, mat(bs, h, b.z[a.NumLayers]), 1, g.wout.general())
	colSum(dout, g.bout.data)
	dz, dzp, ds, dr := b.dz[:bs*h], b.dzp[:bs*h], b.ds[:bs*h], b.dr[:bs*hr]
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, dout, n.wout.general(), 0, mat(bs, h, dz))
	for l := a.NumLayers - 1; l >= 0; l-- {
		zp, r, s := b.z[l][:bs*h], b.r[l][:bs*hr], b.s[l][:bs*h]
		for i := range dz {
			dzp[i] = dz[i] * s[i]
			ds[i] = dz[i] * zp[i] * s[i] * (1 - s[i]) // through the sigmoid: dG
		}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, mat(bs, h, ds), mat(bs, hr, r), 1, g.w2[l].general())
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, mat(bs, h, ds), n.w2[l].general(), 0, mat(bs, hr, dr))
		for i, v := range r {
			if v <= 0 {
				dr[i] = 0
			}
		}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, mat(bs, hr, dr), mat(bs, h, zp), 1, g.w1[l].general())
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, mat(bs, hr, dr), n.w1[l].general(), 1, mat(bs, h, dzp))
		dz, dzp = dzp, dz
	}
	dz0 := mat(bs, h, dz)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, dz0, mat(bs, d, b.f), 1, g.win.general())
	colSum(dz0, g.bin.data)
	df := b.df[:bs*d]
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, dz0, n.win.general(), 0, mat(bs, d, df))
	for i, s := range samples {
		n.embeddingGrads(s, df[i*d:(i+1)*d], g)
	}
}

// embeddingGrads scatters the feature gradient df of one sample into the embedding tables of g.
func (n *network) embeddingGrads(s *sample, df []float64, g *network) {
	c := n.arch.ContextLength
	nf := len(n.timeEmb)
	gst := g.static.data[s.series*c : (s.series+1)*c]
	offStart, offEnd := c, c+nf*c
	offXS := 3*c + 2*nf*c
	offXEnd, offXStart := 4*c+2*nf*c, 4*c+3*nf*c
	for i := 0; i < c; i++ {
		gst[i] += df[i] + df[offXS+i]*s.x[i]
	}
	for k := range n.timeEmb {
		gs := g.timeEmb[k].data[s.start[k]*c : (s.start[k]+1)*c]
		ge := g.timeEmb[k].data[s.end[k]*c : (s.end[k]+1)*c]
		for i := 0; i < c; i++ {
			gs[i] += df[offStart+k*c+i] + df[offXStart+k*c+i]*s.x[i]
			ge[i] += df[offEnd+k*c+i] + df[offXEnd+k*c+i]*s.x[i]
		}
	}
}

func colSum(m blas64.General, dst []float64) {
	for i := 0; i < m.Rows; i++ {
		row := m.Data[i*m.Stride : i*m.Stride+m.Cols]
		for j, v := range row {
			dst[j] += v
		}
	}
}
