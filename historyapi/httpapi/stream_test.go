package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// TestWriteSeriesListIsJSON: the streamed answer is byte for byte what encoding/json writes.
func TestWriteSeriesListIsJSON(t *testing.T) {
	long := make([]v1alpha1.Point, 5000)
	for i := range long {
		long[i] = v1alpha1.Point{Timestamp: 1_700_000_000_000 + int64(i)*60_000, Value: v1alpha1.Value(float64(i) / 7)}
	}
	for name, series := range map[string][]v1alpha1.Series{
		"none":                  {},
		"empty":                 {{Labels: map[string]string{}, Points: []v1alpha1.Point{}}},
		"nil points and labels": {{}},
		"special values and a window": {{
			Labels: map[string]string{"pod": `we"b\n`, "namespace": "prod"},
			Points: []v1alpha1.Point{{Timestamp: 1, Value: 1.5}, {Timestamp: 2, Value: v1alpha1.Value(math.NaN())}, {Timestamp: 3, Value: v1alpha1.Value(math.Inf(1))},
				{Timestamp: 4, Value: v1alpha1.Value(math.Inf(-1))}, {Timestamp: 5, Value: 3e21}, {Timestamp: 6, Value: -0.000001}},
			Window: &metav1.Duration{Duration: 3 * time.Minute},
		}},
		"several, long": {{Labels: map[string]string{"a": "1"}, Points: long}, {Labels: map[string]string{"a": "2"}, Points: long[:3]}},
	} {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(&v1alpha1.SeriesList{
				TypeMeta: metav1.TypeMeta{Kind: v1alpha1.SeriesListKind, APIVersion: v1alpha1.SchemeGroupVersion.String()},
				Series:   series,
			}); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := WriteSeriesList(&got, series); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("streamed:\n%.400s\nencoding/json:\n%.400s", got.String(), want.String())
			}
		})
	}
}
