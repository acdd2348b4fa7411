// Package forecast is Kapacity's traffic forecaster: the SNTSF ("Swish Net for Time Series Forecasting",
// class Fcnet in the reference) design — series-id and calendar embeddings, mean-abs scaling, a differenced
// input, products of the history with the embeddings, sigmoid-gated (squeeze-excitation) layers and a
// multi-step linear output — trained with Adam, here on the pinball loss of several quantile heads, with
// early stopping on a held-out tail. Several series share one model.
//
// A network alone loses to seasonal-naive on many public series (issue 14), so the model does not
// trust it blindly: after training, every series forecasts its own validation tail from rolling origins
// with the network, seasonal-naive, the seasonal mean, the Theta method (package baseline) and their
// ensemble, and keeps the method whose MASE and sMAPE relative to seasonal-naive's add up to the least
// (SeriesInfo, saved with the model). Methods without quantile heads get quantiles from their
// validation errors. Windows are scaled by their mean |value| with a floor of a tenth of the series'
// mean, forecasts of non-negative series are clamped at 0, and HiddenSize 0 sizes the network to the
// data. It also holds the MAE, RMSE, MASE and sMAPE metrics used to judge it.
//
// Library choice: a hand-written network with analytic gradients on gonum's pure-Go BLAS. Measured on
// this 2-core machine (GOMAXPROCS=2, CGO_ENABLED=0) for one Adam step on a batch of 32 at the
// 5-minute-trace shape (1440 features → 64 hidden → 4 gated layers → 12 outputs, L1 loss):
//
//	GoMLX v0.26.0, SimpleGo backend                 32.4 ms/step (earlier, unloaded machine)
//	gorgonia v0.9.18 (test/tools/gorgoniabench)      8.1 ms/step (same run as below, loaded machine)
//	this package (BenchmarkTrainStep)                6.6 ms/step (2.3 ms unloaded), embeddings included
//
// gorgonia is within 2× per step (1.24× slower while doing less: no embedding features), but its
// dependency tree (gorgonia.org/tensor, Apache Arrow, flatbuffers) panics at start-up under go1.26
// unless an indirect dependency (go4.org/unsafe/assume-no-moving-gc) is forced up, so it is measured
// in a module of its own and not adopted: the hand-written network stays. The gradients are checked
// against finite differences (TestGradients).
//
// Deviation from the reference, on purpose: the gated layers act on a HiddenSize projection of the
// 4C+4FC features instead of the features themselves (see network), early stopping watches a validation
// split instead of the training loss, and series IDs are joined with a separator (SeriesID).
package forecast
