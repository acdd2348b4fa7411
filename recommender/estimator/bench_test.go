package estimator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// The synthetic workloads' known truth: a pod handling r requests/s uses benchA·r + benchB (+ the
// workload's bump) percent of a core, and should stay at or under benchTarget.
const (
	benchA      = 0.3
	benchB      = 10.0
	benchTarget = 60.0
	benchStep   = 10 * time.Minute
	benchDays   = 14 // history; the estimator tests on its last day
	benchEval   = 7  // days after the history on which the replica counts are scored
)

var benchStart = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC) // a Monday

// benchWorkload is a synthetic workload: its per-pod CPU is benchA·traffic/replicas + benchB + bump(t),
// observed with Gaussian noise of standard deviation noise.
type benchWorkload struct {
	name  string
	bump  func(t time.Time) float64 // extra per-pod CPU that does not follow traffic (batch jobs, caches)
	noise float64
}

func noBump(time.Time) float64 { return 0 }

// dailyBump is a job around 10:00 that adds up to 12% of a core to every pod.
func dailyBump(t time.Time) float64 {
	m := float64(t.Hour()*60 + t.Minute())
	return 12 * math.Exp(-math.Pow((m-600)/60, 2))
}

func weekendBump(t time.Time) float64 {
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return 8
	}
	return 0
}

var benchWorkloads = []benchWorkload{
	{"linear", noBump, 0.5},
	{"daily-bump", dailyBump, 0.5},
	{"weekend-bump", weekendBump, 0.5},
	{"noisy", noBump, 6},
}

// benchTraffic is requests/s at t: a daily sine peaking at noon, 40% lower on weekends, with jitter.
func benchTraffic(t time.Time, rng *rand.Rand) float64 {
	m := float64(t.Hour()*60 + t.Minute())
	v := 1000 + 700*math.Sin(2*math.Pi*(m-360)/1440)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		v *= 0.6
	}
	return v + 50*rng.Float64()
}

// truth is the smallest replica count whose per-pod CPU (without noise) is at most benchTarget.
func (w benchWorkload) truth(t time.Time, traffic float64) int {
	return max(1, int(math.Ceil(benchA*traffic/(benchTarget-benchB-w.bump(t)))))
}

// history is benchDays of samples; the replicas follow the traffic as an HPA aiming at 45% would, with
// jitter so that traffic per pod varies independently of traffic.
func (w benchWorkload) history(rng *rand.Rand) []Sample {
	var out []Sample
	for i := 0; i < benchDays*int(24*time.Hour/benchStep); i++ {
		t := benchStart.Add(time.Duration(i) * benchStep)
		traffic := benchTraffic(t, rng)
		replicas := float64(max(1, int(math.Ceil(benchA*traffic/(45-benchB)))+rng.IntN(4)-1))
		perPod := benchA*traffic/replicas + benchB + w.bump(t) + w.noise*rng.NormFloat64()
		out = append(out, Sample{Time: t, Resource: perPod * replicas, Replicas: replicas, Traffic: []float64{traffic}})
	}
	return out
}

// evalPoint is a time after the history, its traffic and the true replica count.
type evalPoint struct {
	t       time.Time
	traffic float64
	truth   int
}

func (w benchWorkload) evalPoints(rng *rand.Rand) []evalPoint {
	var out []evalPoint
	from := benchStart.Add(benchDays * 24 * time.Hour)
	for i := 0; i < benchEval*int(24*time.Hour/benchStep); i++ {
		t := from.Add(time.Duration(i) * benchStep)
		traffic := benchTraffic(t, rng)
		out = append(out, evalPoint{t, traffic, w.truth(t, traffic)})
	}
	return out
}

// benchOptions let every fit through the gates: the benchmark scores the models, not the gates.
func benchOptions() Options {
	o := DefaultOptions()
	o.MinCorrelation, o.MaxMSE, o.BigErrorLimit = -1, math.Inf(1), math.Inf(1)
	return o
}

// replicasFunc answers the replica count for the traffic at t.
type replicasFunc func(t time.Time, traffic float64) (int, error)

// benchModel is one estimator under test; fit returns its replica function and, for the linear-residual
// models, the fitted estimator.
type benchModel struct {
	name string
	fit  func(hist []Sample) (replicasFunc, *Estimator, error)
}

func solveWith(e *Estimator) replicasFunc {
	return func(t time.Time, traffic float64) (int, error) { return e.Solve(t, []float64{traffic}, benchTarget) }
}

// fitPolicy fits the estimator with the residual model cfg (nil: the default) and solves with policy,
// whatever the gates chose.
func fitPolicy(policy Policy, cfg *GBDTConfig) func([]Sample) (replicasFunc, *Estimator, error) {
	return func(hist []Sample) (replicasFunc, *Estimator, error) {
		opts := benchOptions()
		opts.ResidualModel = cfg
		e, err := Fit(hist, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("fit: %w", err)
		}
		e.Policy = policy
		return solveWith(e), e, nil
	}
}

// fitRatio is the naive estimator: pods scale with traffic at the history's traffic per unit of CPU,
// replicas = ceil(traffic / (target · Σtraffic/ΣCPU)).
func fitRatio(hist []Sample) (replicasFunc, *Estimator, error) {
	var traffic, cpu float64
	for _, s := range hist {
		traffic += s.Traffic[0]
		cpu += s.Resource
	}
	if traffic <= 0 || cpu <= 0 {
		return nil, nil, errors.New("ratio: no traffic or no CPU in the history")
	}
	perPod := benchTarget * traffic / cpu // requests/s one pod handles at the target
	return func(_ time.Time, tr float64) (int, error) { return max(1, int(math.Ceil(tr/perPod))), nil }, nil, nil
}

// benchModels: the first is the model under test, the others the baselines it is compared with.
func benchModels() []benchModel {
	fixed := DefaultGBDTConfig()
	fixed.Patience = 0
	// A single stump: Fit still trains a residual model, and this one costs next to nothing.
	stump := &GBDTConfig{NumLeaves: 2, NumTrees: 1, LearningRate: 0.1, MaxBin: 2}
	return []benchModel{
		{"linear-residual", fitPolicy(PolicyResidual, nil)},
		{"lr-no-early-stop", fitPolicy(PolicyResidual, &fixed)},
		{"elasticnet", fitPolicy(PolicyLinear, stump)},
		{"ratio", fitRatio},
	}
}

// benchScore is one model's figures on one workload.
type benchScore struct {
	fit      time.Duration // per fit
	mae      float64       // mean |estimated − true replicas|
	maxUnder int           // largest true − estimated replicas (0 if never under)
	under    float64       // share of points under-provisioned
	rounds   int           // residual boosting rounds kept, -1 without a residual model
	gates    string        // the policy the default gates would choose, "" without a residual model
}

func score(f replicasFunc, pts []evalPoint) (mae float64, maxUnder int, under float64, err error) {
	for _, p := range pts {
		n, err := f(p.t, p.traffic)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("at %v: %w", p.t, err)
		}
		mae += math.Abs(float64(n-p.truth)) / float64(len(pts))
		if p.truth > n {
			maxUnder = max(maxUnder, p.truth-n)
			under += 1 / float64(len(pts))
		}
	}
	return mae, maxUnder, under, nil
}

// BenchmarkEstimator fits each model on two weeks of a synthetic workload and scores its replica counts
// against the known truth over the following week, with the forecast traffic replaced by the actual one
// so that only the estimator's error counts. ns/op, B/op and allocs/op are the linear-residual model's
// Fit; the baselines are fitted in the same iterations (timer stopped) so that the fit-time ratios
// compare runs under the same load. Each workload logs a table of all the models.
func BenchmarkEstimator(b *testing.B) {
	models := benchModels()
	for wi, w := range benchWorkloads {
		b.Run(w.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(wi)+1, 11))
			hist, pts := w.history(rng), w.evalPoints(rng)
			fitted := make([]replicasFunc, len(models))
			ests := make([]*Estimator, len(models))
			took := make([]time.Duration, len(models))
			runs := 0
			for b.Loop() {
				for i, m := range models {
					if i > 0 {
						b.StopTimer()
					}
					t0 := time.Now()
					f, e, err := m.fit(hist)
					took[i] += time.Since(t0)
					if err != nil {
						b.Fatalf("%s: %v", m.name, err)
					}
					fitted[i], ests[i] = f, e
					if i > 0 {
						b.StartTimer()
					}
				}
				runs++
			}
			scores := make([]benchScore, len(models))
			for i, m := range models {
				s := benchScore{fit: took[i] / time.Duration(runs), rounds: -1}
				var err error
				if s.mae, s.maxUnder, s.under, err = score(fitted[i], pts); err != nil {
					b.Fatalf("%s: %v", m.name, err)
				}
				if e := ests[i]; e != nil && e.Policy == PolicyResidual {
					s.rounds = rounds(e.Residual)
					s.gates = "none"
					if p, ok := choosePolicy(e.LinearTest, e.ResidualTest, DefaultOptions()); ok {
						s.gates = string(p)
					}
				}
				scores[i] = s
			}
			lr, en, ratio := scores[0], scores[2], scores[3]
			b.ReportMetric(float64(lr.rounds), "rounds")
			b.ReportMetric(lr.mae, "MAE-replicas")
			b.ReportMetric(float64(lr.maxUnder), "max-under-replicas")
			b.ReportMetric(100*lr.under, "under-%")
			b.ReportMetric(ms(en.fit), "en-fit-ms")
			b.ReportMetric(en.mae, "en-MAE-replicas")
			b.ReportMetric(float64(en.maxUnder), "en-max-under-replicas")
			b.ReportMetric(ratio.mae, "ratio-MAE-replicas")
			b.ReportMetric(float64(ratio.maxUnder), "ratio-max-under-replicas")
			b.ReportMetric(float64(lr.fit)/float64(en.fit), "fit/en")
			if en.mae > 0 {
				b.ReportMetric(lr.mae/en.mae, "MAE/en")
			}
			if ratio.mae > 0 {
				b.ReportMetric(lr.mae/ratio.mae, "MAE/ratio")
			}
			// One table per workload: the framework keeps only the first 10 lines of a benchmark's log.
			b.Logf("%s (truth known; per-pod target %g%% CPU; %d days of history, scored on the next %d):\n%s",
				w.name, benchTarget, benchDays, benchEval, benchTable(models, scores))
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchTable lays out one row per model, with ratios to the ElasticNet-only and ratio baselines.
func benchTable(models []benchModel, scores []benchScore) string {
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "model\tdefault gates\trounds\tfit ms\tfit/en\tMAE replicas\tMAE/en\tMAE/ratio\tmax under\tunder %\t")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	en, naive := scores[2], scores[3]
	for i, s := range scores {
		kept, gates := "-", s.gates
		if s.rounds >= 0 {
			kept = fmt.Sprint(s.rounds)
		}
		if gates == "" {
			gates = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f\t%s\t%.3f\t%s\t%s\t%d\t%.1f\t\n", models[i].name, gates, kept,
			ms(s.fit), ratio(float64(s.fit), float64(en.fit)), s.mae, ratio(s.mae, en.mae), ratio(s.mae, naive.mae),
			s.maxUnder, 100*s.under)
	}
	_ = w.Flush()
	return out.String()
}
