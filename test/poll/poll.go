// Package poll waits for conditions in end-to-end tests: with a deadline, and with the last
// observation in the failure message, so a failed run says what it saw instead of only "timed out".
package poll

import (
	"context"
	"testing"
	"time"
)

// Interval between two checks.
const Interval = 250 * time.Millisecond

// Until calls check until it returns done, the context ends, or timeout passes; then it fails the
// test with what the last check observed. check returns a description of what it saw, whether
// the condition holds, and an error for conditions that can never hold (which fail at once).
func Until(ctx context.Context, t testing.TB, timeout time.Duration, what string,
	check func(ctx context.Context) (seen string, done bool, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	started := time.Now()
	seen := "(nothing observed yet)"
	for {
		observation, done, err := check(ctx)
		if observation != "" {
			seen = observation
		}
		if err != nil {
			t.Fatalf("%s: %v (after %s; last seen: %s)", what, err, time.Since(started).Round(time.Millisecond), seen)
		}
		if done {
			t.Logf("%s: done after %s (%s)", what, time.Since(started).Round(time.Millisecond), seen)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s; last seen: %s", what, timeout, seen)
		case <-ticker.C:
		}
	}
}
