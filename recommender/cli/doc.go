// Package cli holds the recommender's commands: `kapacity train` (fit the SNTSF traffic forecaster from
// a config file and a CSV dataset or the history API), `kapacity forecast` (CSV in, forecast CSV and an
// optional PNG chart out) and `kapacity recommend` (the predictive portrait job: forecast traffic, fit
// the Linear-Residual estimator, write the "<hp>-result" ConfigMap). The command logic is in functions
// over small interfaces (history source, portrait getter, result writer) so it is tested with fakes;
// the Kubernetes implementations use client-go.
package cli
