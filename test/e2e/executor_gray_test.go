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

// TestExecutorGrayScaleDownWithCutoff reproduces quick-start 2.2.1.4 (gray-strategy-sample.yaml,
// timing shortened): a cron window holds 5 replicas; when it closes the static value 1 wins and
// the scale-down runs in two 50% batches through Cutoff: 3 online + 2 cutoff, then 1 online + 4
// cutoff, then (after the observation) 1 pod. The Service's ready endpoints follow the online
// pods, and no pod is removed before the last step.
func TestExecutorGrayScaleDownWithCutoff(t *testing.T) {
	runGrayScaleDown(t, false)
}

// TestExecutorGrayResumesAfterManagerRestart stops the manager right after the first batch,
// keeps it down past the batch interval (nothing may change meanwhile), and starts a new one:
// it resumes from the status and the pod labels and finishes the plan without removing more
// pods than it allows.
func TestExecutorGrayResumesAfterManagerRestart(t *testing.T) {
	runGrayScaleDown(t, true)
}

func runGrayScaleDown(t *testing.T, restart bool) {
	ctx := context.Background()
	m := useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	emulateKubeletReadiness(ctx, t, ns)
	createNginx(ctx, t, ns, 1)

	ihpa := loadSample(t, "gray-strategy-sample.yaml")
	ihpa.Namespace = ns
	// Timing only: the cron window is open now and closes at the start of the next minute (or of
	// the one after, to leave at least 30 s at 5 replicas); batches every 10 s, 15 s observation.
	now := time.Now()
	closeIn := 1
	if now.UTC().Second() >= 30 {
		closeIn = 2
	}
	cron := &ihpa.Spec.PortraitProviders[1].Cron.Crons[0]
	cron.Start = fmt.Sprintf("%d * * * *", minuteOfHour(now, 0))
	cron.End = fmt.Sprintf("%d * * * *", minuteOfHour(now, closeIn))
	gs := ihpa.Spec.Behavior.ScaleDown.GrayStrategy
	gs.ChangeIntervalSeconds, gs.ObservationSeconds = 10, 15
	if err := crClient.Create(ctx, ihpa); err != nil {
		t.Fatalf("creating the IHPA: %v", err)
	}
	t.Logf("cron window %q-%q (UTC); now %s", cron.Start, cron.End, now.UTC().Format(time.TimeOnly))

	wait := func(what string, timeout time.Duration, done func(observation) bool, invariant func(observation) error) {
		t.Helper()
		poll.Until(ctx, t, timeout, what, func(ctx context.Context) (string, bool, error) {
			o, err := observe(ctx, ns, ihpa.Name)
			if err != nil {
				return observationError(ctx, err), false, nil
			}
			if invariant != nil {
				if err := invariant(o); err != nil {
					return o.String(), false, err
				}
			}
			return o.String(), done(o), nil
		})
	}
	noPodRemoved := func(o observation) error {
		if o.pods < 5 {
			return fmt.Errorf("a pod was removed before the plan allowed it: %d pods", o.pods)
		}
		return nil
	}

	wait("5 online pods while the cron window is open", 2*time.Minute, func(o observation) bool {
		return o.specReplicas == 5 && len(o.online) == 5 && o.readyEndpoints == 5
	}, nil)
	wait("first batch: 3 online + 2 cutoff (nginx-3, nginx-4), 3 ready endpoints", 2*time.Minute, func(o observation) bool {
		return len(o.online) == 3 && slices.Equal(o.cutoff, []string{"nginx-3", "nginx-4"}) && o.readyEndpoints == 3 && o.specReplicas == 5
	}, noPodRemoved)

	if restart {
		m.Stop()
		t.Log("manager stopped after the first batch")
		// Nothing moves while the manager is down, even past the batch interval.
		stoppedAt := time.Now()
		poll.Until(ctx, t, 30*time.Second, "state held while the manager is down", func(ctx context.Context) (string, bool, error) {
			o, err := observe(ctx, ns, ihpa.Name)
			if err != nil {
				return observationError(ctx, err), false, nil
			}
			if len(o.online) != 3 || len(o.cutoff) != 2 || o.pods != 5 {
				return o.String(), false, fmt.Errorf("state changed while the manager was down")
			}
			return o.String(), time.Since(stoppedAt) > 15*time.Second, nil
		})
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Log("manager restarted")
	}

	wait("second batch: 1 online + 4 cutoff, 1 ready endpoint", time.Minute, func(o observation) bool {
		return slices.Equal(o.online, []string{"nginx-0"}) && slices.Equal(o.cutoff, []string{"nginx-1", "nginx-2", "nginx-3", "nginx-4"}) && o.readyEndpoints == 1
	}, func(o observation) error {
		if err := noPodRemoved(o); err != nil {
			return err
		}
		if len(o.online) < 1 || len(o.cutoff) > 4 {
			return fmt.Errorf("beyond the plan: %d online, %d cutoff", len(o.online), len(o.cutoff))
		}
		return nil
	})
	wait("after the observation: 1 pod", time.Minute, func(o observation) bool {
		return o.specReplicas == 1 && o.pods == 1 && slices.Equal(o.online, []string{"nginx-0"}) && o.readyEndpoints == 1
	}, func(o observation) error {
		if len(o.online) != 1 && o.pods > 1 {
			return fmt.Errorf("the online pods changed during the scale-down: %v", o.online)
		}
		return nil
	})

	events := ihpaEvents(ctx, ns, ihpa.Name)
	t.Logf("IHPA events:\n%s", strings.Join(events, "\n"))
	for _, want := range []string{
		"update ReplicaProfile with onlineReplicas: 5 -> 3, cutoffReplicas: 0 -> 2, standbyReplicas: 0 -> 0",
		"update ReplicaProfile with onlineReplicas: 3 -> 1, cutoffReplicas: 2 -> 4, standbyReplicas: 0 -> 0",
		"update ReplicaProfile with onlineReplicas: 1 -> 1, cutoffReplicas: 4 -> 0, standbyReplicas: 0 -> 0",
	} {
		if !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no event %q", want)
		}
	}
}
