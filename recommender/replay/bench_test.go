package replay_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/cli"
	"github.com/kapacitystack/kapacity/recommender/replay"
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

// BenchmarkReplay replays every trace with `kapacity replay --pareto`'s defaults and prints each report
// and its cost/violation sweep, with issue 14's goal checked on the best combined policy: at least 25 %
// fewer replica-hours than an HPA tuned to the same minutes over 100 %, and at most 0.25× the default
// HPA's minutes over the CPU target. The last lines are the README's table.
func BenchmarkReplay(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(tracesDir(b), "*.csv"))
	sort.Strings(files)
	var summary []string
	for _, file := range files {
		tr, err := cli.ReadTrace(file)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tr.Name, func(b *testing.B) {
			w := replay.Workload{CPUTarget: 0.6, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: 100}
			w.PodCapacity = replay.AutoCapacity(tr, w.CPUTarget, 20)
			cfg := replay.DefaultConfig(tr.Step, w, 1)
			sweep := replay.DefaultSweep()
			cfg.Sweep = &sweep
			var rep *replay.Report
			var took time.Duration
			for b.Loop() {
				t0 := time.Now()
				if rep, err = replay.Run(context.Background(), tr, cfg); err != nil {
					b.Fatal(err)
				}
				took = time.Since(t0)
			}
			var sb strings.Builder
			if err := rep.WriteTable(&sb); err != nil {
				b.Fatal(err)
			}
			if err := rep.Pareto.WriteTable(&sb); err != nil {
				b.Fatal(err)
			}
			// Printed, not logged: the testing package keeps only the first lines of a benchmark's log.
			fmt.Println(sb.String())
			b.ReportMetric(took.Seconds(), "s")
			if bp := rep.Pareto.Best; bp != nil {
				verdict := "missed"
				if bp.MeetsGoal {
					verdict = "met"
				}
				pr := rep.Policy(replay.PolicyPredictiveReactive)
				oracle := rep.Pareto.Oracle
				summary = append(summary, fmt.Sprintf("| %s | %s (q %s) | %s%.0f%% | %.2f× | %s | %s%.0f%% | %.2f× |", tr.Name, bp.Policy,
					quantile(bp.Quantile), bound(bp.TunedHPABound), 100*bp.SavingVsTunedHPA, replay.Value(bp.OverTargetVsHPA), verdict,
					bound(oracle.TunedHPABound), 100*oracle.SavingVsTunedHPA, replay.Value(pr.CostVsOracle)))
				b.ReportMetric(bp.SavingVsTunedHPA, "best-saving")
			}
		})
	}
	fmt.Println("| trace | best policy (forecast quantile) | replica-h saved vs HPA tuned to equal min > 100% | min > target vs default HPA | goal (≥ 25 %, ≤ 0.25×) | oracle's saving (the limit) | predictive+reactive cost vs oracle |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, l := range summary {
		fmt.Println(l)
	}
}

// bound marks a saving the sweep did not bracket (see ParetoPoint.TunedHPABound).
func bound(b string) string {
	switch b {
	case "at-least":
		return "≥ "
	case "at-most":
		return "≤ "
	}
	return ""
}

func quantile(q float64) string {
	if q == 0 {
		return "point"
	}
	return fmt.Sprintf("%.2f", q)
}
