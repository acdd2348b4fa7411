package sim

import (
	"testing"
	"time"
)

func TestTrafficCycle(t *testing.T) {
	rise := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	hourly := Traffic{Low: 20, High: 50, Rise: rise, Busy: 20 * time.Minute}
	tenMinutes := Traffic{Low: 20, High: 50, Rise: rise, Busy: 5 * time.Minute, Period: 10 * time.Minute}
	for _, c := range []struct {
		name     string
		traffic  Traffic
		at       time.Time
		want     float64
		nextRise time.Time
	}{
		{"hourly: the rise", hourly, rise, 50, rise},
		{"hourly: busy part", hourly, rise.Add(19*time.Minute + 59*time.Second), 50, rise.Add(time.Hour)},
		{"hourly: quiet after it", hourly, rise.Add(20 * time.Minute), 20, rise.Add(time.Hour)},
		{"hourly: an hour earlier", hourly, rise.Add(-time.Hour + 30*time.Second), 50, rise},
		{"hourly: just before a rise", hourly, rise.Add(-time.Second), 20, rise},
		{"10 minutes: the rise", tenMinutes, rise, 50, rise},
		{"10 minutes: quiet half", tenMinutes, rise.Add(6 * time.Minute), 20, rise.Add(10 * time.Minute)},
		{"10 minutes: next busy half", tenMinutes, rise.Add(12 * time.Minute), 50, rise.Add(20 * time.Minute)},
		{"10 minutes: a day earlier, same phase", tenMinutes, rise.Add(-24*time.Hour + 2*time.Minute), 50, rise.Add(-24*time.Hour + 10*time.Minute)},
		{"10 minutes: before Rise, quiet", tenMinutes, rise.Add(-3 * time.Minute), 20, rise},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.traffic.At(c.at); got != c.want {
				t.Errorf("At(%s) = %g, want %g", c.at.Format(time.TimeOnly), got, c.want)
			}
			if got := c.traffic.IsBusy(c.at); got != (c.want == c.traffic.High) {
				t.Errorf("IsBusy(%s) = %t", c.at.Format(time.TimeOnly), got)
			}
			if got := c.traffic.NextRise(c.at); !got.Equal(c.nextRise) {
				t.Errorf("NextRise(%s) = %s, want %s", c.at.Format(time.DateTime), got.Format(time.DateTime), c.nextRise.Format(time.DateTime))
			}
		})
	}
}
