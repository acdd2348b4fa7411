package forecast

import (
	"math"
	"sort"

	"github.com/kapacitystack/kapacity/recommender/baseline"
)

// The forecasters a series chooses from. A network trained on a few hundred points of one series can
// do worse than repeating last week; the baselines need no training and are hard to beat on clean
// seasonal traffic; the ensemble averages the errors of the three that differ most. Each series keeps
// the one with the smallest error on its own validation window, so none is forecast worse than its best
// baseline was there.
const (
	MethodSeasonalNaive = "seasonal-naive"
	MethodSeasonalMean  = "seasonal-mean"
	MethodTheta         = "theta"
	MethodThetaWeekly   = "theta-weekly"
	MethodNetwork       = "network"
	MethodEnsemble      = "ensemble"
)

// Methods lists every method, in the order ties are broken (simplest first).
var Methods = []string{MethodSeasonalNaive, MethodSeasonalMean, MethodTheta, MethodThetaWeekly, MethodNetwork, MethodEnsemble}

// maxValidationOrigins bounds the forecasts made per series to choose its method.
const maxValidationOrigins = 200

// seasonalMeanSeasons is how many past seasons the seasonal mean averages.
const seasonalMeanSeasons = 4

// Score is a method's error on a series' validation window.
type Score struct {
	// MASE is the mean absolute error over the in-sample MAE of seasonal-naive before the window.
	MASE float64 `json:"mase"`
	// SMAPE is the symmetric MAPE in percent.
	SMAPE float64 `json:"smape"`
}

// SeriesInfo is what the model knows of one series besides its embedding row.
type SeriesInfo struct {
	// Method is the forecaster used for the series (one of Methods).
	Method string `json:"method"`
	// Season is the seasonal period (steps) of the seasonal baselines; Day is the Theta method's.
	Season int `json:"season"`
	Day    int `json:"day"`
	// Scale is the mean |value| of the training data; every window's scale is at least a tenth of it.
	Scale float64 `json:"scale"`
	// NonNegative series (traffic) never get a negative forecast.
	NonNegative bool `json:"nonNegative"`
	// Validation holds every candidate's error on the validation window, ValidationWindows the number
	// of forecast origins in it.
	Validation        map[string]Score `json:"validation,omitempty"`
	ValidationWindows int              `json:"validationWindows"`
	// Spread is, per quantile head of the network, the quantile of the relative validation error
	// (actual − forecast) / max(|forecast|, Scale/10) of Method; it turns the point forecast of a method
	// without quantile heads into quantiles. Empty when Method is the network.
	Spread []float64 `json:"spread,omitempty"`
}

// Chosen is the validation score of the chosen method.
func (s *SeriesInfo) Chosen() Score { return s.Validation[s.Method] }

// seasonFor is season if the history holds it, else a day, else 1.
func seasonFor(season, day, n int) int {
	switch {
	case season >= 1 && n >= season:
		return season
	case day >= 1 && n >= day:
		return day
	}
	return 1
}

// methodForecast is method's point forecast of h steps after hist; net is the network's median forecast
// (needed by the network and the ensemble only).
func (s *SeriesInfo) methodForecast(method string, hist []float64, h int, net []float64) []float64 {
	n := len(hist)
	season := seasonFor(s.Season, s.Day, n)
	var out []float64
	switch method {
	case MethodSeasonalNaive:
		out = baseline.SeasonalNaive(hist, season, h)
	case MethodSeasonalMean:
		out = baseline.SeasonalMean(hist, season, seasonalMeanSeasons, h)
	case MethodTheta:
		out = baseline.Theta(hist, seasonFor(s.Day, 1, n/2), h)
	case MethodThetaWeekly:
		out = baseline.Theta(hist, seasonFor(s.Season, 1, n/2), h)
	case MethodEnsemble:
		th := baseline.Theta(hist, seasonFor(s.Day, 1, n/2), h)
		sm := baseline.SeasonalMean(hist, season, seasonalMeanSeasons, h)
		out = make([]float64, h)
		for i := range out {
			out[i] = (th[i] + sm[i] + net[i]) / 3
		}
	default:
		out = append([]float64(nil), net...)
	}
	if s.NonNegative {
		for i, v := range out {
			out[i] = math.Max(v, 0)
		}
	}
	return out
}

// needsNetwork tells whether method uses the network's forecast.
func needsNetwork(method string) bool { return method == MethodNetwork || method == MethodEnsemble }

// candidates are the methods a series with history n can choose from under cfg.
func (m *Model) candidates(info *SeriesInfo) []string {
	var out []string
	for _, meth := range Methods {
		if len(m.Config.Methods) > 0 && !containsString(m.Config.Methods, meth) {
			continue
		}
		// The weekly Theta differs from the daily one only when the season is longer than a day.
		if meth == MethodThetaWeekly && info.Season <= info.Day {
			continue
		}
		out = append(out, meth)
	}
	return out
}

func containsString(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// chooseMethods forecasts the validation tail of every series (the last nVal points, at least two
// horizons and a day) from rolling origins a quarter-horizon apart (at most maxValidationOrigins), scores every candidate and keeps, per series,
// the one whose MASE and sMAPE relative to seasonal-naive's add up to the least.
func (m *Model) chooseMethods(series []Series, nVals []int) error {
	c, p := m.Config.ContextLength, m.Config.PredictionLength
	day := baseline.DayLength(m.step)
	type origin struct{ series, at int }
	var origins []origin
	var qs []Query
	for i, s := range series {
		n := len(s.Values)
		// The window holds the network's validation tail, two horizons, and a day when the history
		// allows (up to half of it): a window shorter than the daily cycle would choose on one phase
		// of it, e.g. a quiet hour that a flat forecast gets right.
		nSel := min(max(nVals[i], 2*p, min(day, (n-c)/2)), n-c)
		info := m.Info[s.ID]
		info.Season = baseline.SeasonLength(m.step, n-nSel)
		info.Day = day
		stride := max(1, p/4, nSel/maxValidationOrigins)
		for o := n - nSel; o+p <= n; o += stride {
			if o < c {
				continue
			}
			origins = append(origins, origin{i, o})
			qs = append(qs, Query{ID: s.ID, History: s.Values[:o], Last: s.TimeAt(o - 1)})
		}
	}
	nets, err := m.networkBatch(qs)
	if err != nil {
		return err
	}
	type acc struct{ abs, smape float64 }
	byOrigin := map[int][]int{} // series -> indexes into origins
	for k, o := range origins {
		byOrigin[o.series] = append(byOrigin[o.series], k)
	}
	for i, s := range series {
		info := m.Info[s.ID]
		ks := byOrigin[i]
		if len(ks) == 0 {
			continue // too short to validate: the network stays
		}
		first := origins[ks[0]].at
		scale := NaiveScale(s.Values[:first], info.Season)
		if !(scale > 0) {
			scale = math.Max(info.Scale, 1e-10)
		}
		cands := m.candidates(info)
		sums := make([]acc, len(cands))
		fc := make([][][]float64, len(cands)) // candidate -> origin -> forecast
		count := 0
		for _, k := range ks {
			o := origins[k].at
			net := nets[k][:p]
			actual := s.Values[o : o+p]
			for ci, meth := range cands {
				f := info.methodForecast(meth, s.Values[:o], p, net)
				fc[ci] = append(fc[ci], f)
				for j, a := range actual {
					sums[ci].abs += math.Abs(f[j] - a)
					if d := math.Abs(a) + math.Abs(f[j]); d > 0 {
						sums[ci].smape += 2 * math.Abs(f[j]-a) / d
					}
				}
			}
			count += p
		}
		info.Validation = map[string]Score{}
		info.ValidationWindows = len(ks)
		for ci, meth := range cands {
			info.Validation[meth] = Score{MASE: sums[ci].abs / float64(count) / scale, SMAPE: 100 * sums[ci].smape / float64(count)}
		}
		ref, hasRef := info.Validation[MethodSeasonalNaive]
		rel := func(sc Score) float64 {
			if !hasRef {
				return sc.MASE
			}
			r := 0.0
			if ref.MASE > 0 {
				r += sc.MASE / ref.MASE
			} else if sc.MASE > 0 {
				r += 2
			}
			if ref.SMAPE > 0 {
				r += sc.SMAPE / ref.SMAPE
			} else if sc.SMAPE > 0 {
				r += 2
			}
			return r
		}
		best := 0
		for ci := range cands {
			if rel(info.Validation[cands[ci]]) < rel(info.Validation[cands[best]]) {
				best = ci
			}
		}
		info.Method = cands[best]
		if info.Method != MethodNetwork {
			var rs []float64
			for oi, k := range ks {
				o := origins[k].at
				for j, a := range s.Values[o : o+p] {
					f := fc[best][oi][j]
					rs = append(rs, (a-f)/spreadBase(f, info.Scale))
				}
			}
			sort.Float64s(rs)
			for _, q := range m.net.arch.Quantiles {
				info.Spread = append(info.Spread, sortedQuantile(rs, q))
			}
		}
	}
	return nil
}

// spreadBase is the denominator of a relative error: the forecast, or a tenth of the series' scale.
func spreadBase(f, scale float64) float64 {
	return math.Max(math.Max(math.Abs(f), scaleFloorFraction*scale), 1e-10)
}

// sortedQuantile is the q-quantile of sorted values, linearly interpolated.
func sortedQuantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// interpolate reads the value at q of a curve known at the sorted points qs (clamped to its ends).
func interpolate(qs, vs []float64, q float64) float64 {
	switch {
	case len(qs) == 0:
		return 0
	case q <= qs[0]:
		return vs[0]
	case q >= qs[len(qs)-1]:
		return vs[len(vs)-1]
	}
	i := sort.SearchFloat64s(qs, q)
	if qs[i] == q {
		return vs[i]
	}
	f := (q - qs[i-1]) / (qs[i] - qs[i-1])
	return vs[i-1] + f*(vs[i]-vs[i-1])
}
