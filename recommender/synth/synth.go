// Package synth generates traffic-like series with known structure for forecasting benchmarks: daily
// and weekly cycles at any scale, with trends, level shifts, holidays, bursts, low counts and noise, in
// families a benchmark reports separately. Every series is a pure function of (family, seed).
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Family is one kind of series.
type Family string

// The families. Each adds one difficulty to a daily+weekly cycle with mild noise.
const (
	Clean      Family = "clean"       // daily and weekly cycle, 5 % noise
	Noisy      Family = "noisy"       // 25 % noise
	Trend      Family = "trend"       // growth or decline of up to ±60 % over the span
	LevelShift Family = "level-shift" // one step of ±30–60 % somewhere in the last third
	Holidays   Family = "holidays"    // a few days at 40–70 % of the usual traffic, one in the last week
	Bursty     Family = "bursty"      // short bursts of 2–5× lasting 1–4 steps
	LowCount   Family = "low-count"   // Poisson counts with a mean of 1–8 per step
	PhaseDrift Family = "phase-drift" // the daily peak moves by up to 3 hours over the span
)

// Families lists every family, in report order.
var Families = []Family{Clean, Noisy, Trend, LevelShift, Holidays, Bursty, LowCount, PhaseDrift}

// Start is the first timestamp of every series: a Monday, 00:00 UTC.
var Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Series is one generated series.
type Series struct {
	ID     string
	Family Family
	Step   time.Duration
	Start  time.Time
	Values []float64
}

// Generate returns series seed of family f: n steps of step, at a level drawn log-uniformly between 0.1
// and 100,000 (so scale-dependent mistakes show).
func Generate(f Family, seed uint64, n int, step time.Duration) (Series, error) {
	if n < 1 || step <= 0 {
		return Series{}, fmt.Errorf("synth: n %d and step %v must be positive", n, step)
	}
	known := false
	for _, g := range Families {
		known = known || g == f
	}
	if !known {
		return Series{}, fmt.Errorf("synth: unknown family %q (one of %v)", f, Families)
	}
	rng := rand.New(rand.NewPCG(seed, hash(string(f))))
	level := math.Pow(10, -1+6*rng.Float64())
	dailyAmp := 0.3 + 0.5*rng.Float64() // peak-to-mean of the daily cycle
	weekend := 0.5 + 0.4*rng.Float64()  // weekend traffic relative to weekdays
	peakHour := 10 + 8*rng.Float64()    // hour of the daily peak
	sharp := 1 + 2*rng.Float64()        // sharpness of the daily peak
	noise := 0.05
	s := Series{ID: fmt.Sprintf("%s-%d", f, seed), Family: f, Step: step, Start: Start, Values: make([]float64, n)}
	span := float64(n) * step.Hours()

	trend, shiftAt, shift, drift := 0.0, -1, 1.0, 0.0
	var holidays map[int]bool
	switch f {
	case Noisy:
		noise = 0.25
	case Trend:
		trend = (rng.Float64()*2 - 1) * 0.6
	case LevelShift:
		shiftAt = n*2/3 + rng.IntN(max(1, n/3-1))
		shift = 1 + (0.3+0.3*rng.Float64())*sign(rng.Float64()-0.5)
	case Holidays:
		days := int(span / 24)
		holidays = map[int]bool{}
		for range max(1, days/10) {
			holidays[rng.IntN(max(1, days))] = true
		}
		if days > 3 {
			holidays[days-1-rng.IntN(min(7, days-1))] = true // one in the last week
		}
	case LowCount:
		level = 1 + 7*rng.Float64()
	case PhaseDrift:
		drift = (rng.Float64()*2 - 1) * 3
	}
	holidayDepth := 0.4 + 0.3*rng.Float64()
	burstLeft, burstMul := 0, 1.0
	for i := range s.Values {
		t := Start.Add(time.Duration(i) * step)
		hours := float64(i) * step.Hours()
		h := float64(t.Hour()) + float64(t.Minute())/60
		peak := peakHour + drift*hours/span
		// A raised-cosine daily bump, sharpened by an exponent: traffic has narrow peaks and long troughs.
		c := 0.5 + 0.5*math.Cos(2*math.Pi*(h-peak)/24)
		v := 1 + dailyAmp*(2*math.Pow(c, sharp)-1)
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v *= weekend
		}
		v *= 1 + trend*hours/span
		if shiftAt >= 0 && i >= shiftAt {
			v *= shift
		}
		if holidays[int(hours/24)] {
			v *= holidayDepth
		}
		if f == Bursty {
			if burstLeft == 0 && rng.Float64() < 0.02 {
				burstLeft, burstMul = 1+rng.IntN(4), 2+3*rng.Float64()
			}
			if burstLeft > 0 {
				v *= burstMul
				burstLeft--
			}
		}
		v = math.Max(v, 0.01)
		if f == LowCount {
			s.Values[i] = float64(poisson(rng, level*v))
			continue
		}
		s.Values[i] = math.Max(level*v*(1+noise*rng.NormFloat64()), 0)
	}
	return s, nil
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// poisson draws a Poisson variate (Knuth's method for small means, a rounded normal above 30).
func poisson(rng *rand.Rand, mean float64) int {
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
