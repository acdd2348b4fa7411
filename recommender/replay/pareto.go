package replay

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"text/tabwriter"
)

// Sweep is what `kapacity replay --pareto` varies. A user's real alternative to predictive scaling is
// not the default HPA but an HPA with a lower target, which buys fewer overloads with more pods; the
// sweep measures that trade-off (the HPA frontier) and every policy against it.
type Sweep struct {
	// HPATargets are the CPU targets the HPA is replayed at (the workload's own target is the default
	// HPA of the main table).
	HPATargets []float64
	// Quantiles are the forecast quantiles the predictive policies are replayed at (0: the point forecast).
	Quantiles []float64
	// Policies are the IHPA policies swept (default: burst and every predictive policy).
	Policies []string
}

// DefaultSweep covers HPA targets from 90 % to 15 % and the forecast's median to its 0.95 quantile.
func DefaultSweep() Sweep {
	return Sweep{
		HPATargets: []float64{0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15},
		Quantiles:  []float64{0, 0.5, 0.8, 0.9, 0.95},
		Policies:   []string{PolicyBurst, PolicyPredictive, PolicyPredictiveReactive, PolicyPredictiveBurst},
	}
}

func (s Sweep) validate() error {
	if len(s.HPATargets) < 2 {
		return fmt.Errorf("pareto: need at least 2 HPA targets, got %d", len(s.HPATargets))
	}
	for _, t := range s.HPATargets {
		if !(t > 0 && t <= 1) {
			return fmt.Errorf("pareto: HPA target %v is not in (0, 1]", t)
		}
	}
	for _, q := range s.Quantiles {
		if q < 0 || q >= 1 {
			return fmt.Errorf("pareto: forecast quantile %v is not in [0, 1)", q)
		}
	}
	for _, p := range s.Policies {
		if p != PolicyBurst && !slices.Contains(predictivePolicies, p) {
			return fmt.Errorf("pareto: policy %q cannot be swept (choose from burst, %v)", p, predictivePolicies)
		}
	}
	return nil
}

// Goals of issue 14 for the best combined policy, checked and reported (met or missed) per trace.
const (
	// GoalSaving is the share of the tuned HPA's replica-hours the best policy must save.
	GoalSaving = 0.25
	// GoalOverTarget is the most minutes over the CPU target it may have, relative to the default HPA.
	GoalOverTarget = 0.25
)

// ParetoPoint is one replay of the sweep.
type ParetoPoint struct {
	Policy string `json:"policy"`
	// HPATarget is the HPA's CPU target (HPA points only); Quantile the forecast quantile (predictive).
	HPATarget         float64 `json:"hpaTarget,omitempty"`
	Quantile          float64 `json:"quantile"`
	ReplicaHours      float64 `json:"replicaHours"`
	MinutesOverTarget float64 `json:"minutesOverTarget"`
	MinutesOver100    float64 `json:"minutesOver100"`
	// TunedHPAReplicaHours is what an HPA tuned to the same minutes over 100 % needs, interpolated on
	// the HPA frontier. TunedHPABound says when the sweep did not bracket the point: "at-least" (no
	// swept HPA overloads that little: the true figure is higher) or "at-most" (even the cheapest swept
	// HPA overloads less: a higher target might be cheaper still).
	TunedHPAReplicaHours float64 `json:"tunedHPAReplicaHours"`
	TunedHPABound        string  `json:"tunedHPABound,omitempty"`
	// SavingVsTunedHPA is 1 − ReplicaHours / TunedHPAReplicaHours.
	SavingVsTunedHPA float64 `json:"savingVsTunedHPA"`
	// OverTargetVsHPA is MinutesOverTarget over the default HPA's (absent when that HPA had none).
	OverTargetVsHPA *float64 `json:"overTargetVsHPA,omitempty"`
	// MeetsGoal: saving ≥ GoalSaving and OverTargetVsHPA ≤ GoalOverTarget.
	MeetsGoal bool   `json:"meetsGoal"`
	Error     string `json:"error,omitempty"`
}

// Pareto is the sweep's outcome.
type Pareto struct {
	// HPA is the HPA at every swept target, Frontier the ones no other swept HPA beats on both cost and
	// minutes over 100 % (cheapest first).
	HPA      []ParetoPoint `json:"hpa"`
	Frontier []ParetoPoint `json:"frontier"`
	Points   []ParetoPoint `json:"points"`
	// Best is the point saving the most against the tuned HPA among those within the violation goal
	// (or, when none is, the one with the fewest minutes over target relative to the default HPA).
	Best *ParetoPoint `json:"best,omitempty"`
	// Oracle is the oracle against the same tuned HPA: the most any policy could save at its minutes
	// over 100 % (when it saves less than GoalSaving, the goal is out of reach on this trace).
	Oracle *ParetoPoint `json:"oracle,omitempty"`
}

func (r *runner) pareto(ctx context.Context, s Sweep, rep *Report) (*Pareto, error) {
	out := &Pareto{}
	hpaDefault := rep.Policy(PolicyHPA)
	if hpaDefault == nil || hpaDefault.Error != "" {
		res, _, err := r.run(ctx, PolicyHPA, r.cfg.HPA, r.cfg.Workload.CPUTarget, 0, false)
		if err != nil {
			return nil, err
		}
		hpaDefault = &res
	}
	for i, t := range s.HPATargets {
		if r.cfg.Progress != nil {
			r.cfg.Progress("pareto: hpa targets", i, len(s.HPATargets))
		}
		res, _, err := r.run(ctx, PolicyHPA, r.cfg.HPA, t, 0, false)
		if err != nil {
			return nil, err
		}
		out.HPA = append(out.HPA, point(res, t, 0))
	}
	out.Frontier = frontier(out.HPA)
	if o := rep.Policy(PolicyOracle); o != nil {
		pt := point(*o, 0, 0)
		pt.TunedHPAReplicaHours, pt.TunedHPABound = tunedHPA(out.Frontier, pt.MinutesOver100)
		if pt.TunedHPAReplicaHours > 0 {
			pt.SavingVsTunedHPA = 1 - pt.ReplicaHours/pt.TunedHPAReplicaHours
		}
		out.Oracle = &pt
	}
	policies := s.Policies
	if len(policies) == 0 {
		policies = DefaultSweep().Policies
	}
	quantiles := s.Quantiles
	if len(quantiles) == 0 {
		quantiles = DefaultSweep().Quantiles
	}
	done, total := 0, len(policies)*len(quantiles)
	for _, name := range policies {
		qs := quantiles
		if name == PolicyBurst {
			qs = []float64{0} // no forecast
		}
		for _, q := range qs {
			if r.cfg.Progress != nil {
				r.cfg.Progress("pareto: policies", done, total)
			}
			done++
			res, _, err := r.run(ctx, name, r.cfg.HPA, r.cfg.Workload.CPUTarget, q, false)
			if err != nil {
				return nil, err
			}
			pt := point(res, 0, q)
			if res.Error == "" {
				pt.TunedHPAReplicaHours, pt.TunedHPABound = tunedHPA(out.Frontier, pt.MinutesOver100)
				if pt.TunedHPAReplicaHours > 0 {
					pt.SavingVsTunedHPA = 1 - pt.ReplicaHours/pt.TunedHPAReplicaHours
				}
				if hpaDefault.MinutesOverTarget > 0 {
					pt.OverTargetVsHPA = of(pt.MinutesOverTarget / hpaDefault.MinutesOverTarget)
				}
				pt.MeetsGoal = pt.SavingVsTunedHPA >= GoalSaving && pt.OverTargetVsHPA != nil && *pt.OverTargetVsHPA <= GoalOverTarget
			}
			out.Points = append(out.Points, pt)
		}
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress("pareto: policies", total, total)
	}
	out.Best = best(out.Points)
	return out, nil
}

func point(res PolicyResult, hpaTarget, q float64) ParetoPoint {
	return ParetoPoint{Policy: res.Name, HPATarget: hpaTarget, Quantile: q, ReplicaHours: res.ReplicaHours,
		MinutesOverTarget: res.MinutesOverTarget, MinutesOver100: res.MinutesOver100, Error: res.Error}
}

// frontier keeps the HPA points no other beats on both cost and minutes over 100 %, cheapest first
// (so with strictly falling minutes over 100 %).
func frontier(pts []ParetoPoint) []ParetoPoint {
	s := slices.Clone(pts)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].ReplicaHours != s[j].ReplicaHours {
			return s[i].ReplicaHours < s[j].ReplicaHours
		}
		return s[i].MinutesOver100 < s[j].MinutesOver100
	})
	var out []ParetoPoint
	for _, p := range s {
		if len(out) == 0 || p.MinutesOver100 < out[len(out)-1].MinutesOver100 {
			out = append(out, p)
		}
	}
	return out
}

// tunedHPA is the replica-hours of an HPA with minutes over 100 % equal to v, interpolated linearly
// between the frontier's neighbours of v.
func tunedHPA(front []ParetoPoint, v float64) (float64, string) {
	if len(front) == 0 {
		return math.NaN(), ""
	}
	first, last := front[0], front[len(front)-1]
	switch {
	case v >= first.MinutesOver100:
		if v == first.MinutesOver100 {
			return first.ReplicaHours, ""
		}
		return first.ReplicaHours, "at-most"
	case v < last.MinutesOver100:
		return last.ReplicaHours, "at-least"
	}
	for i := 1; i < len(front); i++ {
		a, b := front[i-1], front[i] // a cheaper, more violations
		if v <= a.MinutesOver100 && v >= b.MinutesOver100 {
			f := (a.MinutesOver100 - v) / (a.MinutesOver100 - b.MinutesOver100)
			return a.ReplicaHours + f*(b.ReplicaHours-a.ReplicaHours), ""
		}
	}
	return last.ReplicaHours, "at-least"
}

// best is the point with the largest saving within the violation goal, else the one closest to it.
func best(pts []ParetoPoint) *ParetoPoint {
	var b *ParetoPoint
	within := func(p *ParetoPoint) bool { return p.OverTargetVsHPA != nil && *p.OverTargetVsHPA <= GoalOverTarget }
	for i := range pts {
		p := &pts[i]
		if p.Error != "" || p.OverTargetVsHPA == nil {
			continue
		}
		switch {
		case b == nil:
			b = p
		case within(p) && (!within(b) || p.SavingVsTunedHPA > b.SavingVsTunedHPA):
			b = p
		case !within(p) && !within(b) && *p.OverTargetVsHPA < *b.OverTargetVsHPA:
			b = p
		}
	}
	if b == nil {
		return nil
	}
	c := *b
	return &c
}

// WriteTable prints the sweep: the HPA frontier, then every policy point with the tuned HPA's
// replica-hours at its minutes over 100 %, and the verdict on the goal.
func (p *Pareto) WriteTable(out io.Writer) error {
	fmt.Fprintln(out, "HPA at each swept CPU target (frontier marked *):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "hpa target\treplica-h\tmin > target\tmin > 100%\tfrontier\t")
	for _, h := range p.HPA {
		mark := ""
		for _, f := range p.Frontier {
			if f.HPATarget == h.HPATarget {
				mark = "*"
			}
		}
		fmt.Fprintf(tw, "%.0f%%\t%.1f\t%.1f\t%.1f\t%s\t\n", 100*h.HPATarget, h.ReplicaHours, h.MinutesOverTarget, h.MinutesOver100, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "policies against an HPA tuned to the same minutes over 100%:")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tquantile\treplica-h\tmin > 100%\ttuned hpa replica-h\tsaving\tmin > target vs hpa\tgoal\t")
	for _, pt := range p.Points {
		if pt.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\terror: %s\t\t\t\t\t\t\n", pt.Policy, quantileLabel(pt), firstLine(pt.Error))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t\n", pt.Policy, quantileLabel(pt), pt.ReplicaHours, pt.MinutesOver100,
			tunedLabel(pt), savingLabel(pt), ratio(pt.OverTargetVsHPA), goalLabel(pt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o := p.Oracle; o != nil {
		fmt.Fprintf(out, "oracle: %.1f replica-h at %.1f min over 100%%, %s than the tuned HPA (%s replica-h): the most any policy can save here\n",
			o.ReplicaHours, o.MinutesOver100, savingWords(*o), tunedLabel(*o))
	}
	if b := p.Best; b != nil {
		verdict := "missed"
		if b.MeetsGoal {
			verdict = "met"
		}
		fmt.Fprintf(out, "best: %s (quantile %s): %s replica-hours than the tuned HPA at equal minutes over 100%%, minutes over target %s the default HPA's; goal (≥ %.0f%% fewer, ≤ %.2f×) %s\n",
			b.Policy, quantileLabel(*b), savingWords(*b), ratio(b.OverTargetVsHPA), 100*GoalSaving, GoalOverTarget, verdict)
	}
	return nil
}

func quantileLabel(p ParetoPoint) string {
	switch {
	case p.Policy == PolicyBurst:
		return "-"
	case p.Quantile == 0:
		return "point"
	}
	return fmt.Sprintf("%.2f", p.Quantile)
}

func tunedLabel(p ParetoPoint) string {
	switch p.TunedHPABound {
	case "at-least":
		return fmt.Sprintf("≥ %.1f", p.TunedHPAReplicaHours)
	case "at-most":
		return fmt.Sprintf("≤ %.1f", p.TunedHPAReplicaHours)
	}
	return fmt.Sprintf("%.1f", p.TunedHPAReplicaHours)
}

func savingLabel(p ParetoPoint) string {
	s := fmt.Sprintf("%.0f%%", 100*p.SavingVsTunedHPA)
	switch p.TunedHPABound {
	case "at-least":
		return "≥ " + s
	case "at-most":
		return "≤ " + s
	}
	return s
}

func savingWords(p ParetoPoint) string {
	if p.SavingVsTunedHPA >= 0 {
		return savingLabel(p) + " fewer"
	}
	return fmt.Sprintf("%.0f%% more", -100*p.SavingVsTunedHPA)
}

func goalLabel(p ParetoPoint) string {
	if p.MeetsGoal {
		return "met"
	}
	return "missed"
}
