package metricvalue

import (
	"math"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Conformance case 30, plus the NaN, negative and overflow rules.
func TestConversions(t *testing.T) {
	tests := []struct {
		name    string
		convert func(float64) resource.Quantity
		in      float64
		want    string
	}{
		{"custom half", Custom, 0.5, "500m"},
		{"custom integer", Custom, 1100, "1100"},
		{"custom truncated", Custom, 1.2345, "1234m"},
		{"custom below a milli", Custom, 0.0004, "0"},
		{"custom decimal suffix", Custom, 3e9, "3G"},
		{"custom NaN", Custom, math.NaN(), "0"},
		{"custom negative truncates toward zero", Custom, -1.2345, "-1234m"},
		{"custom +Inf saturates", Custom, math.Inf(1), "9223372036854775807m"},
		{"custom -Inf saturates", Custom, math.Inf(-1), "-9223372036854775808m"},
		{"external half", External, 0.5, "500m"},
		{"external decimal suffix", External, 3e9, "3G"},
		{"external NaN", External, math.NaN(), "0"},
		{"cpu", CPU, 1.2345, "1234m"},
		{"cpu decimal suffix", CPU, 3e9, "3G"},
		{"cpu NaN", CPU, math.NaN(), "0"},
		{"cpu negative", CPU, -2, "0"},
		{"memory binary", Memory, 3e9, "3000000000"},
		{"memory power of two", Memory, 1 << 30, "1Gi"},
		{"memory NaN", Memory, math.NaN(), "0"},
		{"memory negative", Memory, -5, "0"},
	}
	for _, tc := range tests {
		q := tc.convert(tc.in)
		if got := q.String(); got != tc.want {
			t.Errorf("%s: %v -> %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
