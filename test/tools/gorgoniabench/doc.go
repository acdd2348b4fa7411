// Package gorgoniabench measures gorgonia.org/gorgonia v0.9.18 as the forecaster's training engine
// against the hand-written network of recommender/forecast (issue 14, part 4): the same network shape
// (5-minute traces: 1440 inputs → 64 hidden → 4 sigmoid-gated layers → 12 outputs), a batch of 32, L1
// loss, Adam; one training step (forward, backward, update) is timed. It is a module of its own so that
// gorgonia's dependency tree stays out of the product's go.mod; `make bench` runs it and prints the
// ratio to the hand-written step measured in the same run.
package gorgoniabench
