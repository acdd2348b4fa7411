package forecast

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimeFeature is one calendar feature that gets its own embedding table.
type TimeFeature string

// The calendar features of the reference (pandas names). Cardinalities follow the reference:
// dayofweek uses 8 slots and day 32 so that the tables are interchangeable with it.
const (
	FeatureMinute    TimeFeature = "minute"
	FeatureHour      TimeFeature = "hour"
	FeatureDayOfWeek TimeFeature = "dayofweek"
	FeatureDay       TimeFeature = "day"
)

// Cardinality is the size of the embedding table of f.
func (f TimeFeature) Cardinality() (int, error) {
	switch f {
	case FeatureMinute:
		return 60, nil
	case FeatureHour:
		return 24, nil
	case FeatureDayOfWeek:
		return 8, nil
	case FeatureDay:
		return 32, nil
	}
	return 0, fmt.Errorf("unknown time feature %q", f)
}

// index of t for f; t is read in UTC so that a model behaves the same on every host.
func (f TimeFeature) index(t time.Time) int {
	t = t.UTC()
	switch f {
	case FeatureMinute:
		return t.Minute()
	case FeatureHour:
		return t.Hour()
	case FeatureDayOfWeek:
		// pandas dayofweek: Monday = 0.
		return (int(t.Weekday()) + 6) % 7
	case FeatureDay:
		return t.Day()
	}
	return 0
}

// TimeFeaturesFor returns the calendar features used at a sampling step, following the reference's table
// (1min: minute,hour,dayofweek; 10min: + day; 1H: hour,dayofweek,day; 1D: dayofweek,day) and extending it to
// the steps in between (5min and 30min use the 10min set).
func TimeFeaturesFor(step time.Duration) []TimeFeature {
	switch {
	case step < 10*time.Minute:
		return []TimeFeature{FeatureMinute, FeatureHour, FeatureDayOfWeek}
	case step < time.Hour:
		return []TimeFeature{FeatureMinute, FeatureHour, FeatureDayOfWeek, FeatureDay}
	case step < 24*time.Hour:
		return []TimeFeature{FeatureHour, FeatureDayOfWeek, FeatureDay}
	default:
		return []TimeFeature{FeatureDayOfWeek, FeatureDay}
	}
}

// ParseFreq parses a pandas-style frequency as used in Kapacity's configs: "min", "1min", "10min", "30s",
// "H", "1H", "D", "1D" (case-insensitive units h/d). A bare unit means one of it.
func ParseFreq(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := 1
	if i > 0 {
		v, err := strconv.Atoi(s[:i])
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("invalid frequency %q: bad count", s)
		}
		n = v
	}
	var unit time.Duration
	switch strings.ToLower(s[i:]) {
	case "s":
		unit = time.Second
	case "min", "t":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, fmt.Errorf("invalid frequency %q: unit must be one of s, min, H, D", s)
	}
	return time.Duration(n) * unit, nil
}
