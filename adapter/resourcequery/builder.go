// Package resourcequery builds Kapacity's resource queries from the config's
// resourceRules and workloadPodNamePatterns: CPU and memory usage of pods,
// containers, nodes and whole workloads. Workload membership is decided by
// pod-name shape (a regex per workload kind), so no Kubernetes lookup is
// needed to query a workload.
package resourcequery

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promql"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// ResourceName is a resource the rules can query.
type ResourceName string

const (
	CPU    ResourceName = "cpu"
	Memory ResourceName = "memory"
)

// PodLabel is the label Kapacity matches pod-name patterns against.
const PodLabel = "pod"

var (
	podsResource  = schema.GroupResource{Resource: "pods"}
	nodesResource = schema.GroupResource{Resource: "nodes"}
)

// Builder builds resource queries. It is immutable and safe for concurrent
// use.
type Builder struct {
	window   time.Duration
	rules    map[ResourceName]*resourceQueries
	patterns map[schema.GroupKind]string
}

type resourceQueries struct {
	container      *naming.MetricsQuery
	readyPodsOnly  *naming.MetricsQuery // nil when not configured
	node           *naming.MetricsQuery // nil when not configured
	containerLabel string
}

// NewBuilder compiles cfg.ResourceRules (required) and
// cfg.WorkloadPodNamePatterns.
func NewBuilder(cfg *metricsconfig.MetricsDiscoveryConfig, mapper naming.ResourceMapper) (*Builder, error) {
	if cfg.ResourceRules == nil {
		return nil, fmt.Errorf("resourceRules: must be set to query resources")
	}
	b := &Builder{
		window:   cfg.ResourceRules.Window.Duration(),
		rules:    map[ResourceName]*resourceQueries{},
		patterns: map[schema.GroupKind]string{},
	}
	rules := []struct {
		name ResourceName
		rule *metricsconfig.ResourceRule
	}{{CPU, &cfg.ResourceRules.CPU}, {Memory, &cfg.ResourceRules.Memory}}
	for _, r := range rules {
		q, err := compileResourceRule(r.rule, mapper)
		if err != nil {
			return nil, fmt.Errorf("resourceRules.%s.%w", r.name, err)
		}
		b.rules[r.name] = q
	}
	for i, p := range cfg.WorkloadPodNamePatterns {
		if _, err := metricsconfig.CompilePodNamePattern(p.Pattern, "workload"); err != nil {
			return nil, fmt.Errorf("workloadPodNamePatterns[%d].pattern: %w", i, err)
		}
		b.patterns[schema.GroupKind{Group: p.Group, Kind: p.Kind}] = p.Pattern
	}
	return b, nil
}

func compileResourceRule(r *metricsconfig.ResourceRule, mapper naming.ResourceMapper) (*resourceQueries, error) {
	conv, err := naming.NewResourceConverter(r.Resources, mapper)
	if err != nil {
		return nil, fmt.Errorf("resources.%w", err)
	}
	// Resource queries always filter by namespace when one is given.
	compile := func(field, text string) (*naming.MetricsQuery, error) {
		if text == "" {
			return nil, nil
		}
		q, err := naming.NewMetricsQuery(text, conv, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return q, nil
	}
	q := &resourceQueries{containerLabel: r.ContainerLabel}
	if q.container, err = compile("containerQuery", r.ContainerQuery); err != nil {
		return nil, err
	}
	if q.container == nil {
		return nil, fmt.Errorf("containerQuery: must not be empty")
	}
	if q.readyPodsOnly, err = compile("readyPodsOnlyContainerQuery", r.ReadyPodsOnlyContainerQuery); err != nil {
		return nil, err
	}
	if q.node, err = compile("nodeQuery", r.NodeQuery); err != nil {
		return nil, err
	}
	return q, nil
}

// Window is the measurement window to report with resource samples.
func (b *Builder) Window() time.Duration { return b.window }

func (b *Builder) rule(resource ResourceName) (*resourceQueries, error) {
	q, ok := b.rules[resource]
	if !ok {
		return nil, fmt.Errorf("unsupported resource %q", resource)
	}
	return q, nil
}

// ContainerLabel returns the label holding container names for resource.
func (b *Builder) ContainerLabel(resource ResourceName) (string, error) {
	q, err := b.rule(resource)
	if err != nil {
		return "", err
	}
	return q.containerLabel, nil
}

// PodResource returns the queries for the usage of pods (summed over their
// containers, grouped by pod), one per batch of pod names (see
// promql.NameMatchers; maxRegexBytes <= 0 means the default).
func (b *Builder) PodResource(resource ResourceName, namespace string, podNames []string, maxRegexBytes int) ([]string, error) {
	q, err := b.rule(resource)
	if err != nil {
		return nil, err
	}
	return q.container.BuildBatches(naming.ObjectQuery{Resource: podsResource, Namespace: namespace, Names: podNames}, maxRegexBytes)
}

// ContainerResource returns the queries for one container's usage in
// pods, grouped by pod.
func (b *Builder) ContainerResource(resource ResourceName, namespace, container string, podNames []string, maxRegexBytes int) ([]string, error) {
	q, err := b.rule(resource)
	if err != nil {
		return nil, err
	}
	sel, err := containerSelector(q.containerLabel, container)
	if err != nil {
		return nil, err
	}
	return q.container.BuildBatches(naming.ObjectQuery{Resource: podsResource, Namespace: namespace, MetricSelector: sel, Names: podNames}, maxRegexBytes)
}

// PodContainersResource returns the queries for the usage of each container
// of pods, grouped by pod and container (what metrics.k8s.io serves).
func (b *Builder) PodContainersResource(resource ResourceName, namespace string, podNames []string, maxRegexBytes int) ([]string, error) {
	q, err := b.rule(resource)
	if err != nil {
		return nil, err
	}
	return q.container.BuildBatches(naming.ObjectQuery{Resource: podsResource, Namespace: namespace, ExtraGroupBy: []string{q.containerLabel}, Names: podNames}, maxRegexBytes)
}

// NodeResource returns the queries for the usage of nodes, grouped by node.
func (b *Builder) NodeResource(resource ResourceName, nodeNames []string, maxRegexBytes int) ([]string, error) {
	q, err := b.rule(resource)
	if err != nil {
		return nil, err
	}
	if q.node == nil {
		return nil, fmt.Errorf("resourceRules.%s.nodeQuery is not configured", resource)
	}
	return q.node.BuildBatches(naming.ObjectQuery{Resource: nodesResource, Names: nodeNames}, maxRegexBytes)
}

// WorkloadQuery asks for the usage of a workload's pods, summed.
type WorkloadQuery struct {
	GroupKind schema.GroupKind
	Namespace string
	Name      string
	Resource  ResourceName
	// Container, when set, restricts the sum to that container.
	Container string
	// ReadyPodsOnly counts only ready pods (readyPodsOnlyContainerQuery).
	ReadyPodsOnly bool
}

// WorkloadResource returns the query for a workload's usage, grouped by
// namespace. Pods are selected by the workload kind's pod-name pattern.
func (b *Builder) WorkloadResource(w WorkloadQuery) (string, error) {
	q, err := b.rule(w.Resource)
	if err != nil {
		return "", err
	}
	tmpl := q.container
	if w.ReadyPodsOnly {
		if q.readyPodsOnly == nil {
			return "", fmt.Errorf("resourceRules.%s.readyPodsOnlyContainerQuery is not configured", w.Resource)
		}
		tmpl = q.readyPodsOnly
	}
	podMatcher, err := b.PodNameMatcher(w.GroupKind, w.Name)
	if err != nil {
		return "", err
	}
	var sel labels.Selector
	if w.Container != "" {
		if sel, err = containerSelector(q.containerLabel, w.Container); err != nil {
			return "", err
		}
	}
	return tmpl.BuildExternal(naming.ExternalQuery{
		Namespace:      w.Namespace,
		GroupBy:        "namespace",
		MetricSelector: sel,
		ExtraMatchers:  []promql.Matcher{podMatcher},
	})
}

// PodNameMatcher returns the `pod=~"<pattern>"` matcher selecting a
// workload's pods, for workload queries and workload external metrics.
// The workload name is regex-quoted into the pattern.
func (b *Builder) PodNameMatcher(gk schema.GroupKind, name string) (promql.Matcher, error) {
	pattern, ok := b.patterns[gk]
	if !ok {
		return promql.Matcher{}, fmt.Errorf("unknown workload type %q", gk.String())
	}
	if name == "" {
		return promql.Matcher{}, fmt.Errorf("workload name must not be empty")
	}
	re, err := metricsconfig.CompilePodNamePattern(pattern, name)
	if err != nil {
		return promql.Matcher{}, fmt.Errorf("pod name pattern for %s: %w", gk, err)
	}
	return promql.Matcher{Name: PodLabel, Type: promql.MatchRegexp, Value: re.String()}, nil
}

func containerSelector(label, container string) (labels.Selector, error) {
	req, err := labels.NewRequirement(label, selection.Equals, []string{container})
	if err != nil {
		return nil, fmt.Errorf("invalid container name %q: %w", container, err)
	}
	return labels.NewSelector().Add(*req), nil
}
