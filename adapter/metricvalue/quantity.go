// Package metricvalue converts Prometheus sample values into the
// resource.Quantity values the metrics APIs return.
//
// prometheus-adapter's conversions are kept (millis truncated toward zero,
// DecimalSI for custom, external and CPU values, BinarySI for memory), with
// two deliberate fixes: NaN becomes 0 for external metrics too (upstream it
// becomes whatever int64(NaN) is on the platform), and values beyond the
// int64 milli range, including ±Inf, saturate instead of overflowing.
package metricvalue

import (
	"math"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Custom converts a custom-metrics value: NaN -> 0.
func Custom(v float64) resource.Quantity { return millis(v, resource.DecimalSI) }

// External converts an external-metrics value: NaN -> 0.
func External(v float64) resource.Quantity { return millis(v, resource.DecimalSI) }

// CPU converts a CPU usage in cores: NaN and negative values -> 0, since a
// negative usage is an artefact (counter resets) and would break consumers.
func CPU(v float64) resource.Quantity { return millis(nonNegative(v), resource.DecimalSI) }

// Memory converts a memory usage in bytes: NaN and negative values -> 0.
func Memory(v float64) resource.Quantity { return millis(nonNegative(v), resource.BinarySI) }

func nonNegative(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

// millis returns v as a milli-quantity truncated toward zero, saturating at
// the int64 range.
func millis(v float64, format resource.Format) resource.Quantity {
	m := v * 1000
	var n int64
	switch {
	case math.IsNaN(m):
		n = 0
	case m >= math.MaxInt64:
		n = math.MaxInt64
	case m <= math.MinInt64:
		n = math.MinInt64
	default:
		n = int64(m)
	}
	return *resource.NewMilliQuantity(n, format)
}
