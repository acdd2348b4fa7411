// Package provider serves the custom and external metrics APIs from the discovery registry:
// it renders each request into PromQL with the matching rule, runs it, and converts the samples.
//
// Failure semantics, which autoscalers rely on: a failed Prometheus query is an error, never a
// zero; a missing, NaN or infinite sample is "not found", never a zero or a saturated huge number;
// a request PromQL cannot express is a 400 naming the problem.
package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/promclient"
)

// Registry gives the current discovery result and takes requests for a fresh one.
type Registry interface {
	// Registry returns the current registry, nil before the first discovery.
	Registry() *discovery.Registry
	// TriggerOnDemand asks for a (rate-limited) discovery because an unknown metric was asked for.
	TriggerOnDemand()
}

// Options configure the providers.
type Options struct {
	// QueryTimeout bounds each Prometheus query (default 10s).
	QueryTimeout time.Duration
	// MaxRegexBytes bounds the object-name regex of one query; longer name lists are split
	// into several queries (default promql.DefaultMaxRegexBytes).
	MaxRegexBytes int
	// Concurrency bounds the queries one request runs at once (default 4).
	Concurrency int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// base is what both providers share.
type base struct {
	registry Registry
	querier  promclient.Querier
	mapper   meta.RESTMapper
	opts     Options
	metrics  *Metrics
}

// currentRegistry returns the registry or a 503 before the first discovery: until then nothing
// is known, and "not found" would wrongly tell clients the metric does not exist.
func (b *base) currentRegistry() (*discovery.Registry, error) {
	reg := b.registry.Registry()
	if reg == nil {
		return nil, apierrors.NewServiceUnavailable("metrics discovery has not completed yet")
	}
	return reg, nil
}

// queryVector runs one instant query and returns its vector (a scalar becomes one unlabelled sample).
func (b *base) queryVector(ctx context.Context, query string, at time.Time) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.QueryTimeout)
	defer cancel()
	klog.V(4).InfoS("Querying Prometheus", "query", query)
	value, err := b.querier.Query(ctx, query, at)
	if err != nil {
		return nil, err
	}
	switch v := value.(type) {
	case model.Vector:
		return v, nil
	case *model.Scalar:
		return model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}}, nil
	default:
		return nil, fmt.Errorf("query %s returned a %s: %w", query, value.Type(), errNotVector)
	}
}

// errNotVector marks an answer of the wrong type (e.g. a metricsQuery rendering a range vector):
// Prometheus answered, so it is a configuration error, not an outage.
var errNotVector = errors.New("not a vector")

// fetchError turns a failed Prometheus query into the API error clients see. The message names
// the metric and the cause so that `kubectl describe hpa` shows why the metric is missing.
func fetchError(metric string, err error) error {
	var apiErr *promclient.APIError
	if errors.As(err, &apiErr) || errors.Is(err, errNotVector) {
		return apierrors.NewInternalError(fmt.Errorf("unable to fetch metric %s: %w", metric, err))
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("unable to fetch metric %s: %v", metric, err))
}

// badRequest reports a request that cannot be turned into PromQL (e.g. a selector operator
// Prometheus lacks).
func badRequest(metric string, err error) error {
	return apierrors.NewBadRequest(fmt.Sprintf("metric %s: %v", metric, err))
}

// measured reports whether a sample holds a real measurement: NaN is Prometheus' "no value"
// (0/0 in a ratio) and ±Inf its x/0; neither may be served as a number (an infinity saturates to
// the largest quantity, which sends an HPA to maxReplicas).
func measured(v model.SampleValue) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

var (
	podsResource       = schema.GroupResource{Resource: "pods"}
	namespacesResource = schema.GroupResource{Resource: "namespaces"}
)

// Metrics are the request metrics of the providers.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers the request metrics the providers share.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kapacity_adapter_request_duration_seconds",
		Help:    "Duration of metric requests served by the adapter, by API (custom, external, resource), metric (resource: pods or nodes) and outcome (ok, not_found, bad_request, error).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"api", "metric", "outcome"})}
	reg.MustRegister(m.duration)
	return m
}

// Observe records one request of api (custom, external, resource). Callers pass metric names from
// the registry or "unknown", so the label stays bounded whatever clients ask for.
func (m *Metrics) Observe(api, metric string, began time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		outcome = "not_found"
	case apierrors.IsBadRequest(err):
		outcome = "bad_request"
	default:
		outcome = "error"
	}
	m.duration.WithLabelValues(api, metric, outcome).Observe(time.Since(began).Seconds())
}
