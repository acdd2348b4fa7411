package v1alpha1

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The validation of cron rules: each rule must parse and open a window, and the windows that
// compete (same priority, same portrait) must never be open at the same time.

const (
	// The overlap check walks every cron of a priority over one year from a fixed reference instant, so
	// that yearly, monthly and weekly windows are all seen and the result never depends on the day
	// the check runs. A leap year is used so that 29 February occurs.
	cronCheckHorizon = 366 * 24 * time.Hour
	// Dense schedules (every minute) would need hundreds of thousands of events for a year; the walk
	// stops after this many events per cron, and the check then covers the shortest span walked.
	cronCheckMaxEvents = 4000
	// The walks of all the crons of an object share this budget (robfig/cron takes 5-15 µs per
	// event), so that the validating webhook answers within a second however many crons there are;
	// each cron gets an equal share, at most cronCheckMaxEvents. Overlaps beyond the span covered
	// are settled at run time like a priority tie (see config/portrait).
	cronCheckTotalEvents = 32000
	// At most this many overlaps are reported in full per group of competing crons.
	maxOverlapErrors = 10

	// maxCronExpressionLength matches the MaxLength marker of ReplicaCron.Start and End.
	maxCronExpressionLength = 256
)

func cronCheckReference() time.Time {
	return time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
}

// cronEventBudget is the events each of n crons may walk.
func cronEventBudget(n int) int {
	return min(cronCheckMaxEvents, cronCheckTotalEvents/max(1, n))
}

// cronRef is a parsed cron rule with the path it was found at.
//
// +kubebuilder:object:generate=false
type cronRef struct {
	path   *field.Path
	cron   *ReplicaCron
	window CronWindow
	// intervals are the window's open intervals from cronCheckReference, walked up to until.
	intervals []timeInterval
	until     time.Time
}

// parseCrons checks each rule of a list on its own and returns those that parsed, with their open
// intervals walked up to maxEvents events, for the overlap check.
func parseCrons(crons []ReplicaCron, path *field.Path, maxEvents int) ([]cronRef, field.ErrorList) {
	var errs field.ErrorList
	if len(crons) == 0 {
		return nil, append(errs, field.Required(path, "add at least one cron rule"))
	}
	if tooMany := validateMaxItems(len(crons), MaxCrons, path); len(tooMany) > 0 {
		return nil, tooMany
	}
	var refs []cronRef
	names := map[string]int{}
	for i := range crons {
		c := &crons[i]
		cp := path.Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), "name the cron rule; the name appears in events and errors"))
		} else if tooLong := validateMaxLength(c.Name, MaxNameLength, cp.Child("name")); len(tooLong) > 0 {
			errs = append(errs, tooLong...)
		} else if first, dup := names[c.Name]; dup {
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
			errs[len(errs)-1].Detail = fmt.Sprintf("already used by %s: give each rule its own name", path.Index(first))
		} else {
			names[c.Name] = i
		}
		errs = append(errs, validateNonNegative(int64(c.Replicas), cp.Child("replicas"))...)

		errs = append(errs, validateMaxLength(c.Description, MaxDescriptionLength, cp.Child("description"))...)

		parsed := true
		if len(c.TimeZone) > MaxTimeZoneLength {
			parsed = false
			errs = append(errs, field.TooLong(cp.Child("timeZone"), "", MaxTimeZoneLength))
		} else if _, err := LoadTimeZone(c.TimeZone); err != nil {
			parsed = false
			errs = append(errs, field.Invalid(cp.Child("timeZone"), c.TimeZone, "must be an IANA time zone name such as UTC or Asia/Shanghai: "+err.Error()))
		}
		for _, e := range []struct{ name, expr string }{{"start", c.Start}, {"end", c.End}} {
			if e.expr == "" {
				parsed = false
				errs = append(errs, field.Required(cp.Child(e.name), "set a standard cron expression, for example \"0 8 * * *\""))
			} else if len(e.expr) > maxCronExpressionLength {
				// The CRD caps the length so that its CEL rules stay within the API server's cost budget.
				parsed = false
				errs = append(errs, field.TooLong(cp.Child(e.name), "", maxCronExpressionLength))
			} else if _, err := ParseCronExpression(e.expr); err != nil {
				parsed = false
				errs = append(errs, field.Invalid(cp.Child(e.name), e.expr,
					"must be a standard cron expression (minute hour day-of-month month day-of-week, for example \"0 8 * * 1-5\") or a descriptor such as @daily: "+err.Error()))
			}
		}
		if !parsed {
			continue
		}
		if c.Start == c.End {
			errs = append(errs, field.Invalid(cp.Child("end"), c.End,
				"must differ from start: a window that closes the moment it opens is never active; change end to the time the window should close"))
			continue
		}
		w, err := ParseCronWindow(*c)
		if err != nil { // unreachable after the checks above; kept so a parser change cannot panic below
			errs = append(errs, field.Invalid(cp, c.Name, err.Error()))
			continue
		}
		ref := cronRef{path: cp, cron: c, window: w}
		if msg := ref.neverActive(maxEvents); msg != "" {
			errs = append(errs, field.Invalid(cp.Child("start"), c.Start, msg))
			continue
		}
		refs = append(refs, ref)
	}
	return refs, errs
}

// neverActive walks the rule's window (keeping its intervals for the overlap check) and explains
// why it never opens within the checked year, or returns "".
func (r *cronRef) neverActive(maxEvents int) string {
	ref := cronCheckReference()
	local := ref.In(r.window.Location)
	if r.window.Start.Next(local).IsZero() {
		return "never fires (robfig/cron finds no matching time within five years): check the day of month and month fields"
	}
	if r.window.End.Next(local).IsZero() {
		return fmt.Sprintf("the end expression %q never fires: check its day of month and month fields", r.cron.End)
	}
	r.intervals, r.until = r.window.activeIntervals(ref, ref.Add(cronCheckHorizon), maxEvents)
	if len(r.intervals) == 0 && !r.until.Before(ref.Add(cronCheckHorizon)) {
		return fmt.Sprintf("never opens a window with end %q: the window opens at a start only if an end follows before the next start, so make end fire between two starts", r.cron.End)
	}
	return ""
}

// validateCronOverlaps reports each pair of rules whose windows are open at the same time. Kapacity
// found overlaps only while both windows were open and then failed every reconcile; here the
// collision is reported when the object is written, with the instant it first happens.
func validateCronOverlaps(refs []cronRef, scope string) field.ErrorList {
	if len(refs) < 2 {
		return nil
	}
	from := cronCheckReference()
	covered := from.Add(cronCheckHorizon)
	for _, r := range refs {
		if r.until.Before(covered) {
			covered = r.until
		}
	}
	var errs field.ErrorList
	more := 0
	for j := range refs {
		for i := 0; i < j; i++ {
			o, found := firstOverlap(refs[i].intervals, refs[j].intervals)
			if !found || !o.from.Before(covered) {
				continue
			}
			if len(errs) == maxOverlapErrors {
				more++
				continue
			}
			a, b := refs[i], refs[j]
			errs = append(errs, field.Invalid(b.path, b.cron.Name, fmt.Sprintf(
				"overlaps cron %q (%s) %s: both are active from %s to %s (checked from %s); windows of equal priority must not overlap, so move a start or an end, or give one of them a different priority",
				a.cron.Name, a.path, scope, o.from.UTC().Format(time.RFC3339), o.to.UTC().Format(time.RFC3339), from.Format(time.RFC3339))))
		}
	}
	if more > 0 {
		last := refs[len(refs)-1]
		errs = append(errs, field.Invalid(last.path, last.cron.Name, fmt.Sprintf("and %d more overlapping pairs of crons %s", more, scope)))
	}
	return errs
}
