package v1alpha1

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// robfig/cron v3.0.1 slices the expression up to its first space to read a "TZ=" or "CRON_TZ="
// prefix, and panics when there is none. The manager, the validation and the adapter all parse
// through ParseCronWindow, which must turn such input into an error naming the fix.
func TestParseCronWindowRefusesBadTimeZones(t *testing.T) {
	cases := []struct {
		name string
		cron ReplicaCron
		want string
	}{
		{"TZ prefix alone", ReplicaCron{Start: "TZ=UTC", End: "0 9 * * *"}, `start "TZ=UTC": the time zone prefix must be followed by a space and a cron expression`},
		{"CRON_TZ prefix alone in end", ReplicaCron{Start: "0 8 * * *", End: "CRON_TZ=Asia/Tokyo"}, `end "CRON_TZ=Asia/Tokyo": the time zone prefix must be followed by a space`},
		{"prefix and fields separated by tabs", ReplicaCron{Start: "CRON_TZ=UTC\t0\t8\t*\t*\t*", End: "0 9 * * *"}, "followed by a space"},
		{"prefix with the host's zone", ReplicaCron{Start: "CRON_TZ=Local 0 8 * * *", End: "0 9 * * *"}, `"Local" is the zone of the host`},
		{"rule zone of the host", ReplicaCron{TimeZone: "Local", Start: "0 8 * * *", End: "0 9 * * *"}, `time zone "Local": "Local" is the zone of the host`},
		{"unknown prefix zone", ReplicaCron{Start: "CRON_TZ=Mars/Olympus 0 8 * * *", End: "0 9 * * *"}, "unknown time zone Mars/Olympus"},
		{"unknown rule zone", ReplicaCron{TimeZone: "Mars/Olympus", Start: "0 8 * * *", End: "0 9 * * *"}, "unknown time zone Mars/Olympus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCronWindow(tc.cron)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCronWindow(%+v) = %v, want an error containing %q", tc.cron, err, tc.want)
			}
		})
	}
}

func TestParseCronWindowAcceptsTimeZonePrefixes(t *testing.T) {
	w, err := ParseCronWindow(ReplicaCron{TimeZone: "UTC", Start: "CRON_TZ=Asia/Tokyo 0 8 * * *", End: "TZ=Asia/Tokyo 0 9 * * *"})
	if err != nil {
		t.Fatal(err)
	}
	// 08:30 in Tokyo is 23:30 UTC the day before.
	at := time.Date(2024, time.March, 1, 23, 30, 0, 0, time.UTC)
	if active, closes := w.Active(at); !active || !closes.Equal(time.Date(2024, time.March, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Active(%s) = %v, %s; want open until 00:00 UTC", at, active, closes)
	}
}

// The same input through validation: an error on the field, no panic.
func TestValidateRefusesTimeZonePrefixWithoutExpression(t *testing.T) {
	a := validIHPA()
	a.Spec.PortraitProviders[1].Cron.Crons[0].Start = "TZ=UTC"
	a.Spec.PortraitProviders[1].Cron.Crons[1].End = "CRON_TZ=Asia/Tokyo"
	a.Default()
	checkErrors(t, a.Validate(), []wantErr{
		{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[0].start", "followed by a space and a cron expression"},
		{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].end", "followed by a space and a cron expression"},
	})
}

// FuzzCronWindow feeds arbitrary time zones and expressions to the one parser every component
// uses, and to the validation of a rule. Neither may panic (the parser's own panics are recovered,
// but one found here is a case the pre-checks must catch), and a window that parses must be
// evaluable at any instant.
func FuzzCronWindow(f *testing.F) {
	for _, seed := range [][3]string{
		{"UTC", "0 8 * * *", "0 9 * * *"},
		{"UTC", "TZ=UTC", "0 9 * * *"},
		{"", "CRON_TZ=Asia/Tokyo", "@daily"},
		{"Asia/Shanghai", "CRON_TZ=America/Sao_Paulo 0 0 * * *", "TZ=Europe/London 30 1 * * 0"},
		{"America/New_York", "0 2 * * *", "30 2 * * *"},
		{"Local", "@every 1h", "@every 90m"},
		{"UTC", "*/0 * * * *", "0 0 31 2 *"},
		{"UTC", "@every -1s", "CRON_TZ= 0 8 * * *"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	instants := []time.Time{
		time.Date(2024, time.March, 10, 6, 59, 59, 0, time.UTC),  // a DST change in America
		time.Date(2024, time.October, 27, 0, 30, 0, 0, time.UTC), // a DST change in Europe
		time.Date(2099, time.December, 31, 23, 59, 59, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, tz, start, end string) {
		c := ReplicaCron{Name: "fuzz", TimeZone: tz, Start: start, End: end, Replicas: 1}
		w, err := ParseCronWindow(c)
		if errors.Is(err, errCronParserPanic) {
			t.Fatalf("the cron parser panicked on an input the pre-checks let through: %v", err)
		}
		if err == nil {
			for _, at := range instants {
				w.Active(at)
			}
			w.activeIntervals(instants[0], instants[0].Add(cronCheckHorizon), 50)
		}
		_, errs := parseCrons([]ReplicaCron{c}, field.NewPath("crons"), cronCheckMaxEvents)
		for _, e := range errs {
			if strings.Contains(e.Detail, errCronParserPanic.Error()) {
				t.Fatalf("validation reached a parser panic: %v", e)
			}
		}
	})
}
