package v1alpha1

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	// Cron time zones must resolve the same way wherever a spec is validated or evaluated: in the
	// manager's distroless image, in a CLI on a laptop, in CI. Embedding the zone database removes the
	// dependence on the host's /usr/share/zoneinfo.
	_ "time/tzdata"
)

// CronWindow is a parsed ReplicaCron: the window opens when Start fires and closes when End fires,
// both evaluated in Location. It is a computation helper, not part of the API.
//
// +kubebuilder:object:generate=false
type CronWindow struct {
	Start    cron.Schedule
	End      cron.Schedule
	Location *time.Location
}

// ParseCronWindow parses the time zone and the start and end expressions of a cron rule the way
// Kapacity does: an IANA zone for the rule (empty means UTC) and standard cron expressions, which
// also accept descriptors such as "@daily" and a "CRON_TZ=" prefix. It is the only parser of cron
// rules: validation, the controllers and the adapter's predicted replicas all go through it, so
// they accept and refuse the same input.
func ParseCronWindow(c ReplicaCron) (CronWindow, error) {
	loc, err := LoadTimeZone(c.TimeZone)
	if err != nil {
		return CronWindow{}, fmt.Errorf("time zone %q: %w", c.TimeZone, err)
	}
	start, err := ParseCronExpression(c.Start)
	if err != nil {
		return CronWindow{}, fmt.Errorf("start %q: %w", c.Start, err)
	}
	end, err := ParseCronExpression(c.End)
	if err != nil {
		return CronWindow{}, fmt.Errorf("end %q: %w", c.End, err)
	}
	return CronWindow{Start: start, End: end, Location: loc}, nil
}

// LoadTimeZone loads an IANA time zone; empty means UTC. "Local", which time.LoadLocation accepts
// as the host's zone, is refused: a rule must fire at the same instant in the manager's container,
// in the adapter and in a CLI on a laptop.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" is the zone of the host, which differs between components: name an IANA zone such as UTC or Asia/Shanghai`)
	}
	return time.LoadLocation(name)
}

// Time zone prefixes robfig/cron reads at the start of an expression.
var cronTimeZonePrefixes = []string{"CRON_TZ=", "TZ="}

// ParseCronExpression parses one standard cron expression or descriptor, with an optional
// "CRON_TZ=<zone> " prefix.
//
// robfig/cron v3.0.1 reads the prefix's zone up to the first space and panics when there is none
// ("TZ=UTC", "CRON_TZ=UTC\t0\t8\t*\t*\t*"); that input is refused here first. Any other panic
// of the parser is turned into an error as well, so that no user input can crash a component.
func ParseCronExpression(expr string) (_ cron.Schedule, err error) {
	for _, prefix := range cronTimeZonePrefixes {
		rest, ok := strings.CutPrefix(expr, prefix)
		if !ok {
			continue
		}
		zone, _, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, fmt.Errorf("the time zone prefix must be followed by a space and a cron expression, for example %q", prefix+"Asia/Tokyo 0 8 * * *")
		}
		if _, err := LoadTimeZone(zone); err != nil {
			return nil, fmt.Errorf("time zone prefix %q: %w", zone, err)
		}
		break
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errCronParserPanic, r)
		}
	}()
	return cron.ParseStandard(expr)
}

// errCronParserPanic marks a panic of the cron parser turned into an error; the fuzz test fails on
// it, since it means an input the checks above should have refused.
var errCronParserPanic = errors.New("the cron parser failed on this input")

// Active tells whether the window is open at t, and when it closes if so. The window is open when the
// next End comes strictly before the next Start: the last event was a Start. This is Kapacity's rule,
// so a Start and an End firing at the same instant leave the window closed.
func (w CronWindow) Active(t time.Time) (active bool, closes time.Time) {
	local := t.In(w.Location)
	nextStart, nextEnd := w.Start.Next(local), w.End.Next(local)
	if nextEnd.IsZero() || !nextStart.After(nextEnd) {
		return false, time.Time{}
	}
	return true, nextEnd
}

// timeInterval is the half-open interval [from, to).
//
// +kubebuilder:object:generate=false
type timeInterval struct {
	from, to time.Time
}

// activeIntervals lists the intervals within [from, to) during which the window is open, looking at
// no more than maxEvents start and end events. until is the end of the span actually covered: to, or
// earlier when the event budget ran out first.
//
// The window can only open or close at one of its own events, so the state is sampled right after
// each event. Walking both schedules in step gives the next start and next end after every event
// for free, which makes the cost one Next call per event.
func (w CronWindow) activeIntervals(from, to time.Time, maxEvents int) (intervals []timeInterval, until time.Time) {
	local := from.In(w.Location)
	nextStart, nextEnd := w.Start.Next(local), w.End.Next(local)
	at := from
	var open *timeInterval
	for events := 0; ; events++ {
		active := !nextEnd.IsZero() && nextStart.After(nextEnd)
		if active && open == nil {
			open = &timeInterval{from: at}
		}
		if !active && open != nil {
			open.to = at
			intervals = append(intervals, *open)
			open = nil
		}

		next := earliest(nextStart, nextEnd)
		if next.IsZero() || !next.Before(to) {
			until = to
			break
		}
		if events >= maxEvents {
			until = next
			break
		}
		at = next
		if nextStart.Equal(next) {
			nextStart = w.Start.Next(next)
		}
		if nextEnd.Equal(next) {
			nextEnd = w.End.Next(next)
		}
	}
	if open != nil {
		open.to = until
		intervals = append(intervals, *open)
	}
	return intervals, until
}

// earliest returns the earlier of two times, ignoring zero times (robfig/cron returns the zero time
// for a schedule that never fires).
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	default:
		return a
	}
}

// firstOverlap returns the first interval during which both lists (each sorted and disjoint) are
// open.
func firstOverlap(a, b []timeInterval) (timeInterval, bool) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		from, to := latest(a[i].from, b[j].from), earliest(a[i].to, b[j].to)
		if from.Before(to) {
			return timeInterval{from: from, to: to}, true
		}
		if a[i].to.Before(b[j].to) {
			i++
		} else {
			j++
		}
	}
	return timeInterval{}, false
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
