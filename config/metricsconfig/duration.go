package metricsconfig

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in Prometheus duration syntax ("5m",
// "1h30m", "90s", "1w"), the syntax users already use for rate windows.
type Duration time.Duration

// promDurationPattern is Prometheus' duration grammar: units from largest to
// smallest, each at most once.
var promDurationPattern = regexp.MustCompile(`^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$`)

var promDurationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"y", 365 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// ParseDuration parses a Prometheus duration.
func ParseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	parts := promDurationPattern.FindStringSubmatch(s)
	if s == "" || parts == nil {
		return 0, fmt.Errorf("not a valid duration string: %q", s)
	}
	var total time.Duration
	for i, u := range promDurationUnits {
		field := parts[i+1]
		if field == "" {
			continue
		}
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil || n > int64(math.MaxInt64/u.unit) {
			return 0, fmt.Errorf("duration out of range: %q", s)
		}
		add := time.Duration(n) * u.unit
		if total > math.MaxInt64-add {
			return 0, fmt.Errorf("duration out of range: %q", s)
		}
		total += add
	}
	return Duration(total), nil
}

// String formats d in Prometheus syntax, largest units first ("1m", "1h30m").
func (d Duration) String() string {
	ms := time.Duration(d) / time.Millisecond
	if ms == 0 {
		return "0s"
	}
	var b strings.Builder
	if ms < 0 {
		b.WriteByte('-')
		ms = -ms
	}
	for _, u := range promDurationUnits {
		per := u.unit / time.Millisecond
		if n := ms / per; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
			ms -= n * per
		}
	}
	return b.String()
}

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// UnmarshalYAML implements the go-yaml (v2 and v3) unmarshaler.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	parsed, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// MarshalYAML implements the go-yaml marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON lets sigs.k8s.io/yaml and encoding/json read the same syntax.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	parsed, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// MarshalJSON writes the Prometheus syntax.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }
