package query

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// TestRangeWithStepsNearTheOverflow: steps so long that a shard's span (step × 10,999) overflows a
// time.Duration used to send the sharding loop backwards forever, allocating until the adapter was
// killed. Every such query returns, with the range's points exactly.
func TestRangeWithStepsNearTheOverflow(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	q := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}
	for _, tc := range []struct {
		name       string
		r          v1alpha1.Range
		wantPoints int
	}{
		{"start = end, step 1,000,000 s (the report)", v1alpha1.Range{Start: start, End: start, Step: 1_000_000 * time.Second}, 1},
		{"step 9.7 days, just past the overflow", v1alpha1.Range{Start: start, End: start.Add(30 * 24 * time.Hour), Step: 233 * time.Hour}, 4},
		{"step 31 days over 20 years", v1alpha1.Range{Start: start, End: start.Add(20 * 365 * 24 * time.Hour), Step: 31 * 24 * time.Hour}, 236},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			type answer struct {
				series []v1alpha1.Series
				err    error
			}
			done := make(chan answer, 1)
			go func() {
				s, err := f.engine.Range(adminCtx(), q, tc.r)
				done <- answer{s, err}
			}()
			select {
			case a := <-done:
				if a.err != nil {
					t.Fatal(a.err)
				}
				if len(a.series) != 1 || len(a.series[0].Points) != tc.wantPoints {
					t.Fatalf("answer %+v, want one series of %d points", a.series, tc.wantPoints)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the range query did not return within 10s")
			}
		})
	}
}

// TestSampleCap: an answer is stopped while it streams in once it holds more samples than
// MaxSamples, over all its series and shards, with a 400 naming the limit; an answer at the limit
// is served whole; a range whose single series exceeds the limit is refused before reading.
func TestSampleCap(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	q := v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: "prod", Selector: "app=web", Resource: "cpu"}
	hour := v1alpha1.Range{Start: start, End: start.Add(59 * time.Minute), Step: time.Minute} // 60 points
	tests := []struct {
		name       string
		series     int
		r          v1alpha1.Range
		maxSamples int64
		wantErr    bool
		maxQueried int
	}{
		{name: "at the limit", series: 10, r: hour, maxSamples: 600},
		{name: "one series past the limit", series: 11, r: hour, maxSamples: 600, wantErr: true, maxQueried: 22},
		{name: "far past the limit, sharded", series: 1000, r: hour, maxSamples: 600, wantErr: true, maxQueried: 22}, // 600/30 + one per shard in flight
		{name: "one series longer than the limit", series: 1, r: v1alpha1.Range{Start: start, End: start.Add(24 * time.Hour), Step: time.Minute}, maxSamples: 600, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{MaxSamples: tc.maxSamples, ShardPoints: 30, Concurrency: 2})
			f.querier.seriesPerAnswer = tc.series
			got, err := f.engine.Range(adminCtx(), q, tc.r)
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				total := 0
				for _, s := range got {
					total += len(s.Points)
				}
				if len(got) != tc.series || int64(total) != tc.maxSamples {
					t.Fatalf("%d series, %d samples; want %d, %d", len(got), total, tc.series, tc.maxSamples)
				}
				return
			}
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d samples, the limit per request (--history-max-samples)", tc.maxSamples)) {
				t.Fatalf("error = %v, want a 400 naming the limit", err)
			}
			if got := f.querier.streamed.Load(); got > int64(tc.maxQueried) {
				t.Errorf("%d series decoded before stopping, want at most %d", got, tc.maxQueried)
			}
		})
	}
}

// TestConcurrentQueriesWaitForATurn: past MaxConcurrent, a query waits while its context lasts,
// then gets a 429 naming the limit; once a turn frees, queries run again.
func TestConcurrentQueriesWaitForATurn(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrent: 1})
	f.querier.block = make(chan struct{})
	start := time.Unix(1_700_000_000, 0)
	r := v1alpha1.Range{Start: start, End: start.Add(time.Hour), Step: time.Minute}
	q := v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: deployment, Namespace: "prod", Name: "web", Resource: "cpu"}
	first := make(chan error, 1)
	go func() {
		_, err := f.engine.Range(adminCtx(), q, r)
		first <- err
	}()
	for f.querier.inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(adminCtx(), 50*time.Millisecond)
	defer cancel()
	_, err := f.engine.Range(ctx, q, r)
	if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "--history-max-concurrent-queries") {
		t.Fatalf("error = %v, want a 429 naming the limit", err)
	}
	close(f.querier.block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Range(adminCtx(), q, r); err != nil {
		t.Fatalf("after the turn freed: %v", err)
	}
}
