// Package forecast is Kapacity's traffic forecaster: the SNTSF ("Swish Net for Time Series Forecasting",
// class Fcnet in the reference) design — series-id and calendar embeddings, mean-abs scaling, a differenced
// input, products of the history with the embeddings, sigmoid-gated (squeeze-excitation) layers and a
// multi-step linear output — trained with Adam on L1 loss, with early stopping on a held-out tail. Several
// series share one model. It also holds the seasonal-naive and last-value baselines and the MAE, RMSE,
// MASE and sMAPE metrics used to judge it.
//
// Library choice: a hand-written network with analytic gradients on gonum's pure-Go BLAS, not GoMLX.
// Measured on this 2-core machine (GOMAXPROCS=2, CGO_ENABLED=0) for one Adam step on a batch of 32 at the
// 5-minute-trace shape (1440 features → 64 hidden → 4 gated layers → 12 outputs, L1 loss):
//
//	GoMLX v0.26.0, SimpleGo backend   32.4 ms/step
//	this package (BenchmarkTrainStep)  2.3 ms/step   (14× faster)
//
// At 2.3 ms/step a 4096-window epoch takes ~0.3 s and a whole trace trains in 1–5 s (BenchmarkTraces),
// against the < 60 s goal and the reference's 1–2 h; GoMLX would need ~40 s–2 min for the same work and
// brings a large dependency tree. The gradients are checked against finite differences (TestGradients).
//
// Deviation from the reference, on purpose: the gated layers act on a HiddenSize projection of the
// 4C+4FC features instead of the features themselves (see network), early stopping watches a validation
// split instead of the training loss, and series IDs are joined with a separator (SeriesID).
package forecast
