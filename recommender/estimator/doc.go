// Package estimator turns forecast traffic into replica counts with the reference's "Linear-Residual"
// model: an ElasticNet (coordinate descent, positive weights, cross-validated over l1 ratios) from per-pod
// traffic to per-pod resource usage, plus a histogram GBDT on the residual with time features (weekday,
// minute of day), early-stopped on the most recent training rows, gated by correlation, MSE and
// under-estimation checks on a test split. Solve finds the smallest replica count meeting a per-pod
// target; ResampleMax and ShiftScaleUp shape the result for the HorizontalPortrait. The GBDT reads and
// writes LightGBM's text model format (numeric splits).
package estimator
