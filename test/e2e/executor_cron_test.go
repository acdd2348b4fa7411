package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/test/poll"
)

// TestExecutorCronPortrait reproduces quick-start 2.2.1.1 (cron-portrait-sample.yaml) with the
// windows moved to the next minutes: no window is open at first (NoValidPortraitValue, the
// workload keeps its replicas), then cron-2 gives 2 replicas, cron-3 gives 3, and when it closes
// NoValidPortraitValue returns and the workload stays at 3.
func TestExecutorCronPortrait(t *testing.T) {
	ctx := context.Background()
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	createNginx(ctx, t, ns, 1)

	ihpa := loadSample(t, "cron-portrait-sample.yaml")
	ihpa.Namespace = ns
	now := time.Now()
	first := 1
	if now.UTC().Second() >= 45 {
		first = 2 // leave time to observe the state before the first window
	}
	window := map[string][2]int{ // minutes from now; cron-1, 4 and 5 are moved half an hour away
		"cron-1": {first + 20, first + 21}, "cron-2": {first, first + 1}, "cron-3": {first + 1, first + 2},
		"cron-4": {first + 22, first + 23}, "cron-5": {first + 24, first + 25},
	}
	crons := ihpa.Spec.PortraitProviders[0].Cron.Crons
	for i := range crons {
		w := window[crons[i].Name]
		crons[i].Start = fmt.Sprintf("%d * * * *", minuteOfHour(now, w[0]))
		crons[i].End = fmt.Sprintf("%d * * * *", minuteOfHour(now, w[1]))
		t.Logf("%s: %s - %s (UTC) -> %d replicas", crons[i].Name, crons[i].Start, crons[i].End, crons[i].Replicas)
	}
	if err := crClient.Create(ctx, ihpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}

	wait := func(what string, timeout time.Duration, done func(observation) bool) {
		t.Helper()
		poll.Until(ctx, t, timeout, what, func(ctx context.Context) (string, bool, error) {
			o, err := observe(ctx, ns, ihpa.Name)
			if err != nil {
				return observationError(ctx, err), false, nil
			}
			return o.String(), done(o), nil
		})
	}
	noValue := func(o observation) bool {
		return strings.Contains(o.ihpaConditions, "ScalingActive=False(NoValidPortraitValue)")
	}
	wait("NoValidPortraitValue before the first window, 1 replica kept", 30*time.Second, func(o observation) bool {
		return noValue(o) && o.specReplicas == 1 && o.rpSpec == ""
	})
	wait("cron-2: 2 replicas", 3*time.Minute, func(o observation) bool {
		return o.specReplicas == 2 && len(o.online) == 2 && strings.Contains(o.ihpaConditions, "ScalingActive=True")
	})
	wait("cron-3: 3 replicas", 90*time.Second, func(o observation) bool {
		return o.specReplicas == 3 && len(o.online) == 3
	})
	wait("after cron-3: NoValidPortraitValue, 3 replicas kept", 90*time.Second, func(o observation) bool {
		return noValue(o) && o.specReplicas == 3 && len(o.online) == 3
	})
	events := ihpaEvents(ctx, ns, ihpa.Name)
	t.Logf("IHPA events:\n%s", strings.Join(events, "\n"))
	for _, want := range []string{
		"create ReplicaProfile with onlineReplicas: 2, cutoffReplicas: 0, standbyReplicas: 0",
		"update ReplicaProfile with onlineReplicas: 2 -> 3, cutoffReplicas: 0 -> 0, standbyReplicas: 0 -> 0",
		"no valid portrait value for now",
	} {
		if !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no event %q", want)
		}
	}
}
