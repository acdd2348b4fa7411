// Package resourcemetrics serves metrics.k8s.io (kubectl top, the HPA's
// Resource metrics) from Prometheus: it implements metrics-server's
// api.MetricsGetter on top of the resourceRules queries.
//
// It follows prometheus-adapter's resource provider, with deliberate changes
// that all serve one rule our users rely on: never report a zero that was not
// measured, and never hide a Prometheus failure behind an empty answer.
//
//   - Partial containers are omitted, not zero-filled. Upstream reports 0 for
//     the resource a container has no sample of; a usage of 0 is
//     indistinguishable from an idle container and makes the HPA scale down.
//     A container is reported only with both a CPU and a memory sample, and
//     a pod only when at least one of its containers is. (A pod therefore
//     needs >= 1 CPU and >= 1 memory sample, as upstream.)
//   - Non-finite samples (NaN, ±Inf) are skipped, not turned into 0: they are
//     the result of a division by zero or missing data, not a measurement.
//   - Negative CPU is clamped to 0 (metricvalue.CPU): CPU comes from a rate
//     of a counter, where a slightly negative value can only be an artefact
//     (counter reset, float error) of an otherwise measured, near-idle
//     container. Negative memory is skipped: a gauge of bytes cannot be
//     negative, so such a sample is broken, not a measured zero.
//   - A namespace whose queries fail is omitted, as upstream, but logged with
//     its namespace and error; if no namespace could be queried, the call
//     fails, so kubectl says Prometheus is failing instead of "no metrics".
//   - A node query failure is an error (upstream returns an empty list).
//   - Long name lists are split into several queries (resourcequery batches,
//     see prometheus-adapter#668) whose samples are merged.
//
// As upstream: a pod's timestamp is the earliest of its reported samples and
// its window is resourceRules.window; a node uses its first sample per
// resource and the earlier of the two timestamps; all queries of a call are
// evaluated at the same instant.
package resourcemetrics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	"sigs.k8s.io/metrics-server/pkg/api"

	"github.com/kapacitystack/kapacity/adapter/metricvalue"
	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promclient"
	"github.com/kapacitystack/kapacity/adapter/resourcequery"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

const (
	// DefaultQueryTimeout bounds one GetPodMetrics/GetNodeMetrics call.
	DefaultQueryTimeout = 10 * time.Second
	// DefaultMaxConcurrency bounds the Prometheus queries in flight per call.
	DefaultMaxConcurrency = 10
)

// resources are the resources metrics.k8s.io reports, in query order.
var resources = []resourcequery.ResourceName{resourcequery.CPU, resourcequery.Memory}

var (
	podsResource  = schema.GroupResource{Resource: "pods"}
	nodesResource = schema.GroupResource{Resource: "nodes"}
)

// Options tune a Provider; zero values mean the defaults.
type Options struct {
	// Now returns the evaluation time of the queries (time.Now).
	Now func() time.Time
	// QueryTimeout bounds one Get*Metrics call, all its queries included
	// (DefaultQueryTimeout). metrics-server's interface carries no context.
	QueryTimeout time.Duration
	// MaxConcurrency bounds the queries in flight per call
	// (DefaultMaxConcurrency): `kubectl top pods -A` on a large cluster asks
	// for two queries per namespace at once.
	MaxConcurrency int
}

// Provider implements metrics-server's api.MetricsGetter from Prometheus.
// It is safe for concurrent use.
type Provider struct {
	builder *resourcequery.Builder
	querier promclient.Querier
	opts    Options
	// Per resource: the sample labels holding pod, container and node
	// names. nodeLabel is "" when the resource has no nodeQuery.
	podLabel, containerLabel, nodeLabel map[resourcequery.ResourceName]model.LabelName
}

var _ api.MetricsGetter = (*Provider)(nil)

// New returns a provider for cfg.ResourceRules. It takes the config rather
// than a ready resourcequery.Builder because it also needs the labels that
// hold pod and node names in the samples, which the Builder does not expose;
// both are derived from the same config so they cannot disagree.
func New(cfg *metricsconfig.MetricsDiscoveryConfig, mapper naming.ResourceMapper, querier promclient.Querier, opts Options) (*Provider, error) {
	if querier == nil {
		return nil, fmt.Errorf("resource metrics: a Prometheus querier is required")
	}
	builder, err := resourcequery.NewBuilder(cfg, mapper)
	if err != nil {
		return nil, fmt.Errorf("resource metrics: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = DefaultMaxConcurrency
	}
	p := &Provider{
		builder:        builder,
		querier:        querier,
		opts:           opts,
		podLabel:       map[resourcequery.ResourceName]model.LabelName{},
		containerLabel: map[resourcequery.ResourceName]model.LabelName{},
		nodeLabel:      map[resourcequery.ResourceName]model.LabelName{},
	}
	rules := map[resourcequery.ResourceName]*metricsconfig.ResourceRule{
		resourcequery.CPU:    &cfg.ResourceRules.CPU,
		resourcequery.Memory: &cfg.ResourceRules.Memory,
	}
	for _, res := range resources {
		rule := rules[res]
		conv, err := naming.NewResourceConverter(rule.Resources, mapper)
		if err != nil {
			return nil, fmt.Errorf("resourceRules.%s.resources.%w", res, err)
		}
		pod, err := conv.LabelForResource(podsResource)
		if err != nil {
			return nil, fmt.Errorf("resourceRules.%s.resources: no label for pods: %w", res, err)
		}
		p.podLabel[res] = model.LabelName(pod)
		container, err := builder.ContainerLabel(res)
		if err != nil {
			return nil, fmt.Errorf("resource metrics: %w", err)
		}
		if container == "" {
			return nil, fmt.Errorf("resourceRules.%s.containerLabel: must be set to report containers", res)
		}
		p.containerLabel[res] = model.LabelName(container)
		if rule.NodeQuery != "" {
			node, err := conv.LabelForResource(nodesResource)
			if err != nil {
				return nil, fmt.Errorf("resourceRules.%s.resources: no label for nodes: %w", res, err)
			}
			p.nodeLabel[res] = model.LabelName(node)
		}
	}
	return p, nil
}

// GetPodMetrics returns the usage of the pods that have complete metrics
// (see the package comment); pods without are omitted, as metrics-server
// does. It fails only when no namespace could be queried.
func (p *Provider) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	byNamespace := map[string][]*metav1.PartialObjectMetadata{}
	for _, pod := range pods {
		if pod != nil {
			byNamespace[pod.Namespace] = append(byNamespace[pod.Namespace], pod)
		}
	}
	if len(byNamespace) == 0 {
		return []metrics.PodMetrics{}, nil
	}
	namespaces := make([]string, 0, len(byNamespace))
	for ns := range byNamespace {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)

	ctx, cancel := context.WithTimeout(context.Background(), p.opts.QueryTimeout)
	defer cancel()
	now := p.opts.Now()

	// One batch list per namespace and resource, all run at the same time
	// and evaluated at the same instant.
	batches := make(map[string]map[resourcequery.ResourceName][]*query, len(namespaces))
	var all []*query
	for _, ns := range namespaces {
		batches[ns] = map[resourcequery.ResourceName][]*query{}
		names := make([]string, 0, len(byNamespace[ns]))
		for _, pod := range byNamespace[ns] {
			names = append(names, pod.Name)
		}
		names = sortedNames(names)
		for _, res := range resources {
			texts, err := p.builder.PodContainersResource(res, ns, names, 0)
			if err != nil {
				// A config problem; the namespace is reported as failed.
				batches[ns][res] = []*query{{resource: res, err: fmt.Errorf("building the %s query: %w", res, err)}}
				continue
			}
			for _, text := range texts {
				q := &query{resource: res, text: text}
				batches[ns][res] = append(batches[ns][res], q)
				all = append(all, q)
			}
		}
	}
	p.run(ctx, now, all)

	out := []metrics.PodMetrics{}
	var failed int
	var firstErr error
	for _, ns := range namespaces {
		var samples podSamples
		ok := true
		for _, res := range resources {
			for _, q := range batches[ns][res] {
				if q.err != nil {
					klog.ErrorS(q.err, "Resource metrics query failed, omitting the namespace's pods", "namespace", ns, "resource", res)
					if firstErr == nil {
						firstErr = fmt.Errorf("namespace %s: %w", ns, q.err)
					}
					ok = false
					continue
				}
				samples.add(res, q.result, p.podLabel[res], p.containerLabel[res])
			}
		}
		if !ok {
			failed++
			continue
		}
		for _, pod := range byNamespace[ns] {
			if m, ok := samples.podMetrics(pod, now, p.builder.Window()); ok {
				out = append(out, m)
			}
		}
	}
	if failed == len(namespaces) {
		return nil, fmt.Errorf("querying pod resource usage failed in all %d namespace(s): %w", failed, firstErr)
	}
	return out, nil
}

// GetNodeMetrics returns the usage of the nodes that have both a CPU and a
// memory sample; others are omitted. Any query failure is an error.
func (p *Provider) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	names := make([]string, 0, len(nodes))
	for _, node := range nodes {
		if node != nil {
			names = append(names, node.Name)
		}
	}
	if names = sortedNames(names); len(names) == 0 {
		return []metrics.NodeMetrics{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.QueryTimeout)
	defer cancel()
	now := p.opts.Now()

	var all []*query
	for _, res := range resources {
		texts, err := p.builder.NodeResource(res, names, 0)
		if err != nil {
			return nil, fmt.Errorf("building the node %s query: %w", res, err)
		}
		for _, text := range texts {
			all = append(all, &query{resource: res, text: text})
		}
	}
	p.run(ctx, now, all)

	// The first usable sample per node and resource, as upstream.
	first := map[resourcequery.ResourceName]map[string]*model.Sample{}
	for _, res := range resources {
		first[res] = map[string]*model.Sample{}
	}
	for _, q := range all {
		if q.err != nil {
			return nil, fmt.Errorf("querying node %s usage: %w", q.resource, q.err)
		}
		for _, s := range q.result {
			name := string(s.Metric[p.nodeLabel[q.resource]])
			if name == "" || !usable(q.resource, s.Value) {
				continue
			}
			if _, seen := first[q.resource][name]; !seen {
				first[q.resource][name] = s
			}
		}
	}

	out := []metrics.NodeMetrics{}
	window := metav1.Duration{Duration: p.builder.Window()}
	for _, node := range nodes {
		if node == nil {
			continue
		}
		cpu, mem := first[resourcequery.CPU][node.Name], first[resourcequery.Memory][node.Name]
		if cpu == nil || mem == nil {
			klog.V(4).InfoS("Omitting node without both CPU and memory samples", "node", klog.KObj(node), "cpu", cpu != nil, "memory", mem != nil)
			continue
		}
		ts := cpu.Timestamp
		if mem.Timestamp.Before(ts) {
			ts = mem.Timestamp
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels, CreationTimestamp: metav1.NewTime(now)},
			Timestamp:  metav1.NewTime(ts.Time()),
			Window:     window,
			Usage:      usage(cpu.Value, mem.Value),
		})
	}
	return out, nil
}

// podSamples buckets one namespace's samples by pod and container.
type podSamples map[string]map[string]*containerSamples

type containerSamples struct{ cpu, memory *model.Sample }

// add records the usable samples of one query result. Batches never
// overlap, so a (pod, container) seen twice means the query does not group
// by container; the first sample is kept, as for nodes.
func (ps *podSamples) add(res resourcequery.ResourceName, vec model.Vector, podLabel, containerLabel model.LabelName) {
	if *ps == nil {
		*ps = podSamples{}
	}
	for _, s := range vec {
		pod, container := string(s.Metric[podLabel]), string(s.Metric[containerLabel])
		if pod == "" || container == "" || !usable(res, s.Value) {
			continue
		}
		containers := (*ps)[pod]
		if containers == nil {
			containers = map[string]*containerSamples{}
			(*ps)[pod] = containers
		}
		c := containers[container]
		if c == nil {
			c = &containerSamples{}
			containers[container] = c
		}
		slot := &c.cpu
		if res == resourcequery.Memory {
			slot = &c.memory
		}
		if *slot == nil {
			*slot = s
		}
	}
}

// podMetrics assembles a pod's metrics from its complete containers; the
// timestamp is the earliest of the reported samples (metrics-server's
// convention: the metrics are only as fresh as their oldest part).
func (ps podSamples) podMetrics(pod *metav1.PartialObjectMetadata, now time.Time, window time.Duration) (metrics.PodMetrics, bool) {
	containers := ps[pod.Name]
	names := make([]string, 0, len(containers))
	for name := range containers {
		names = append(names, name)
	}
	sort.Strings(names)
	var (
		cms      []metrics.ContainerMetrics
		earliest model.Time
	)
	for _, name := range names {
		c := containers[name]
		if c.cpu == nil || c.memory == nil {
			klog.V(4).InfoS("Omitting container without both CPU and memory samples", "pod", klog.KObj(pod), "container", name, "cpu", c.cpu != nil, "memory", c.memory != nil)
			continue
		}
		ts := c.cpu.Timestamp
		if c.memory.Timestamp.Before(ts) {
			ts = c.memory.Timestamp
		}
		if len(cms) == 0 || ts.Before(earliest) {
			earliest = ts
		}
		cms = append(cms, metrics.ContainerMetrics{Name: name, Usage: usage(c.cpu.Value, c.memory.Value)})
	}
	if len(cms) == 0 {
		klog.V(4).InfoS("Omitting pod without a container having both CPU and memory samples", "pod", klog.KObj(pod))
		return metrics.PodMetrics{}, false
	}
	return metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels, CreationTimestamp: metav1.NewTime(now)},
		Timestamp:  metav1.NewTime(earliest.Time()),
		Window:     metav1.Duration{Duration: window},
		Containers: cms,
	}, true
}

// usable reports whether a sample is a measurement (see the package
// comment): finite, and for memory not negative.
func usable(res resourcequery.ResourceName, v model.SampleValue) bool {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return false
	}
	return res != resourcequery.Memory || f >= 0
}

func usage(cpu, memory model.SampleValue) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    metricvalue.CPU(float64(cpu)),
		corev1.ResourceMemory: metricvalue.Memory(float64(memory)),
	}
}

// sortedNames returns the distinct non-empty names, sorted so that the same
// request always renders the same queries.
func sortedNames(names []string) []string {
	names = slices.DeleteFunc(names, func(n string) bool { return n == "" })
	sort.Strings(names)
	return slices.Compact(names)
}
