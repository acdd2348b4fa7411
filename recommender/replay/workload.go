package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Workload is the simulated service.
type Workload struct {
	// PodCapacity is the traffic (trace units, e.g. requests/s) one pod serves at 100 % of its CPU request.
	PodCapacity float64
	// CPUTarget is the target average utilisation of the pods' CPU requests, in (0, 1].
	CPUTarget float64
	// StartupDelay is the time from a pod's creation to its readiness: scheduling, image pull, start and
	// warm-up.
	StartupDelay time.Duration
	// MinReplicas and MaxReplicas bound every policy (the oracle too).
	MinReplicas, MaxReplicas int
	// Extra is load that is not in the traffic trace but costs CPU, such as a nightly batch job.
	Extra []ExtraLoad
}

// ExtraLoad is a periodic load: CPU pods' worth (1 = one pod at 100 % of its request) during For, starting
// at Start after every multiple of Every (counted from the Unix epoch, so Every=24h, Start=2h is 02:00 UTC
// daily).
type ExtraLoad struct {
	Every, Start, For time.Duration
	CPU               float64
}

// MarshalJSON writes durations as Go duration strings ("1m0s"), for people reading the report.
func (w Workload) MarshalJSON() ([]byte, error) {
	type extra struct {
		Every string  `json:"every"`
		Start string  `json:"start"`
		For   string  `json:"for"`
		CPU   float64 `json:"cpu"`
	}
	out := struct {
		PodCapacity  float64 `json:"podCapacity"`
		CPUTarget    float64 `json:"cpuTarget"`
		StartupDelay string  `json:"startupDelay"`
		MinReplicas  int     `json:"minReplicas"`
		MaxReplicas  int     `json:"maxReplicas"`
		Extra        []extra `json:"extra,omitempty"`
	}{w.PodCapacity, w.CPUTarget, w.StartupDelay.String(), w.MinReplicas, w.MaxReplicas, nil}
	for _, e := range w.Extra {
		out.Extra = append(out.Extra, extra{e.Every.String(), e.Start.String(), e.For.String(), e.CPU})
	}
	return json.Marshal(out)
}

// Validate names the first bad field and how to fix it.
func (w Workload) Validate() error {
	switch {
	case !(w.PodCapacity > 0) || math.IsInf(w.PodCapacity, 0):
		return fmt.Errorf("workload: pod capacity must be a positive number of trace units per pod, got %v", w.PodCapacity)
	case !(w.CPUTarget > 0 && w.CPUTarget <= 1):
		return fmt.Errorf("workload: CPU target must be in (0, 1] (a fraction of the CPU request), got %v", w.CPUTarget)
	case w.StartupDelay < 0:
		return fmt.Errorf("workload: pod start-up delay must not be negative, got %v", w.StartupDelay)
	case w.MinReplicas < 1:
		return fmt.Errorf("workload: min replicas must be at least 1, got %d", w.MinReplicas)
	case w.MaxReplicas < w.MinReplicas:
		return fmt.Errorf("workload: max replicas (%d) must be at least min replicas (%d)", w.MaxReplicas, w.MinReplicas)
	}
	for i, e := range w.Extra {
		if err := e.validate(); err != nil {
			return fmt.Errorf("workload: extra load %d: %w", i, err)
		}
	}
	return nil
}

func (e ExtraLoad) validate() error {
	switch {
	case e.Every <= 0:
		return fmt.Errorf("every must be a positive period, got %v", e.Every)
	case e.For <= 0 || e.For > e.Every:
		return fmt.Errorf("for must be in (0, every=%v], got %v", e.Every, e.For)
	case e.Start < 0 || e.Start >= e.Every:
		return fmt.Errorf("start must be in [0, every=%v), got %v", e.Every, e.Start)
	case !(e.CPU > 0) || math.IsInf(e.CPU, 0):
		return fmt.Errorf("cpu must be a positive number of pods' worth of CPU, got %v", e.CPU)
	}
	return nil
}

// active tells whether the extra load runs at t.
func (e ExtraLoad) active(t time.Time) bool {
	off := time.Duration(t.UnixNano()) % e.Every
	if off < 0 {
		off += e.Every
	}
	in := off - e.Start
	if in < 0 {
		in += e.Every
	}
	return in < e.For
}

// Demand is the load at t in pods' worth of CPU at 100 % of the request.
func (w Workload) Demand(t time.Time, traffic float64) float64 {
	d := traffic / w.PodCapacity
	for _, e := range w.Extra {
		if e.active(t) {
			d += e.CPU
		}
	}
	return d
}

// Required is the smallest replica count within bounds whose utilisation stays at or below the target.
func (w Workload) Required(demand float64) int {
	// The epsilon keeps 3·target/target from rounding up to 4 through floating-point error.
	n := int(math.Ceil(demand/w.CPUTarget - 1e-9))
	return min(max(n, w.MinReplicas), w.MaxReplicas)
}

// ParseExtraLoad reads "every=24h,start=2h,for=1h,cpu=4"; every defaults to 24h.
func ParseExtraLoad(s string) (ExtraLoad, error) {
	e := ExtraLoad{Every: 24 * time.Hour}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return e, fmt.Errorf("extra load %q: %q is not key=value (keys: every, start, for, cpu)", s, kv)
		}
		var err error
		switch k {
		case "every":
			e.Every, err = time.ParseDuration(v)
		case "start":
			e.Start, err = parseStart(v)
		case "for":
			e.For, err = time.ParseDuration(v)
		case "cpu":
			e.CPU, err = strconv.ParseFloat(v, 64)
		default:
			err = errors.New("unknown key (keys: every, start, for, cpu)")
		}
		if err != nil {
			return e, fmt.Errorf("extra load %q: %s: %w", s, k, err)
		}
		seen[k] = true
	}
	for _, k := range []string{"for", "cpu"} {
		if !seen[k] {
			return e, fmt.Errorf("extra load %q: %s is required, e.g. every=24h,start=2h,for=1h,cpu=4", s, k)
		}
	}
	if err := e.validate(); err != nil {
		return e, fmt.Errorf("extra load %q: %w", s, err)
	}
	return e, nil
}

// parseStart accepts a duration ("2h30m") or a time of day ("02:30").
func parseStart(v string) (time.Duration, error) {
	if t, err := time.Parse("15:04", v); err == nil {
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
	}
	return time.ParseDuration(v)
}
