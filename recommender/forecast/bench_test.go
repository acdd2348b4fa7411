package forecast

import (
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/baseline"
	"github.com/kapacitystack/kapacity/test/sharedfiles"
)

// tracesDir is ../shared/data/traces beside the repository; the benchmark is skipped without it.
func tracesDir(b *testing.B) string {
	dir, err := sharedfiles.Path("data", "traces")
	if err != nil {
		b.Skip(err)
	}
	return dir
}

// readTrace reads a timestamp,value CSV and regularizes it on its most common step.
func readTrace(path string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return Series{}, fmt.Errorf("%s: %w", path, err)
	}
	var ts []time.Time
	var vs []float64
	for _, r := range rows[1:] {
		t, err := time.Parse(time.DateTime, r[0])
		if err != nil {
			return Series{}, fmt.Errorf("%s: %w", path, err)
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return Series{}, fmt.Errorf("%s: %w", path, err)
		}
		ts, vs = append(ts, t), append(vs, v)
	}
	diffs := map[time.Duration]int{}
	for i := 1; i < len(ts); i++ {
		diffs[ts[i].Sub(ts[i-1])]++
	}
	var step time.Duration
	for d, c := range diffs {
		if d > 0 && (step == 0 || c > diffs[step]) {
			step = d
		}
	}
	return Regularize(strings.TrimSuffix(filepath.Base(path), ".csv"), ts, vs, step)
}

// benchConfig chooses the model per trace step: forecast 12 steps (1 h at 5 min, 6 h at 30 min) from one
// day (30 min) or six hours (5 min) of context, as deploy/examples' 5-minute config; the time
// embeddings carry the longer cycles, the seasonal baselines the daily and weekly ones.
func benchConfig(step time.Duration) Config {
	c := DefaultConfig()
	c.Freq = fmt.Sprintf("%dmin", int(step/time.Minute))
	c.PredictionLength = 12
	c.ContextLength = 48
	if step < 30*time.Minute {
		c.ContextLength = 72
	}
	c.Epochs, c.Patience, c.SamplesPerEpoch, c.LearningRate = 40, 6, 4096, 1e-3
	return c
}

// BenchmarkTraces trains one model per shared trace on its first 80 % (as a user with one workload
// would) and forecasts the rest in consecutive horizons, scoring every method on the same windows
// (MASE scaled by the daily seasonal-naive's in-sample error).
func BenchmarkTraces(b *testing.B) {
	dir := tracesDir(b)
	files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	sort.Strings(files)
	var all windowSet
	var groups []string
	fcAll := map[string][][]float64{}
	for _, file := range files {
		s, err := readTrace(file)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FillGaps(s.Values, FillLinear); err != nil {
			b.Fatal(err)
		}
		groups = append(groups, s.ID)
		b.Run(s.ID, func(b *testing.B) {
			cfg := benchConfig(s.Step)
			cut := len(s.Values) * 8 / 10
			train := s
			train.Values = s.Values[:cut]
			var m *Model
			var epochs int
			var trainTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				m, err = Train([]Series{train}, cfg, TrainOptions{OnEpoch: func(e EpochStats) { epochs = e.Epoch }})
				if err != nil {
					b.Fatal(err)
				}
				trainTime = time.Since(t0)
			}
			p := cfg.PredictionLength
			day := baseline.DayLength(s.Step)
			var ws windowSet
			for o := cut; o+p <= len(s.Values); o += p {
				ws.family = append(ws.family, s.ID)
				ws.queries = append(ws.queries, Query{ID: s.ID, History: s.Values[:o], Last: s.TimeAt(o - 1)})
				ws.actual = append(ws.actual, s.Values[o:o+p])
				ws.scale = append(ws.scale, NaiveScale(train.Values, day))
			}
			fc := forecastAll(b, m, ws)
			in := m.SeriesInfo(s.ID)
			fmt.Printf("%s: trained in %s (%d epochs, hidden %d, %d parameters, model %.0f KiB); chose %s (validation MASE %.3f vs seasonal-naive %.3f)\n",
				s.ID, trainTime.Round(time.Millisecond), epochs, m.HiddenSize(), m.NumParams(), float64(modelSize(b, m))/1024,
				in.Method, in.Chosen().MASE, in.Validation[MethodSeasonalNaive].MASE)
			all.family = append(all.family, ws.family...)
			all.queries = append(all.queries, ws.queries...)
			all.actual = append(all.actual, ws.actual...)
			all.scale = append(all.scale, ws.scale...)
			for k, v := range fc {
				fcAll[k] = append(fcAll[k], v...)
			}
			b.ReportMetric(trainTime.Seconds(), "train-s")
		})
	}
	if len(all.queries) > 0 {
		accuracyTable("shared traces, one model per trace, held-out last 20 % in consecutive horizons of 12 steps", groups, all, fcAll)
	}
}

// BenchmarkTrainStep times one Adam step (forward, backward, update) of a batch of 32 at the shape used for
// 5-minute traces (C=72, 4 time features: 1440 inputs, hidden 64, 4 gated layers, 12 outputs). This is the
// figure compared with GoMLX in doc.go.
func BenchmarkTrainStep(b *testing.B) {
	a := Arch{NumSeries: 1, ContextLength: 72, PredictionLength: 12, Cardinalities: []int{60, 24, 8, 32}, HiddenSize: 64, NumLayers: 4}
	rng := rand.New(rand.NewPCG(1, 2))
	net := newNetwork(a)
	net.init(rng)
	var samples []*sample
	for i := 0; i < 32; i++ {
		s := &sample{x: make([]float64, 72), y: make([]float64, 12), start: []int{1, 2, 3, 4}, end: []int{5, 6, 7, 8}}
		for j := range s.x {
			s.x[j] = rng.NormFloat64()
		}
		samples = append(samples, s)
	}
	g := newNetwork(a)
	opt := &adam{lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, m: newNetwork(a), v: newNetwork(a)}
	bt := newBatch(a, 32)
	for b.Loop() {
		net.forward(samples, bt)
		pinball(a, samples, bt, true)
		zero(g)
		net.backward(samples, bt, g)
		opt.step(net, g)
	}
}
