// Package query answers history queries: it renders each of the seven query kinds into PromQL with
// the adapter's own builders (resourcequery for pod, container and workload usage; the discovery
// registry's rules for object and external metrics), runs it at now or over a range, and returns
// the series. Long ranges are split into shards below Prometheus' 11,000-point limit, run
// concurrently with a bound, and merged; any failed shard fails the query.
//
// Errors are Kubernetes API errors (apierrors), so both front ends map them the same way: a
// request that cannot be answered as asked is a 400 naming the problem, an unknown metric a 404,
// Prometheus unreachable a 503, Prometheus rejecting the query a 500.
package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/resourcequery"
	"github.com/kapacitystack/kapacity/adapter/ruleset"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// PrometheusMaxPoints is the most points per series Prometheus returns from one range query.
const PrometheusMaxPoints = 11000

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// QueryTimeout bounds each Prometheus call, one shard each (default 30s).
	QueryTimeout time.Duration
	// MaxRegexBytes bounds the pod- or object-name regex of one query (see promql.NameMatchers).
	MaxRegexBytes int
	// ShardPoints is the most points per series of one shard (default and maximum
	// PrometheusMaxPoints).
	ShardPoints int
	// Concurrency bounds the Prometheus calls of one query running at once (default 4).
	Concurrency int
	// MaxRange refuses ranges longer than this (0: no limit).
	MaxRange time.Duration
	// MaxPoints refuses ranges with more points per series than this (default 200,000).
	MaxPoints int64
	// MaxStep refuses steps longer than this (default DefaultMaxStep).
	MaxStep time.Duration
	// MaxSamples bounds the samples of one answer, over all its series (default
	// DefaultMaxSamples): answers are decoded as they stream in and stopped past it, so the
	// memory of one request is bounded whatever it matches.
	MaxSamples int64
	// MaxConcurrent bounds the queries answered at once (default DefaultMaxConcurrent); others wait
	// for a turn until their context ends, then get a 429. With MaxSamples it bounds the memory
	// of all history answers together.
	MaxConcurrent int
	// Authorizer decides, for the caller in a query's context (request.UserFrom), whether it may
	// read what the query reads. Required: without it every query is refused.
	Authorizer authorizer.Authorizer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultMaxPoints is the default of Options.MaxPoints: 139 days at one-minute resolution.
const DefaultMaxPoints = 200_000

// DefaultMaxSamples is the default of Options.MaxSamples: a week at one-minute resolution for
// 49 series (8 MiB of points; BenchmarkHistoryAnswerMemory measures the heap an answer at the
// limit takes to serve).
const DefaultMaxSamples = 500_000

// DefaultMaxConcurrent is the default of Options.MaxConcurrent.
const DefaultMaxConcurrent = 4

// DefaultMaxStep is the default of Options.MaxStep: a month. A longer step answers nothing a
// forecaster or a dashboard can use, and only tests the arithmetic.
const DefaultMaxStep = 31 * 24 * time.Hour

// MinStep is the shortest step: Prometheus' timestamps are milliseconds, so a shorter step would
// give several points the same timestamp.
const MinStep = time.Millisecond

func (o *Options) setDefaults() {
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.ShardPoints <= 0 || o.ShardPoints > PrometheusMaxPoints {
		o.ShardPoints = PrometheusMaxPoints
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.MaxStep <= 0 {
		o.MaxStep = DefaultMaxStep
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Registry is the series discovery the engine plans object and external metric queries with (the
// adapter's discovery loop).
type Registry interface {
	// Registry returns the current registry, nil before the first discovery.
	Registry() *discovery.Registry
	// TriggerOnDemand asks for a (rate-limited) discovery because an unknown metric was asked for.
	TriggerOnDemand()
}

// ObjectLister lists the names of the objects of a resource that a label selector matches.
type ObjectLister interface {
	ListNames(ctx context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error)
}

// Observer records the duration and outcome of each query (api "history", metric the query kind).
type Observer interface {
	Observe(api, metric string, began time.Time, err error)
}

// Engine answers history queries. It is safe for concurrent use.
type Engine struct {
	rules    func() *ruleset.RuleSet
	registry Registry
	querier  promclient.Streamer
	mapper   meta.RESTMapper
	objects  ObjectLister
	metrics  Observer
	opts     Options
	turns    chan struct{} // MaxConcurrent slots
}

// New returns an engine. rules gives the current rules (resource and workload queries, which need
// no discovery); registry the discovered object and external metrics; objects lists pods and
// objects asked for by label selector. metrics may be nil.
func New(rules func() *ruleset.RuleSet, registry Registry, querier promclient.Streamer, mapper meta.RESTMapper,
	objects ObjectLister, metrics Observer, opts Options) *Engine {
	opts.setDefaults()
	if metrics == nil {
		metrics = noObserver{}
	}
	return &Engine{rules: rules, registry: registry, querier: querier, mapper: mapper, objects: objects, metrics: metrics, opts: opts,
		turns: make(chan struct{}, opts.MaxConcurrent)}
}

// Plan is a rendered query: the PromQL to run (several when a pod or object list is split into
// batches; their series are disjoint) and the window to report.
type Plan struct {
	Queries []string
	Window  *time.Duration
}

// Latest runs q at now: one point per series.
func (e *Engine) Latest(ctx context.Context, q v1alpha1.Query) (_ []v1alpha1.Series, err error) {
	began := time.Now()
	defer func() { e.metrics.Observe("history", string(q.Kind), began, err) }()
	reg := e.registry.Registry()
	if err := e.authorize(ctx, q, reg); err != nil {
		return nil, err
	}
	plan, err := e.plan(ctx, q, reg)
	if err != nil {
		return nil, err
	}
	release, err := e.waitTurn(ctx, q)
	if err != nil {
		return nil, err
	}
	defer release()
	at := e.opts.Now()
	budget := &sampleBudget{limit: e.opts.MaxSamples}
	results := make([][]v1alpha1.Series, len(plan.Queries))
	err = e.runAll(ctx, len(plan.Queries), func(ctx context.Context, i int) error {
		series, err := e.instant(ctx, plan.Queries[i], at, plan.Window, budget)
		if err != nil {
			return fmt.Errorf("query %d of %d: %w", i+1, len(plan.Queries), err)
		}
		results[i] = series
		return nil
	})
	if err != nil {
		return nil, e.fetchError(q, err)
	}
	return merge(results), nil
}

// Range runs q over r, sharded.
func (e *Engine) Range(ctx context.Context, q v1alpha1.Query, r v1alpha1.Range) (_ []v1alpha1.Series, err error) {
	began := time.Now()
	defer func() { e.metrics.Observe("history", string(q.Kind), began, err) }()
	if err := e.checkRange(r); err != nil {
		return nil, err
	}
	reg := e.registry.Registry()
	if err := e.authorize(ctx, q, reg); err != nil {
		return nil, err
	}
	plan, err := e.plan(ctx, q, reg)
	if err != nil {
		return nil, err
	}
	release, err := e.waitTurn(ctx, q)
	if err != nil {
		return nil, err
	}
	defer release()
	shards := Shards(r, e.opts.ShardPoints)
	// One result slot per (query, shard), in shard order within each query, so that merging
	// concatenates each series' points in time order.
	// A range whose one series would already exceed the budget is refused without reading.
	if r.Points() > e.opts.MaxSamples {
		return nil, e.fetchError(q, errTooManySamples)
	}
	budget := &sampleBudget{limit: e.opts.MaxSamples}
	results := make([][]v1alpha1.Series, len(plan.Queries)*len(shards))
	err = e.runAll(ctx, len(results), func(ctx context.Context, i int) error {
		query, shard := plan.Queries[i/len(shards)], shards[i%len(shards)]
		series, err := e.rangeQuery(ctx, query, shard, plan.Window, budget)
		if err != nil {
			return fmt.Errorf("shard %d of %d [%s, %s]: %w", i%len(shards)+1, len(shards),
				shard.Start.UTC().Format(time.RFC3339), shard.End.UTC().Format(time.RFC3339), err)
		}
		results[i] = series
		return nil
	})
	if err != nil {
		return nil, e.fetchError(q, err)
	}
	return merge(results), nil
}

// checkRange refuses ranges that cannot be answered, or only at a cost no caller needs; every
// number in it is untrusted. Once it passes, End-Start is an exact time.Duration and the range has
// at most MaxPoints points, so the sharding arithmetic cannot overflow.
// waitTurn waits until fewer than MaxConcurrent queries run, or ctx ends (a 429).
func (e *Engine) waitTurn(ctx context.Context, q v1alpha1.Query) (release func(), err error) {
	select {
	case e.turns <- struct{}{}:
		return func() { <-e.turns }, nil
	case <-ctx.Done():
		return nil, apierrors.NewTooManyRequests(fmt.Sprintf("%s query: %d history queries were running for as long as it could wait "+
			"(--history-max-concurrent-queries)", q.Kind, e.opts.MaxConcurrent), 1)
	}
}

func (e *Engine) checkRange(r v1alpha1.Range) error {
	const layout = time.RFC3339Nano
	switch {
	case r.Step <= 0:
		return apierrors.NewBadRequest(fmt.Sprintf("step must be positive, got %s", r.Step))
	case r.Step < MinStep:
		return apierrors.NewBadRequest(fmt.Sprintf("step of %s is shorter than %s, the resolution of Prometheus timestamps", r.Step, MinStep))
	case r.Step > e.opts.MaxStep:
		return apierrors.NewBadRequest(fmt.Sprintf("step of %s is longer than the limit of %s", r.Step, e.opts.MaxStep))
	case r.Start.IsZero() || r.End.IsZero():
		return apierrors.NewBadRequest("a range needs both start and end")
	case !v1alpha1.ValidTime(r.Start) || !v1alpha1.ValidTime(r.End):
		return apierrors.NewBadRequest(fmt.Sprintf("start %s or end %s is outside the years 0001 to 9999", r.Start.UTC().Format(layout), r.End.UTC().Format(layout)))
	case r.End.Before(r.Start):
		return apierrors.NewBadRequest(fmt.Sprintf("end %s is before start %s", r.End.UTC().Format(time.RFC3339), r.Start.UTC().Format(time.RFC3339)))
	case !r.Start.Add(r.End.Sub(r.Start)).Equal(r.End):
		// Sub saturates: the span does not fit a time.Duration.
		return apierrors.NewBadRequest(fmt.Sprintf("range from %s to %s is longer than 292 years", r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339)))
	case e.opts.MaxRange > 0 && r.End.Sub(r.Start) > e.opts.MaxRange:
		return apierrors.NewBadRequest(fmt.Sprintf("range of %s is longer than the limit of %s", r.End.Sub(r.Start), e.opts.MaxRange))
	}
	// Computed without Range.Points' int64 conversion first, which a tiny step could overflow.
	if points := r.End.Sub(r.Start)/r.Step + 1; points > time.Duration(e.opts.MaxPoints) || points <= 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("range of %s at step %s has %d points per series, more than the limit of %d; use a larger step or a shorter range",
			r.End.Sub(r.Start), r.Step, int64(points), e.opts.MaxPoints))
	}
	return nil
}

// Shards splits r into consecutive ranges of at most maxPoints points each, on r's step grid, so
// that together they hold exactly r's points. Offsets are counted in points and multiplied by the
// step only up to the range's own span, so no product overflows whatever the step; an invalid range
// (no step, end before start, a span beyond a time.Duration) has no shards.
func Shards(r v1alpha1.Range, maxPoints int) []v1alpha1.Range {
	span := r.End.Sub(r.Start)
	if r.Step <= 0 || span < 0 || !r.Start.Add(span).Equal(r.End) {
		return nil
	}
	if maxPoints < 1 {
		maxPoints = 1
	}
	points := int64(span/r.Step) + 1 // ≤ MaxInt64/1 + 1 only for a 1ns step over 292 years: checkRange refuses it
	if points <= 0 {
		return nil
	}
	per := int64(maxPoints)
	out := make([]v1alpha1.Range, 0, (points+per-1)/per)
	for first := int64(0); first < points; first += per {
		last := min(first+per-1, points-1)
		shard := v1alpha1.Range{Start: r.Start.Add(time.Duration(first) * r.Step), End: r.Start.Add(time.Duration(last) * r.Step), Step: r.Step}
		if last == points-1 {
			shard.End = r.End // keep an end off the grid as asked
		}
		out = append(out, shard)
	}
	return out
}

// Plan renders q into PromQL without running it (nor authorizing it: Latest and Range do).
func (e *Engine) Plan(ctx context.Context, q v1alpha1.Query) (*Plan, error) {
	return e.plan(ctx, q, e.registry.Registry())
}

// plan renders q with reg, the registry snapshot its authorization was decided on.
func (e *Engine) plan(ctx context.Context, q v1alpha1.Query, reg *discovery.Registry) (*Plan, error) {
	switch q.Kind {
	case v1alpha1.PodResource, v1alpha1.ContainerResource:
		return e.podPlan(ctx, q)
	case v1alpha1.WorkloadResource, v1alpha1.WorkloadContainerResource:
		return e.workloadPlan(q)
	case v1alpha1.Object:
		return e.objectPlan(ctx, q, reg)
	case v1alpha1.External, v1alpha1.WorkloadExternal:
		return e.externalPlan(q, reg)
	}
	return nil, apierrors.NewBadRequest(fmt.Sprintf("unknown query kind %q", q.Kind))
}

// resources returns the resource-query builder, or a 400 when the config has no resourceRules.
func (e *Engine) resources() (*resourcequery.Builder, error) {
	rs := e.rules()
	if rs == nil || rs.Resources == nil {
		return nil, apierrors.NewBadRequest("resource queries need resourceRules in the adapter's config")
	}
	return rs.Resources, nil
}

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

func (e *Engine) podPlan(ctx context.Context, q v1alpha1.Query) (*Plan, error) {
	b, err := e.resources()
	if err != nil {
		return nil, err
	}
	if q.Namespace == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s queries need a namespace", q.Kind))
	}
	resource := resourcequery.ResourceName(q.Resource)
	if _, err := b.ContainerLabel(resource); err != nil {
		return nil, badRequest(q, err)
	}
	if q.Kind == v1alpha1.ContainerResource && q.Container == "" {
		return nil, apierrors.NewBadRequest("ContainerResource queries need a container name")
	}
	names, err := e.names(ctx, podsGVR, q)
	if err != nil || len(names) == 0 {
		return &Plan{Window: window(b)}, err
	}
	var queries []string
	if q.Kind == v1alpha1.PodResource {
		queries, err = b.PodResource(resource, q.Namespace, names, e.opts.MaxRegexBytes)
	} else {
		queries, err = b.ContainerResource(resource, q.Namespace, q.Container, names, e.opts.MaxRegexBytes)
	}
	if err != nil {
		return nil, badRequest(q, err)
	}
	return &Plan{Queries: queries, Window: window(b)}, nil
}

// names returns [q.Name], or the names of the objects q.Selector matches (none is no error: the
// answer is then empty).
func (e *Engine) names(ctx context.Context, gvr schema.GroupVersionResource, q v1alpha1.Query) ([]string, error) {
	if q.Name != "" {
		return []string{q.Name}, nil
	}
	selector, err := labels.Parse(q.Selector)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("label selector %q: %v", q.Selector, err))
	}
	names, err := e.objects.ListNames(ctx, gvr, q.Namespace, selector)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing %s matching %q in namespace %q: %w", gvr.GroupResource(), q.Selector, q.Namespace, err))
	}
	return names, nil
}

func (e *Engine) workloadPlan(q v1alpha1.Query) (*Plan, error) {
	b, err := e.resources()
	if err != nil {
		return nil, err
	}
	if q.Namespace == "" || q.Name == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s queries need the workload's namespace and name", q.Kind))
	}
	if q.Kind == v1alpha1.WorkloadContainerResource && q.Container == "" {
		return nil, apierrors.NewBadRequest("WorkloadContainerResource queries need a container name")
	}
	if q.Kind == v1alpha1.WorkloadResource && q.Container != "" {
		return nil, apierrors.NewBadRequest("WorkloadResource queries take no container; use WorkloadContainerResource")
	}
	query, err := b.WorkloadResource(resourcequery.WorkloadQuery{
		GroupKind: q.Workload, Namespace: q.Namespace, Name: q.Name,
		Resource: resourcequery.ResourceName(q.Resource), Container: q.Container, ReadyPodsOnly: q.ReadyPodsOnly,
	})
	if err != nil {
		return nil, badRequest(q, err)
	}
	return &Plan{Queries: []string{query}, Window: window(b)}, nil
}

func (e *Engine) objectPlan(ctx context.Context, q v1alpha1.Query, reg *discovery.Registry) (*Plan, error) {
	if reg == nil {
		return nil, errNoRegistry()
	}
	if q.Metric == "" {
		return nil, apierrors.NewBadRequest("Object queries need a metric name")
	}
	if q.Workload.Kind == "" {
		return nil, apierrors.NewBadRequest("Object queries need the object's kind")
	}
	mapping, err := e.mapper.RESTMapping(q.Workload)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unknown object kind %q: %v", q.Workload.String(), err))
	}
	gr := mapping.Resource.GroupResource()
	namespace := q.Namespace
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s is namespaced: the query needs a namespace", gr))
		}
	} else {
		namespace = ""
	}
	ref, ok := reg.Custom[naming.CustomMetricKey{GroupResource: gr, Namespaced: naming.IsNamespacedResource(gr), Metric: q.Metric}]
	if !ok {
		e.registry.TriggerOnDemand()
		return nil, apierrors.NewNotFound(gr, q.Metric+" (no such metric discovered for "+gr.String()+")")
	}
	selector, err := metricSelector(q)
	if err != nil {
		return nil, err
	}
	q.Namespace = namespace
	names, err := e.names(ctx, mapping.Resource, q)
	if err != nil || len(names) == 0 {
		return &Plan{}, err
	}
	queries, err := ref.Rule.Query.BuildBatches(naming.ObjectQuery{
		Series: ref.SeriesName, Resource: gr, Namespace: namespace, MetricSelector: selector, Names: names,
	}, e.opts.MaxRegexBytes)
	if err != nil {
		return nil, badRequest(q, err)
	}
	return &Plan{Queries: queries}, nil
}

func (e *Engine) externalPlan(q v1alpha1.Query, reg *discovery.Registry) (*Plan, error) {
	if reg == nil {
		return nil, errNoRegistry()
	}
	if q.Metric == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s queries need a metric name", q.Kind))
	}
	ref, ok := reg.External[q.Metric]
	if !ok {
		e.registry.TriggerOnDemand()
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "metrics"}, q.Metric)
	}
	selector, err := metricSelector(q)
	if err != nil {
		return nil, err
	}
	req := naming.ExternalQuery{Series: ref.SeriesName, Namespace: q.Namespace, MetricSelector: selector}
	if q.Kind == v1alpha1.WorkloadExternal {
		if q.Namespace == "" || q.Name == "" {
			return nil, apierrors.NewBadRequest("WorkloadExternal queries need the workload's namespace and name")
		}
		b := reg.Rules.Resources
		if b == nil {
			return nil, apierrors.NewBadRequest("workload queries need resourceRules and workloadPodNamePatterns in the adapter's config")
		}
		podMatcher, err := b.PodNameMatcher(q.Workload, q.Name)
		if err != nil {
			return nil, badRequest(q, err)
		}
		req.ExtraMatchers = append(req.ExtraMatchers, podMatcher)
		// A workload's pods are in its namespace only, whatever the rule's namespaced says.
		req.KeepNamespace = true
	}
	query, err := ref.Rule.Query.BuildExternal(req)
	if err != nil {
		return nil, badRequest(q, err)
	}
	return &Plan{Queries: []string{query}}, nil
}

func errNoRegistry() error {
	return apierrors.NewServiceUnavailable("metrics discovery has not completed yet")
}

func metricSelector(q v1alpha1.Query) (labels.Selector, error) {
	selector, err := labels.Parse(q.MetricSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("metric selector %q: %v", q.MetricSelector, err))
	}
	return selector, nil
}

func window(b *resourcequery.Builder) *time.Duration {
	w := b.Window()
	return &w
}

func badRequest(q v1alpha1.Query, err error) error {
	return apierrors.NewBadRequest(fmt.Sprintf("%s query: %v", q.Kind, err))
}

// fetchError maps a failed Prometheus call as the metrics APIs do: Prometheus answering with an
// error (bad query, too many points, its own timeout) is a 500; not reaching it a 503; an answer
// past the sample bound a 400 naming the bound.
func (e *Engine) fetchError(q v1alpha1.Query, err error) error {
	if errors.Is(err, errTooManySamples) {
		return apierrors.NewBadRequest(fmt.Sprintf("%s query: the answer holds more than %d samples, the limit per request (--history-max-samples); "+
			"ask for fewer series (a name instead of a selector, a narrower selector), a shorter range or a larger step", q.Kind, e.opts.MaxSamples))
	}
	if errors.Is(err, context.Canceled) {
		return apierrors.NewTimeoutError(fmt.Sprintf("%s query canceled: %v", q.Kind, err), 0)
	}
	var apiErr *promclient.APIError
	if errors.As(err, &apiErr) || errors.Is(err, promclient.ErrWrongType) {
		return apierrors.NewInternalError(fmt.Errorf("%s query failed: %w", q.Kind, err))
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("%s query failed: %v", q.Kind, err))
}

type noObserver struct{}

func (noObserver) Observe(string, string, time.Time, error) {}
