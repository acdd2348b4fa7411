// Package discovery keeps the registry of metrics the adapter serves: it lists the series each
// rule's seriesQuery matches in Prometheus, periodically and on demand, and swaps in a new
// immutable registry when a listing succeeds. A failed listing keeps the previous registry.
//
// Only series names and label names matter to discovery (label values never do), so series are
// folded into one entry per distinct (name, label names) while the answer streams in: memory is
// bounded by the number of metric shapes, not by the number of series.
package discovery

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
)

// Registry is one discovery result. It is immutable.
type Registry struct {
	// Rules are the rules the registry was built from; serve queries with these.
	Rules *ruleset.RuleSet
	// Custom maps each custom metric to the series and rule serving it.
	Custom map[naming.CustomMetricKey]naming.SeriesRef
	// External maps each external metric name to its series and rule.
	External map[string]naming.SeriesRef
	// PodMetrics are the metric names available on pods, which workloads aggregate.
	PodMetrics map[string]naming.SeriesRef
	// Listed is when the listing ran.
	Listed time.Time
}

// SeriesLister is the part of the Prometheus client discovery needs.
type SeriesLister interface {
	Series(ctx context.Context, match string, start, end time.Time, visit promclient.SeriesVisitor) error
}

// Options tune the relist loop.
type Options struct {
	// Interval between two listings (prometheus-adapter's --metrics-relist-interval).
	Interval time.Duration
	// MaxAge is how far back a series must have a sample to be listed (--metrics-max-age).
	MaxAge time.Duration
	// Concurrency bounds the series calls running at once.
	Concurrency int
	// MinOnDemandInterval rate-limits listings requested by lookups of unknown metrics.
	MinOnDemandInterval time.Duration
	// Timeout bounds one listing.
	Timeout time.Duration
}

// Relister runs discovery.
type Relister struct {
	lister  SeriesLister
	rules   func() *ruleset.RuleSet
	opts    Options
	now     func() time.Time
	current atomic.Pointer[Registry]
	wake    chan struct{}
	metrics *metrics

	mu           sync.Mutex
	lastOnDemand time.Time
}

// New returns a relister over the rules rules() returns at each listing.
func New(lister SeriesLister, rules func() *ruleset.RuleSet, opts Options, reg prometheus.Registerer) (*Relister, error) {
	if opts.Interval <= 0 {
		return nil, fmt.Errorf("metrics relist interval must be positive, got %s", opts.Interval)
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = opts.Interval
	}
	if opts.MaxAge < opts.Interval {
		return nil, fmt.Errorf("metrics max age (%s) must not be less than the relist interval (%s): series would vanish between listings", opts.MaxAge, opts.Interval)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.MinOnDemandInterval <= 0 {
		opts.MinOnDemandInterval = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	return &Relister{
		lister: lister, rules: rules, opts: opts, now: time.Now,
		wake: make(chan struct{}, 1), metrics: newMetrics(reg),
	}, nil
}

// Registry returns the current registry, or nil before the first successful listing.
func (r *Relister) Registry() *Registry { return r.current.Load() }

// Trigger asks for a listing now (after a config change), without waiting for it.
func (r *Relister) Trigger() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// TriggerOnDemand asks for a listing because a client asked for a metric the registry does not
// know: it may have appeared since the last listing. Rate-limited, since an HPA asking for a
// metric that will never exist would otherwise list series every sync period.
func (r *Relister) TriggerOnDemand() {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.lastOnDemand) < r.opts.MinOnDemandInterval {
		r.mu.Unlock()
		return
	}
	r.lastOnDemand = now
	r.mu.Unlock()
	r.Trigger()
}

// Run lists at once, then every Interval and whenever triggered, until ctx ends. Failed listings
// are retried with a backoff from one second up to the interval.
func (r *Relister) Run(ctx context.Context) {
	backoff := time.Second
	for {
		wait := r.opts.Interval
		if err := r.Relist(ctx); err != nil {
			klog.ErrorS(err, "Metrics discovery failed; serving the previous registry", "retryIn", backoff)
			wait, backoff = backoff, min(backoff*2, r.opts.Interval)
		} else {
			backoff = time.Second
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Relist runs one listing and installs its registry.
func (r *Relister) Relist(ctx context.Context) (err error) {
	began := r.now()
	defer func() { r.metrics.observe(began, err) }()
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()

	rules := r.rules()
	queries := naming.SeriesQueries(append(slices.Clone(rules.Custom), rules.External...))
	shapes := make(map[string][]naming.Series, len(queries))
	var mu sync.Mutex
	seriesTotal := 0
	group, gctx := errgroup.WithContext(ctx)
	group.SetLimit(r.opts.Concurrency)
	end := r.now()
	start := end.Add(-r.opts.MaxAge)
	for _, query := range queries {
		group.Go(func() error {
			folded, count, err := r.listShapes(gctx, query, start, end)
			if err != nil {
				return fmt.Errorf("listing series %s: %w", query, err)
			}
			mu.Lock()
			shapes[query] = folded
			seriesTotal += count
			mu.Unlock()
			return nil
		})
	}
	if err := group.Wait(); err != nil {
		return err
	}
	reg := &Registry{
		Rules:    rules,
		Custom:   naming.CustomMetrics(rules.Custom, shapes),
		External: naming.ExternalMetrics(rules.External, shapes),
		Listed:   began,
	}
	reg.PodMetrics = podMetrics(reg.Custom)
	r.current.Store(reg)
	r.metrics.seriesListed.Set(float64(seriesTotal))
	r.metrics.customMetrics.Set(float64(len(reg.Custom)))
	r.metrics.externalMetrics.Set(float64(len(reg.External)))
	klog.V(2).InfoS("Metrics discovery done", "series", seriesTotal, "customMetrics", len(reg.Custom),
		"externalMetrics", len(reg.External), "duration", r.now().Sub(began))
	return nil
}

// listShapes streams one series query and folds the series into distinct (name, label names).
func (r *Relister) listShapes(ctx context.Context, query string, start, end time.Time) ([]naming.Series, int, error) {
	seen := map[string]naming.Series{}
	count := 0
	var names []string
	var key strings.Builder
	err := r.lister.Series(ctx, query, start, end, func(name string, labels map[string]string) {
		count++
		names = names[:0]
		for label := range labels {
			names = append(names, label)
		}
		sort.Strings(names)
		key.Reset()
		key.WriteString(name)
		for _, label := range names {
			key.WriteByte(0)
			key.WriteString(label)
		}
		if _, ok := seen[key.String()]; !ok {
			seen[key.String()] = naming.Series{Name: name, LabelNames: slices.Clone(names)}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]naming.Series, 0, len(seen))
	for _, s := range seen {
		out = append(out, s)
	}
	// Deterministic order: when two series give the same metric, the same one always wins.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return strings.Join(out[i].LabelNames, ",") < strings.Join(out[j].LabelNames, ",")
	})
	return out, count, nil
}

var podsResource = schema.GroupResource{Resource: "pods"}

// podMetrics lists the namespaced pod metrics, which workload aggregates are built from.
func podMetrics(custom map[naming.CustomMetricKey]naming.SeriesRef) map[string]naming.SeriesRef {
	out := map[string]naming.SeriesRef{}
	for key, ref := range custom {
		if key.GroupResource == podsResource && key.Namespaced {
			out[key.Metric] = ref
		}
	}
	return out
}
