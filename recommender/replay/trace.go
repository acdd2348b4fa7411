package replay

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Trace is a regularly sampled traffic series: Values[i] holds over [Start + i·Step, Start + (i+1)·Step).
type Trace struct {
	Name   string
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// End is the end of the last step.
func (tr Trace) End() time.Time { return tr.Start.Add(time.Duration(len(tr.Values)) * tr.Step) }

// TimeAt is the start of step i.
func (tr Trace) TimeAt(i int) time.Time { return tr.Start.Add(time.Duration(i) * tr.Step) }

// index is the step holding t, clamped to the trace.
func (tr Trace) index(t time.Time) int {
	i := int(t.Sub(tr.Start) / tr.Step)
	return min(max(i, 0), len(tr.Values)-1)
}

// At is the traffic at t: the value of the step holding it (values hold over their step; no interpolation
// invents load the trace did not record).
func (tr Trace) At(t time.Time) float64 { return tr.Values[tr.index(t)] }

func (tr Trace) validate() error {
	if tr.Step <= 0 {
		return fmt.Errorf("trace %q: step must be positive, got %v", tr.Name, tr.Step)
	}
	if len(tr.Values) < 2 {
		return fmt.Errorf("trace %q: need at least 2 points, got %d", tr.Name, len(tr.Values))
	}
	for i, v := range tr.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("trace %q: value %d at %s is %v; traffic must be a finite number ≥ 0",
				tr.Name, i, tr.TimeAt(i).Format(time.RFC3339), v)
		}
	}
	return nil
}

// quantile is the q-quantile (nearest rank) of vs; vs is reordered.
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	i := int(math.Ceil(q*float64(len(vs)))) - 1
	return vs[min(max(i, 0), len(vs)-1)]
}
