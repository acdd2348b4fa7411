package forecast

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kapacitystack/kapacity/recommender/baseline"
	"github.com/kapacitystack/kapacity/recommender/synth"
)

// benchMethods are the columns of the accuracy tables: every baseline, the network alone, the
// ensemble, and what each series chose on its validation window ("selected", the model's forecast).
var benchMethods = []string{"snaive-day", MethodSeasonalNaive, MethodSeasonalMean, MethodTheta, MethodThetaWeekly,
	MethodNetwork, MethodEnsemble, "selected"}

// windowSet is the held-out windows of some series: per window, the history, the actuals and the
// in-sample MASE scale.
type windowSet struct {
	family  []string
	queries []Query
	actual  [][]float64
	scale   []float64
}

// forecastAll returns, per bench method, the forecasts of every window.
func forecastAll(b *testing.B, m *Model, ws windowSet) map[string][][]float64 {
	out := map[string][][]float64{}
	p := m.Config.PredictionLength
	day := baseline.DayLength(m.Step())
	for _, meth := range benchMethods {
		var fs [][]float64
		var err error
		switch meth {
		case "snaive-day":
			for _, q := range ws.queries {
				fs = append(fs, baseline.SeasonalNaive(q.History, day, p))
			}
		case "selected":
			fs, err = m.PredictBatch(ws.queries)
		default:
			fs, err = m.PredictMethod(ws.queries, meth)
		}
		if err != nil {
			b.Fatal(err)
		}
		out[meth] = fs
	}
	return out
}

// accuracyTable prints, per group, the mean sMAPE and MASE of every method and their ratios to
// seasonal-naive (the daily one, as the M4 competition's sNaive, and the weekly one the forecaster
// uses); it returns the overall ratios of the selected forecasts.
func accuracyTable(title string, groups []string, ws windowSet, fc map[string][][]float64) (smapeRatio, maseRatio float64) {
	type agg struct{ smape, mase float64 }
	sums := map[string]map[string]*agg{}
	counts := map[string]int{}
	for _, g := range append([]string{"all"}, groups...) {
		sums[g] = map[string]*agg{}
		for _, meth := range benchMethods {
			sums[g][meth] = &agg{}
		}
	}
	for i := range ws.queries {
		for _, g := range []string{"all", ws.family[i]} {
			counts[g]++
			for _, meth := range benchMethods {
				f := fc[meth][i]
				a := ws.actual[i]
				var abs, sm float64
				for j := range a {
					abs += math.Abs(f[j] - a[j])
					if d := math.Abs(a[j]) + math.Abs(f[j]); d > 0 {
						sm += 2 * math.Abs(f[j]-a[j]) / d
					}
				}
				sums[g][meth].smape += 100 * sm / float64(len(a))
				sums[g][meth].mase += abs / float64(len(a)) / ws.scale[i]
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: mean sMAPE %% / mean MASE per method, and ratio to seasonal-naive (daily | weekly)\n", title)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "group\twindows")
	for _, meth := range benchMethods {
		fmt.Fprintf(tw, "\t%s", meth)
	}
	fmt.Fprintln(tw)
	for _, g := range append(groups, "all") {
		n := float64(counts[g])
		if n == 0 {
			continue
		}
		d, w := sums[g]["snaive-day"], sums[g][MethodSeasonalNaive]
		fmt.Fprintf(tw, "%s\t%d", g, counts[g])
		for _, meth := range benchMethods {
			a := sums[g][meth]
			fmt.Fprintf(tw, "\t%.2f/%.3f (%.2f/%.2f | %.2f/%.2f)", a.smape/n, a.mase/n,
				a.smape/d.smape, a.mase/d.mase, a.smape/w.smape, a.mase/w.mase)
		}
		fmt.Fprintln(tw)
		if g == "all" {
			sel := sums[g]["selected"]
			smapeRatio = sel.smape / math.Min(d.smape, w.smape)
			maseRatio = sel.mase / math.Min(d.mase, w.mase)
		}
	}
	tw.Flush()
	fmt.Fprintf(&sb, "selected vs the better seasonal-naive: sMAPE %.3f×, MASE %.3f× (goal ≤ 0.9× each)\n", smapeRatio, maseRatio)
	// Printed, not logged: the testing package keeps only the first lines of a benchmark's log.
	fmt.Println(sb.String())
	return smapeRatio, maseRatio
}

// methodCounts says how many series chose each method.
func methodCounts(m *Model) string {
	c := map[string]int{}
	for _, in := range m.Info {
		c[in.Method]++
	}
	var parts []string
	for _, meth := range Methods {
		if c[meth] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", meth, c[meth]))
		}
	}
	return strings.Join(parts, ", ")
}

// synthConfig is the M4-hourly setting (horizon 48, context 168) with deploy/examples' hourly
// training settings.
func synthConfig() Config {
	c := DefaultConfig()
	c.Freq, c.ContextLength, c.PredictionLength = "1H", 168, 48
	c.Epochs, c.Patience, c.SamplesPerEpoch, c.LearningRate = 40, 6, 4096, 1e-3
	return c
}

// BenchmarkSynthetic trains one model on 96 hourly series of 700–1000 points (12 seeds of each
// synthetic family, levels from 0.1 to 100,000) with the last 48 points of each held out, and scores
// every method on the held-out horizon. It reports the training time (goal: 100 series in < 60 s on
// 2 cores) and the model size (goal: < 1 MiB per 100 series).
func BenchmarkSynthetic(b *testing.B) {
	train, ws, groups := synthSet(b, 12)
	cfg := synthConfig()
	var m *Model
	var took time.Duration
	var epochs int
	for b.Loop() {
		t0 := time.Now()
		var err error
		if m, err = Train(train, cfg, TrainOptions{OnEpoch: func(e EpochStats) { epochs = e.Epoch }}); err != nil {
			b.Fatal(err)
		}
		took = time.Since(t0)
	}
	size := modelSize(b, m)
	fmt.Printf("synthetic: %d series, trained in %s (%d epochs, hidden %d, %d parameters), model %.0f KiB; methods chosen: %s\n",
		len(train), took.Round(time.Millisecond), epochs, m.net.arch.HiddenSize, m.NumParams(), float64(size)/1024, methodCounts(m))
	sm, ms := accuracyTable("synthetic hourly, horizon 48, context 168", groups, ws, forecastAll(b, m, ws))
	b.ReportMetric(took.Seconds(), "train-s")
	b.ReportMetric(float64(size)/1024, "model-KiB")
	b.ReportMetric(sm, "sMAPE/snaive")
	b.ReportMetric(ms, "MASE/snaive")
}

// synthSet is seeds hourly series of 700–1000 points per family, each with its last 48 points held out.
func synthSet(b *testing.B, seeds uint64) (train []Series, ws windowSet, groups []string) {
	const horizon = 48
	for _, f := range synth.Families {
		groups = append(groups, string(f))
		for seed := uint64(1); seed <= seeds; seed++ {
			n := 700 + int((seed*7919+uint64(len(f))*104729)%301)
			s, err := synth.Generate(f, seed, n, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			full := Series{ID: s.ID, Start: s.Start, Step: s.Step, Values: s.Values}
			tr := full
			tr.Values = full.Values[:n-horizon]
			train = append(train, tr)
			ws.family = append(ws.family, string(f))
			ws.queries = append(ws.queries, Query{ID: s.ID, History: tr.Values, Last: tr.TimeAt(len(tr.Values) - 1)})
			ws.actual = append(ws.actual, full.Values[n-horizon:])
			ws.scale = append(ws.scale, NaiveScale(tr.Values, 24))
		}
	}
	return train, ws, groups
}

// BenchmarkSyntheticPerSeries trains one model per series, as a user with one workload would (the case
// where a network alone over-fits: a few hundred points for tens of thousands of weights), on three
// seeds of every family, and scores every method on the held-out 48 points.
func BenchmarkSyntheticPerSeries(b *testing.B) {
	train, ws, groups := synthSet(b, 3)
	fc := map[string][][]float64{}
	var took time.Duration
	params := 0
	for b.Loop() {
		clear(fc)
		t0 := time.Now()
		for i, s := range train {
			m, err := Train([]Series{s}, synthConfig(), TrainOptions{})
			if err != nil {
				b.Fatal(err)
			}
			params = m.NumParams()
			one := windowSet{family: ws.family[i : i+1], queries: ws.queries[i : i+1], actual: ws.actual[i : i+1], scale: ws.scale[i : i+1]}
			for k, v := range forecastAll(b, m, one) {
				fc[k] = append(fc[k], v...)
			}
		}
		took = time.Since(t0)
	}
	fmt.Printf("synthetic, one model per series: %d models trained in %s (%d parameters each)\n", len(train), took.Round(time.Millisecond), params)
	sm, ms := accuracyTable("synthetic hourly, one model per series, horizon 48, context 168", groups, ws, fc)
	b.ReportMetric(sm, "sMAPE/snaive")
	b.ReportMetric(ms, "MASE/snaive")
}

// modelSize is the bytes of the saved model directory.
func modelSize(b *testing.B, m *Model) int {
	dir := b.TempDir()
	if err := m.Save(dir); err != nil {
		b.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	size := 0
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			size += int(fi.Size())
		}
	}
	return size
}
