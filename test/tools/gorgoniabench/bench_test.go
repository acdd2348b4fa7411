package gorgoniabench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

const (
	batch, inputs, hidden, layers, outputs = 32, 1440, 64, 4, 12
)

// model is the forecaster's network in gorgonia: input projection, gated layers (z ← z ⊙ σ(W2 relu(W1 z))),
// linear output.
type model struct {
	g      *G.ExprGraph
	x, y   *G.Node
	out    *G.Node
	loss   *G.Node
	learn  G.Nodes
	vm     G.VM
	solver G.Solver
	xt, yt *tensor.Dense
}

func newModel(seed uint64) (*model, error) {
	g := G.NewGraph()
	m := &model{g: g}
	m.xt = tensor.New(tensor.WithShape(batch, inputs), tensor.Of(tensor.Float64))
	m.yt = tensor.New(tensor.WithShape(batch, outputs), tensor.Of(tensor.Float64))
	m.x = G.NewMatrix(g, tensor.Float64, G.WithShape(batch, inputs), G.WithName("x"), G.WithValue(m.xt))
	m.y = G.NewMatrix(g, tensor.Float64, G.WithShape(batch, outputs), G.WithName("y"), G.WithValue(m.yt))
	w := func(name string, r, c int) *G.Node {
		n := G.NewMatrix(g, tensor.Float64, G.WithShape(r, c), G.WithName(name), G.WithInit(G.GlorotU(1)))
		m.learn = append(m.learn, n)
		return n
	}
	win, bin := w("win", inputs, hidden), w("bin", 1, hidden)
	z, err := G.Mul(m.x, win)
	if err != nil {
		return nil, err
	}
	if z, err = G.BroadcastAdd(z, bin, nil, []byte{0}); err != nil {
		return nil, err
	}
	for l := 0; l < layers; l++ {
		w1, w2 := w(fmt.Sprintf("w1_%d", l), hidden, hidden/2), w(fmt.Sprintf("w2_%d", l), hidden/2, hidden)
		r, err := G.Mul(z, w1)
		if err != nil {
			return nil, err
		}
		if r, err = G.Rectify(r); err != nil {
			return nil, err
		}
		s, err := G.Mul(r, w2)
		if err != nil {
			return nil, err
		}
		if s, err = G.Sigmoid(s); err != nil {
			return nil, err
		}
		if z, err = G.HadamardProd(z, s); err != nil {
			return nil, err
		}
	}
	wout, bout := w("wout", hidden, outputs), w("bout", 1, outputs)
	out, err := G.Mul(z, wout)
	if err != nil {
		return nil, err
	}
	if m.out, err = G.BroadcastAdd(out, bout, nil, []byte{0}); err != nil {
		return nil, err
	}
	d, err := G.Sub(m.out, m.y)
	if err != nil {
		return nil, err
	}
	if d, err = G.Abs(d); err != nil {
		return nil, err
	}
	if m.loss, err = G.Mean(d); err != nil {
		return nil, err
	}
	if _, err = G.Grad(m.loss, m.learn...); err != nil {
		return nil, err
	}
	m.vm = G.NewTapeMachine(g, G.BindDualValues(m.learn...))
	m.solver = G.NewAdamSolver(G.WithLearnRate(1e-3))
	rng := rand.New(rand.NewPCG(seed, 2))
	xd := m.xt.Data().([]float64)
	for i := range xd {
		xd[i] = rng.NormFloat64()
	}
	yd := m.yt.Data().([]float64)
	for i := range yd {
		yd[i] = math.Sin(float64(i))
	}
	return m, nil
}

func (m *model) step() (float64, error) {
	if err := m.vm.RunAll(); err != nil {
		return 0, err
	}
	if err := m.solver.Step(G.NodesToValueGrads(m.learn)); err != nil {
		return 0, err
	}
	l := m.loss.Value().Data().(float64)
	m.vm.Reset()
	return l, nil
}

// BenchmarkGorgoniaTrainStep times one Adam step of a batch of 32 at the forecaster's 5-minute shape.
// Compare with BenchmarkTrainStep in recommender/forecast (the same shape, plus the embeddings' work).
func BenchmarkGorgoniaTrainStep(b *testing.B) {
	m, err := newModel(1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.vm.Close()
	first, last := 0.0, 0.0
	t0 := time.Now()
	n := 0
	for b.Loop() {
		l, err := m.step()
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			first = l
		}
		last = l
		n++
	}
	fmt.Printf("gorgonia v0.9.18: %.2f ms/step over %d steps; L1 loss %.4f → %.4f on a fixed batch\n",
		float64(time.Since(t0).Microseconds())/1000/float64(n), n, first, last)
}

// TestGorgoniaLearns checks the measured network really trains (the loss falls on a fixed batch).
func TestGorgoniaLearns(t *testing.T) {
	m, err := newModel(1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.vm.Close()
	first, _ := m.step()
	var last float64
	for range 30 {
		if last, err = m.step(); err != nil {
			t.Fatal(err)
		}
	}
	if !(last < first) {
		t.Fatalf("loss %v → %v: not learning", first, last)
	}
}
