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

// BenchmarkReplay replays every trace with `kapacity replay`'s defaults and prints each report, with the
// issue's goal checked on the predictive policies: within 10 % of the oracle's replica-hours and at least
// 4× fewer minutes over the CPU target than the native HPA.
func BenchmarkReplay(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(tracesDir(b), "*.csv"))
	sort.Strings(files)
	for _, file := range files {
		tr, err := cli.ReadTrace(file)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tr.Name, func(b *testing.B) {
			w := replay.Workload{CPUTarget: 0.6, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: 100}
			w.PodCapacity = replay.AutoCapacity(tr, w.CPUTarget, 20)
			cfg := replay.DefaultConfig(tr.Step, w, 1)
			var rep *replay.Report
			var trainEnd, end time.Time
			for b.Loop() {
				t0 := time.Now()
				cfg.Progress = func(stage string, _, _ int) {
					if strings.HasPrefix(stage, "replay") && trainEnd.IsZero() {
						trainEnd = time.Now()
					}
				}
				trainEnd = time.Time{}
				if rep, err = replay.Run(context.Background(), tr, cfg); err != nil {
					b.Fatal(err)
				}
				end = time.Now()
				b.ReportMetric(trainEnd.Sub(t0).Seconds(), "train-s")
				b.ReportMetric(end.Sub(trainEnd).Seconds(), "replay-s")
			}
			var sb strings.Builder
			if err := rep.WriteTable(&sb); err != nil {
				b.Fatal(err)
			}
			for _, name := range []string{replay.PolicyPredictive, replay.PolicyPredictiveReactive} {
				p := rep.Policy(name)
				if p == nil || p.Error != "" {
					continue
				}
				verdict := "met"
				if p.CostVsOracle > 1.1 || (p.ViolationsVsHPA > 0.25) {
					verdict = "missed"
				}
				sb.WriteString(name + ": goal (≤ 1.10× oracle replica-h, ≤ 0.25× hpa minutes over target) " + verdict + "\n")
			}
			// Printed, not logged: the testing package keeps only the first lines of a benchmark's log.
			fmt.Println(sb.String())
			if p := rep.Policy(replay.PolicyPredictiveReactive); p != nil && p.Error == "" {
				b.ReportMetric(p.CostVsOracle, "pr-cost/oracle")
				b.ReportMetric(p.ViolationsVsHPA, "pr-viol/hpa")
			}
		})
	}
}
