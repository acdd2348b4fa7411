package query

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// errTooManySamples stops an answer that grows past Options.MaxSamples.
var errTooManySamples = errors.New("too many samples")

// sampleBudget counts the samples of one request across its queries and shards.
type sampleBudget struct {
	limit int64
	used  atomic.Int64
}

func (b *sampleBudget) take(n int) error {
	if b.used.Add(int64(n)) > b.limit {
		return errTooManySamples
	}
	return nil
}

// collector is the promclient.Sink of one query or shard: it converts each series as it is
// decoded and charges its samples to the request's budget, so an answer past the bound is stopped
// while it streams in, holding at most one series beyond the bound.
type collector struct {
	budget *sampleBudget
	window *metav1.Duration
	series []v1alpha1.Series
}

func (c *collector) Series(metric model.Metric, samples []model.SamplePair) error {
	if err := c.budget.take(len(samples)); err != nil {
		return err
	}
	points := make([]v1alpha1.Point, len(samples))
	for i, p := range samples {
		points[i] = v1alpha1.Point{Timestamp: int64(p.Timestamp), Value: v1alpha1.Value(p.Value)}
	}
	c.series = append(c.series, v1alpha1.Series{Labels: labelMap(metric), Points: points, Window: c.window})
	return nil
}

// runAll calls run for 0..n-1 with at most Concurrency calls at once. The first failure cancels
// the others and is returned: no partial answer is ever returned as complete.
func (e *Engine) runAll(ctx context.Context, n int, run func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.Concurrency)
	for i := range n {
		g.Go(func() error { return run(ctx, i) })
	}
	return g.Wait()
}

func (e *Engine) instant(ctx context.Context, query string, at time.Time, window *time.Duration, budget *sampleBudget) ([]v1alpha1.Series, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	klog.V(4).InfoS("Querying Prometheus", "query", query, "at", at)
	c := &collector{budget: budget, window: duration(window)}
	if err := e.querier.QueryInstant(ctx, query, at, c); err != nil {
		return nil, err
	}
	return c.series, nil
}

func (e *Engine) rangeQuery(ctx context.Context, query string, r v1alpha1.Range, window *time.Duration, budget *sampleBudget) ([]v1alpha1.Series, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	klog.V(4).InfoS("Querying Prometheus over a range", "query", query, "start", r.Start, "end", r.End, "step", r.Step)
	c := &collector{budget: budget, window: duration(window)}
	if err := e.querier.QueryRange(ctx, query, promclient.Range{Start: r.Start, End: r.End, Step: r.Step}, c); err != nil {
		return nil, err
	}
	return c.series, nil
}

// merge joins the series of several answers by label set, concatenating points in the order of
// the answers, and sorts the result by labels. Each merged series is allocated once at its final
// size, and each answer is released as it is copied, so merging never needs more than the
// answers' own size again.
func merge(results [][]v1alpha1.Series) []v1alpha1.Series {
	index := map[string]int{}
	var out []v1alpha1.Series
	var sizes []int
	keys := make([][]string, len(results))
	for r, result := range results {
		keys[r] = make([]string, len(result))
		for j, s := range result {
			key := labelKey(s.Labels)
			keys[r][j] = key
			i, ok := index[key]
			if !ok {
				i = len(out)
				index[key] = i
				out = append(out, v1alpha1.Series{Labels: s.Labels, Window: s.Window})
				sizes = append(sizes, 0)
			}
			sizes[i] += len(s.Points)
		}
	}
	for i := range out {
		out[i].Points = make([]v1alpha1.Point, 0, sizes[i])
	}
	for r, result := range results {
		for j, s := range result {
			i := index[keys[r][j]]
			out[i].Points = append(out[i].Points, s.Points...)
		}
		results[r] = nil
	}
	if out == nil {
		out = []v1alpha1.Series{}
	}
	slices.SortFunc(out, func(a, b v1alpha1.Series) int { return strings.Compare(labelKey(a.Labels), labelKey(b.Labels)) })
	return out
}

func labelMap(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

// labelKey is a canonical string of a label set (model.Metric's String, which sorts).
func labelKey(l map[string]string) string {
	m := make(model.Metric, len(l))
	for k, v := range l {
		m[model.LabelName(k)] = model.LabelValue(v)
	}
	return m.String()
}

func duration(d *time.Duration) *metav1.Duration {
	if d == nil {
		return nil
	}
	return &metav1.Duration{Duration: *d}
}
