package forecast

import "math"

// Accuracy holds the point-forecast errors of one forecaster over a test set.
type Accuracy struct {
	MAE, RMSE float64
	// MASE is MAE divided by the in-sample MAE of the seasonal-naive forecast on the training data
	// (Hyndman & Koehler 2006), so values below 1 beat that naive method in-sample.
	MASE float64
	// SMAPE is the symmetric MAPE in percent (0..200); points where actual and forecast are both 0 count 0.
	SMAPE float64
	N     int
}

// Evaluate compares forecasts with actuals. train and season define the MASE scale.
func Evaluate(actual, forecast, train []float64, season int) Accuracy {
	var a Accuracy
	n := min(len(actual), len(forecast))
	if n == 0 {
		return a
	}
	var abs, sq, sm float64
	for i := 0; i < n; i++ {
		e := forecast[i] - actual[i]
		abs += math.Abs(e)
		sq += e * e
		if d := math.Abs(actual[i]) + math.Abs(forecast[i]); d > 0 {
			sm += 2 * math.Abs(e) / d
		}
	}
	a.N = n
	a.MAE = abs / float64(n)
	a.RMSE = math.Sqrt(sq / float64(n))
	a.SMAPE = 100 * sm / float64(n)
	a.MASE = a.MAE / NaiveScale(train, season)
	return a
}

// NaiveScale is the in-sample MAE of the seasonal-naive forecast with period season (MASE's denominator).
func NaiveScale(train []float64, season int) float64 {
	if season < 1 {
		season = 1
	}
	if len(train) <= season {
		return math.NaN()
	}
	s := 0.0
	for i := season; i < len(train); i++ {
		s += math.Abs(train[i] - train[i-season])
	}
	return s / float64(len(train)-season)
}
