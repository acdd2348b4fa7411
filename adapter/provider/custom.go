package provider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kapacitystack/kapacity/adapter/discovery"
	"github.com/kapacitystack/kapacity/adapter/metricvalue"
	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
)

// ObjectLister lists the names of the objects of a resource matching a label selector, for
// requests by selector (`/pods/*/metric?labelSelector=...`).
type ObjectLister interface {
	ListNames(ctx context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error)
}

// Custom serves custom.metrics.k8s.io.
type Custom struct {
	base
	objects ObjectLister
}

var _ cmprovider.CustomMetricsProvider = (*Custom)(nil)

// NewCustom returns the custom metrics provider.
func NewCustom(registry Registry, querier promclient.Querier, mapper meta.RESTMapper, objects ObjectLister, metrics *Metrics, opts Options) *Custom {
	opts.setDefaults()
	return &Custom{base: base{registry: registry, querier: querier, mapper: mapper, opts: opts, metrics: metrics}, objects: objects}
}

// ListAllMetrics lists every discovered metric, plus the workload aggregates of every pod metric.
func (c *Custom) ListAllMetrics() []cmprovider.CustomMetricInfo {
	reg := c.registry.Registry()
	if reg == nil {
		return nil
	}
	out := make([]cmprovider.CustomMetricInfo, 0, len(reg.Custom)+len(reg.PodMetrics)*len(reg.Rules.Workloads))
	for key := range reg.Custom {
		out = append(out, cmprovider.CustomMetricInfo{GroupResource: key.GroupResource, Namespaced: key.Namespaced, Metric: key.Metric})
	}
	for gr := range reg.Rules.Workloads {
		for metric := range reg.PodMetrics {
			key := naming.CustomMetricKey{GroupResource: gr, Namespaced: true, Metric: metric}
			if _, direct := reg.Custom[key]; !direct {
				out = append(out, cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: true, Metric: metric})
			}
		}
	}
	return out
}

// GetMetricByName returns the metric of one object.
func (c *Custom) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (_ *custom_metrics.MetricValue, err error) {
	began := c.opts.Now()
	metricLabel := "unknown"
	defer func() { c.metrics.Observe("custom", metricLabel, began, err) }()

	req, err := c.resolve(info)
	if err != nil {
		return nil, err
	}
	if req.ref != nil || req.workload != nil {
		metricLabel = info.Metric
	}
	values, err := c.values(ctx, req, name.Namespace, []string{name.Name}, metricSelector, began)
	if err != nil {
		return nil, err
	}
	value, ok := values[name.Name]
	if !ok {
		return nil, cmprovider.NewMetricNotFoundForError(req.gr, info.Metric, name.Name)
	}
	return c.metricValue(req, name.Namespace, name.Name, metricSelector, value, began)
}

// GetMetricBySelector returns the metric of every object matching selector that has a sample.
func (c *Custom) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (_ *custom_metrics.MetricValueList, err error) {
	began := c.opts.Now()
	metricLabel := "unknown"
	defer func() { c.metrics.Observe("custom", metricLabel, began, err) }()

	req, err := c.resolve(info)
	if err != nil {
		return nil, err
	}
	if req.ref != nil || req.workload != nil {
		metricLabel = info.Metric
	}
	names, err := c.objects.ListNames(ctx, req.gvr, namespace, selector)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("unable to list %s matching %q: %w", req.gr, selector, err))
	}
	if len(names) == 0 {
		return nil, cmprovider.NewMetricNotFoundForSelectorError(req.gr, info.Metric, "*", selector)
	}
	values, err := c.values(ctx, req, namespace, names, metricSelector, began)
	if err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{}
	for _, name := range names {
		value, ok := values[name]
		if !ok {
			continue
		}
		mv, err := c.metricValue(req, namespace, name, metricSelector, value, began)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *mv)
	}
	return list, nil
}

// customRequest is a resolved request: the resource and either a discovered series or a
// workload aggregate over pod series.
type customRequest struct {
	reg      *discovery.Registry
	gr       schema.GroupResource
	gvr      schema.GroupVersionResource
	metric   string
	ref      *naming.SeriesRef // direct metric
	workload *workloadAggregate
}

func (c *Custom) resolve(info cmprovider.CustomMetricInfo) (*customRequest, error) {
	reg, err := c.currentRegistry()
	if err != nil {
		return nil, err
	}
	gvr, err := c.mapper.ResourceFor(info.GroupResource.WithVersion(""))
	if err != nil {
		return nil, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	req := &customRequest{reg: reg, gr: gvr.GroupResource(), gvr: gvr, metric: info.Metric}
	key := naming.CustomMetricKey{GroupResource: req.gr, Namespaced: info.Namespaced, Metric: info.Metric}
	if ref, ok := reg.Custom[key]; ok {
		req.ref = &ref
		return req, nil
	}
	if gk, ok := reg.Rules.Workloads[req.gr]; ok && info.Namespaced {
		if ref, ok := reg.PodMetrics[info.Metric]; ok {
			req.workload = &workloadAggregate{kind: gk, pods: ref, builder: reg.Rules.Resources}
			return req, nil
		}
	}
	c.registry.TriggerOnDemand()
	return nil, cmprovider.NewMetricNotFoundError(req.gr, info.Metric)
}

// values returns the metric value of each named object that has a measured sample.
func (c *Custom) values(ctx context.Context, req *customRequest, namespace string, names []string, metricSelector labels.Selector, at time.Time) (map[string]model.SampleValue, error) {
	if req.workload != nil {
		return c.workloadValues(ctx, req, namespace, names, metricSelector, at)
	}
	label, err := req.ref.Rule.Resources.LabelForResource(req.gr)
	if err != nil {
		return nil, badRequest(req.metric, err)
	}
	queries, err := req.ref.Rule.Query.BuildBatches(naming.ObjectQuery{
		Series: req.ref.SeriesName, Resource: req.gr, Namespace: namespace,
		MetricSelector: metricSelector, Names: names,
	}, c.opts.MaxRegexBytes)
	if err != nil {
		return nil, badRequest(req.metric, err)
	}
	values := make(map[string]model.SampleValue, len(names))
	var mu sync.Mutex
	err = c.runAll(ctx, queries, at, func(vector model.Vector) {
		mu.Lock()
		defer mu.Unlock()
		for _, sample := range vector {
			if measured(sample.Value) {
				values[string(sample.Metric[model.LabelName(label)])] = sample.Value
			}
		}
	})
	if err != nil {
		return nil, fetchError(req.metric, err)
	}
	return values, nil
}

// runAll runs queries with bounded concurrency and hands each vector to collect.
func (b *base) runAll(ctx context.Context, queries []string, at time.Time, collect func(model.Vector)) error {
	sem := make(chan struct{}, b.opts.Concurrency)
	errs := make(chan error, len(queries))
	var wg sync.WaitGroup
	for _, query := range queries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			vector, err := b.queryVector(ctx, query, at)
			if err != nil {
				errs <- err
				return
			}
			collect(vector)
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when every query succeeded; any failure fails the request
}

func (c *Custom) metricValue(req *customRequest, namespace, name string, metricSelector labels.Selector, value model.SampleValue, at time.Time) (*custom_metrics.MetricValue, error) {
	gvk, err := c.mapper.KindFor(req.gvr)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("unable to find the kind of %s: %w", req.gr, err))
	}
	mv := &custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: name, Namespace: namespace,
		},
		Metric:    custom_metrics.MetricIdentifier{Name: req.metric},
		Timestamp: metav1.NewTime(at),
		Value:     metricvalue.Custom(float64(value)),
	}
	if metricSelector != nil && !metricSelector.Empty() {
		sel, err := metav1.ParseToLabelSelector(metricSelector.String())
		if err != nil {
			return nil, badRequest(req.metric, err)
		}
		mv.Metric.Selector = sel
	}
	return mv, nil
}
