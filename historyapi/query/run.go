package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// errWrongType marks an answer of the wrong type (a template rendering a range vector, say):
// Prometheus answered, so it is a configuration error, not an outage.
var errWrongType = errors.New("unexpected result type")

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

func (e *Engine) instant(ctx context.Context, query string, at time.Time, window *time.Duration) ([]v1alpha1.Series, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	klog.V(4).InfoS("Querying Prometheus", "query", query, "at", at)
	value, err := e.querier.Query(ctx, query, at)
	if err != nil {
		return nil, err
	}
	var vector model.Vector
	switch v := value.(type) {
	case model.Vector:
		vector = v
	case *model.Scalar:
		vector = model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}}
	default:
		return nil, fmt.Errorf("query %s returned a %s: %w", query, value.Type(), errWrongType)
	}
	out := make([]v1alpha1.Series, 0, len(vector))
	for _, s := range vector {
		out = append(out, v1alpha1.Series{
			Labels: labelMap(s.Metric),
			Points: []v1alpha1.Point{{Timestamp: int64(s.Timestamp), Value: v1alpha1.Value(s.Value)}},
			Window: duration(window),
		})
	}
	return out, nil
}

func (e *Engine) rangeQuery(ctx context.Context, query string, r v1alpha1.Range, window *time.Duration) ([]v1alpha1.Series, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.QueryTimeout)
	defer cancel()
	klog.V(4).InfoS("Querying Prometheus over a range", "query", query, "start", r.Start, "end", r.End, "step", r.Step)
	matrix, err := e.querier.QueryRange(ctx, query, promclient.Range{Start: r.Start, End: r.End, Step: r.Step})
	if err != nil {
		return nil, err
	}
	out := make([]v1alpha1.Series, 0, len(matrix))
	for _, s := range matrix {
		points := make([]v1alpha1.Point, len(s.Values))
		for i, p := range s.Values {
			points[i] = v1alpha1.Point{Timestamp: int64(p.Timestamp), Value: v1alpha1.Value(p.Value)}
		}
		out = append(out, v1alpha1.Series{Labels: labelMap(s.Metric), Points: points, Window: duration(window)})
	}
	return out, nil
}

// merge joins the series of several answers by label set, concatenating points in the order of
// the answers, and sorts the result by labels.
func merge(results [][]v1alpha1.Series) []v1alpha1.Series {
	index := map[string]int{}
	out := []v1alpha1.Series{}
	for _, result := range results {
		for _, s := range result {
			key := labelKey(s.Labels)
			if i, ok := index[key]; ok {
				out[i].Points = append(out[i].Points, s.Points...)
				continue
			}
			index[key] = len(out)
			out = append(out, s)
		}
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
