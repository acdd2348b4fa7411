package v1alpha1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Size limits of lists, maps and strings. They are the CRD's MaxItems, MaxProperties and MaxLength
// markers, repeated here so that objects that never reach an API server are held to them too. They
// keep the CRD's CEL rules within the API server's cost budget and the validating webhook's work
// (which walks every cron window over a year) well within its timeout.
const (
	MaxPortraitProviders = 32
	// MaxCrons bounds one list of cron rules, and all the Cron providers of an autoscaler together.
	MaxCrons             = 64
	MaxStabilityCheckers = 16
	MaxMetrics           = 32
	// MaxTimeSeriesPoints is a week of points a minute apart.
	MaxTimeSeriesPoints  = 7 * 24 * 60
	MaxNameLength        = 253
	MaxDescriptionLength = 1024
	MaxTimeZoneLength    = 64
	MaxToleranceLength   = 32
	MaxConfigEntries     = 64
)

func validateMaxItems(n, limit int, path *field.Path) field.ErrorList {
	if n > limit {
		return field.ErrorList{field.TooMany(path, n, limit)}
	}
	return nil
}

// validateMaxLength reports a string over limit bytes without quoting it: it may be huge.
func validateMaxLength(s string, limit int, path *field.Path) field.ErrorList {
	if len(s) > limit {
		return field.ErrorList{field.TooLong(path, "", limit)}
	}
	return nil
}

func validateConfig(config map[string]string, path *field.Path) field.ErrorList {
	if len(config) > MaxConfigEntries {
		return field.ErrorList{field.TooMany(path, len(config), MaxConfigEntries)}
	}
	return nil
}

// validateCronTotal bounds the cron rules of all the Cron blocks of an autoscaler, whose windows
// the overlap check compares pairwise.
func validateCronTotal(providers []HorizontalPortraitProvider, path *field.Path) field.ErrorList {
	if total := cronCount(providers); total > MaxCrons {
		return field.ErrorList{field.Invalid(path, fmt.Sprintf("%d cron rules", total),
			fmt.Sprintf("the Cron providers hold %d cron rules in all, more than %d: merge windows or split the autoscaler", total, MaxCrons))}
	}
	return nil
}

// cronCount is the number of cron rules in all the cron blocks of the providers.
func cronCount(providers []HorizontalPortraitProvider) int {
	total := 0
	for i := range providers {
		if c := providers[i].Cron; c != nil {
			total += len(c.Crons)
		}
	}
	return total
}
