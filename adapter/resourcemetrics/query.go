package resourcemetrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/resourcequery"
)

// query is one Prometheus query of a call and, after run, its outcome.
type query struct {
	resource resourcequery.ResourceName
	text     string
	result   model.Vector
	err      error
}

// run executes the queries concurrently, at most MaxConcurrency at a time,
// all evaluated at the same instant so that CPU and memory line up. Queries
// that already carry an error are not run.
func (p *Provider) run(ctx context.Context, at time.Time, queries []*query) {
	sem := make(chan struct{}, p.opts.MaxConcurrency)
	var wg sync.WaitGroup
	for _, q := range queries {
		if q.err != nil {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				q.err = fmt.Errorf("%s query not run: %w", q.resource, context.Cause(ctx))
				return
			}
			defer func() { <-sem }()
			q.result, q.err = p.vector(ctx, q, at)
		})
	}
	wg.Wait()
}

func (p *Provider) vector(ctx context.Context, q *query, at time.Time) (model.Vector, error) {
	v, err := p.querier.Query(ctx, q.text, at)
	if err != nil {
		// The query text is left out of the error: with hundreds of pod
		// names it would drown the message kubectl shows.
		klog.V(4).ErrorS(err, "Resource metrics query failed", "query", q.text)
		return nil, fmt.Errorf("%s query: %w", q.resource, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		typ := "nothing"
		if v != nil {
			typ = v.Type().String()
		}
		return nil, fmt.Errorf("%s query: got %s, want a vector (check resourceRules.%s)", q.resource, typ, q.resource)
	}
	return vec, nil
}
