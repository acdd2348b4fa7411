package algorithmjob

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestCronJobName(t *testing.T) {
	long := strings.Repeat("a", 253)
	dotted := strings.Repeat("a.b", 84) // 252 characters, dots every third
	tests := []struct {
		ns, name string
	}{
		{"team-a", "b-web"},
		{"team-a-b", "web"},
		{"ns", "sample-predictive"},
		{"ns", long},
		{"ns", long[:252] + "b"},
		{"other", long},
		{"ns", dotted},
		{"ns", strings.Repeat("a", 40) + "-" + strings.Repeat("b", 20)}, // truncated right after the dash
		{strings.Repeat("n", 63), "x"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := CronJobName(tt.ns, tt.name)
		if len(got) > MaxCronJobNameLength {
			t.Errorf("%s/%s: %q is %d characters, over %d", tt.ns, tt.name, got, len(got), MaxCronJobNameLength)
		}
		if msgs := validation.IsDNS1123Label(got); len(msgs) > 0 {
			t.Errorf("%s/%s: %q is not a DNS label: %v", tt.ns, tt.name, got, msgs)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%s/%s and %s share the name %q", tt.ns, tt.name, prev, got)
		}
		seen[got] = tt.ns + "/" + tt.name
		if again := CronJobName(tt.ns, tt.name); again != got {
			t.Errorf("%s/%s: %q then %q", tt.ns, tt.name, got, again)
		}
	}
	// Short names stay readable: the portrait's name, then the hash.
	if got := CronJobName("ns", "sample-predictive"); !strings.HasPrefix(got, "sample-predictive-") {
		t.Errorf("CronJobName(ns, sample-predictive) = %q, want the portrait's name first", got)
	}
}

// TestCronJobNameIsStable: the name is part of the cluster's state (the manager finds the
// CronJob it made by it after a restart or an upgrade), so it must never change for an input.
// The hashes are those of `printf 'ns/name' | sha256sum`.
func TestCronJobNameIsStable(t *testing.T) {
	for _, tt := range []struct{ ns, name, want string }{
		{"ns", "sample-predictive", "sample-predictive-b831ca897f"},
		{"team-a", "b-web", "b-web-285c299490"},
	} {
		if got := CronJobName(tt.ns, tt.name); got != tt.want {
			t.Errorf("CronJobName(%s, %s) = %q, want %q (sha256 of namespace/name)", tt.ns, tt.name, got, tt.want)
		}
	}
}
