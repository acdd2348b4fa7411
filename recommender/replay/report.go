package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a replay.
type Report struct {
	Trace string        `json:"trace"`
	Step  time.Duration `json:"-"`
	// TrainStart..Start trained the predictive policy (and sized the cron table); Start..End is replayed.
	TrainStart    time.Time `json:"trainStart"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	TickSeconds   float64   `json:"tickSeconds"`
	Workload      Workload  `json:"workload"`
	JobRuns       int       `json:"jobRuns,omitempty"`
	FailedJobRuns int       `json:"failedJobRuns,omitempty"`
	// OracleCappedMinutes is the time the demand needed more than MaxReplicas pods at the CPU target:
	// there the oracle is capped too, is no longer a lower bound, and other policies may beat it.
	OracleCappedMinutes float64 `json:"oracleCappedMinutes,omitempty"`
	// PeakRequired is the most pods the demand needed at the CPU target, whatever MaxReplicas says.
	PeakRequired int `json:"peakRequired"`
	// Pareto, when asked for, holds the cost/violation frontiers (see Pareto).
	Pareto   *Pareto        `json:"pareto,omitempty"`
	Policies []PolicyResult `json:"policies"`
	Chart    ChartData      `json:"-"`
}

// PolicyResult is one policy's score over the replayed span.
type PolicyResult struct {
	Name string `json:"name"`
	// Error is why the policy could not run (the others still did).
	Error string `json:"error,omitempty"`
	// ReplicaHours counts every pod that existed, starting ones included: the cost.
	ReplicaHours float64 `json:"replicaHours"`
	// MinutesOverTarget and MinutesOver100 are the time the serving pods ran above the CPU target and
	// above 100 % of their requests: the SLO violations.
	MinutesOverTarget float64 `json:"minutesOverTarget"`
	MinutesOver100    float64 `json:"minutesOver100"`
	// ScalingEvents counts changes of the pods or of how many of them serve (each gray batch counts).
	ScalingEvents   int     `json:"scalingEvents"`
	PeakReplicas    int     `json:"peakReplicas"`
	MeanUtilisation float64 `json:"meanUtilisation"`
	// CostVsOracle and CostVsHPA are ReplicaHours over the oracle's and the HPA's (absent when the
	// denominator is 0 or did not run).
	CostVsOracle *float64 `json:"costVsOracle,omitempty"`
	CostVsHPA    *float64 `json:"costVsHPA,omitempty"`
	// ViolationsVsHPA is MinutesOverTarget over the HPA's (absent when the HPA had none).
	ViolationsVsHPA *float64 `json:"violationsVsHPA,omitempty"`
}

// of returns a pointer to v, for the optional ratios.
func of(v float64) *float64 { return &v }

// Value is the ratio, or NaN when it is undefined.
func Value(r *float64) float64 {
	if r == nil {
		return math.NaN()
	}
	return *r
}

func (r *PolicyResult) fill(s *score) {
	r.ReplicaHours = s.replicaSec / 3600
	r.MinutesOverTarget = s.overTargetSec / 60
	r.MinutesOver100 = s.over100Sec / 60
	r.ScalingEvents = s.events
	r.PeakReplicas = s.peak
	if s.utilN > 0 {
		r.MeanUtilisation = s.utilSum / float64(s.utilN)
	}
}

// Policy returns the named policy's result, or nil.
func (r *Report) Policy(name string) *PolicyResult {
	for i := range r.Policies {
		if r.Policies[i].Name == name {
			return &r.Policies[i]
		}
	}
	return nil
}

func (r *Report) ratios() {
	oracle, hpa := r.Policy(PolicyOracle), r.Policy(PolicyHPA)
	for i := range r.Policies {
		p := &r.Policies[i]
		if p.Error != "" {
			continue
		}
		if oracle != nil && oracle.ReplicaHours > 0 {
			p.CostVsOracle = of(p.ReplicaHours / oracle.ReplicaHours)
		}
		if hpa != nil && hpa.Error == "" {
			if hpa.ReplicaHours > 0 {
				p.CostVsHPA = of(p.ReplicaHours / hpa.ReplicaHours)
			}
			if hpa.MinutesOverTarget > 0 {
				p.ViolationsVsHPA = of(p.MinutesOverTarget / hpa.MinutesOverTarget)
			}
		}
	}
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(out io.Writer) error {
	days := r.End.Sub(r.Start).Hours() / 24
	fmt.Fprintf(out, "trace %s: replayed %s .. %s (%.1f days; trained on %s .. %s)\n", r.Trace,
		r.Start.Format(time.DateTime), r.End.Format(time.DateTime), days, r.TrainStart.Format(time.DateTime), r.Start.Format(time.DateTime))
	w := r.Workload
	fmt.Fprintf(out, "workload: %.4g per pod at 100%% CPU, target %.0f%%, start-up %v, replicas %d..%d",
		w.PodCapacity, 100*w.CPUTarget, w.StartupDelay, w.MinReplicas, w.MaxReplicas)
	for _, e := range w.Extra {
		fmt.Fprintf(out, ", extra %.3g CPU for %v every %v from %v", e.CPU, e.For, e.Every, e.Start)
	}
	fmt.Fprintln(out)
	if r.JobRuns > 0 {
		fmt.Fprintf(out, "predictive job: %d runs, %d failed (the previous portrait stayed)\n", r.JobRuns, r.FailedJobRuns)
	}
	if r.OracleCappedMinutes > 0 {
		fmt.Fprintf(out, "note: for %.0f min the demand needed more than --max-replicas %d pods (up to %d): the oracle is capped there too, so it is no longer a lower bound and other policies can beat it; raise --max-replicas\n",
			r.OracleCappedMinutes, w.MaxReplicas, r.PeakRequired)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\treplica-h\tvs oracle\tvs hpa\tmin > target\tmin > 100%\tviolations vs hpa\tevents\tpeak\tmean util\t")
	for _, p := range r.Policies {
		if p.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\n", p.Name, "error: "+firstLine(p.Error))
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%.1f\t%.1f\t%s\t%d\t%d\t%.0f%%\t\n", p.Name, p.ReplicaHours,
			ratio(p.CostVsOracle), ratio(p.CostVsHPA), p.MinutesOverTarget, p.MinutesOver100,
			ratio(p.ViolationsVsHPA), p.ScalingEvents, p.PeakReplicas, 100*p.MeanUtilisation)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Policies {
		if p.Error != "" {
			fmt.Fprintf(out, "%s: %s\n", p.Name, p.Error)
		}
	}
	return nil
}

// ratio writes a ratio, "-" when it is undefined (never for a ratio of 0, which is a result).
func ratio(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "-"
	}
	return fmt.Sprintf("%.3f×", *v)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// WriteJSON writes the report for scripts.
func (r *Report) WriteJSON(out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ChartData is what the replay chart shows: per trace step, the traffic and, per policy, the most pods
// and the highest utilisation of the step.
type ChartData struct {
	Times    []time.Time
	Traffic  []float64
	Target   float64
	Policies []ChartPolicy
}

// ChartPolicy is one policy's lines.
type ChartPolicy struct {
	Name        string
	Pods        []float64
	Utilisation []float64
}

func newChartData(tr Trace, from int) ChartData {
	c := ChartData{}
	for i := from; i < len(tr.Values); i++ {
		c.Times = append(c.Times, tr.TimeAt(i))
		c.Traffic = append(c.Traffic, tr.Values[i])
	}
	return c
}
