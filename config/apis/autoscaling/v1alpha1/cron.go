package v1alpha1

import (
	"fmt"
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
// Kapacity does: time.LoadLocation for the zone (empty means UTC) and cron.ParseStandard for the
// expressions, which also accepts descriptors such as "@daily" and a "CRON_TZ=" prefix.
func ParseCronWindow(c ReplicaCron) (CronWindow, error) {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return CronWindow{}, fmt.Errorf("time zone %q: %w", c.TimeZone, err)
	}
	start, err := cron.ParseStandard(c.Start)
	if err != nil {
		return CronWindow{}, fmt.Errorf("start %q: %w", c.Start, err)
	}
	end, err := cron.ParseStandard(c.End)
	if err != nil {
		return CronWindow{}, fmt.Errorf("end %q: %w", c.End, err)
	}
	return CronWindow{Start: start, End: end, Location: loc}, nil
}

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
