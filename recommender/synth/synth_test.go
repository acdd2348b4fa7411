package synth

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	for _, f := range Families {
		t.Run(string(f), func(t *testing.T) {
			a, err := Generate(f, 3, 24*7*4, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Generate(f, 3, 24*7*4, time.Hour)
			c, _ := Generate(f, 4, 24*7*4, time.Hour)
			if !reflect.DeepEqual(a, b) {
				t.Error("same family and seed, different series")
			}
			if reflect.DeepEqual(a.Values, c.Values) {
				t.Error("different seeds, same series")
			}
			for i, v := range a.Values {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("value %d is %v: traffic is finite and ≥ 0", i, v)
				}
			}
			// Every family keeps a daily cycle: the mean at the peak hour of the first week beats the trough's.
			var byHour [24]float64
			for i := 0; i < 24*7; i++ {
				byHour[i%24] += a.Values[i]
			}
			lo, hi := byHour[0], byHour[0]
			for _, v := range byHour {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if !(hi > 1.2*lo) {
				t.Errorf("no daily cycle: hourly sums %v", byHour)
			}
		})
	}
	if _, err := Generate("nope", 1, 10, time.Hour); err == nil || !strings.Contains(err.Error(), "unknown family") {
		t.Errorf("unknown family: %v", err)
	}
}
