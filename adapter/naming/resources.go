// Package naming compiles discovery rules: which series a rule keeps, what
// API metric name a series gets, which Kubernetes resources its labels
// stand for, and the PromQL query serving it. It is pure: resources are
// resolved through a ResourceMapper, so tests need no cluster.
package naming

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// ResourceMapper is the part of meta.RESTMapper naming needs; a
// meta.RESTMapper (e.g. a deferred discovery mapper) satisfies it.
type ResourceMapper interface {
	// ResourceFor fully qualifies a partial resource (singular, short or
	// group-less forms).
	ResourceFor(input schema.GroupVersionResource) (schema.GroupVersionResource, error)
	// ResourceSingularizer returns the singular form of a plural resource.
	ResourceSingularizer(resource string) (string, error)
}

var (
	// namespacesResource is the resource whose label holds the namespace.
	namespacesResource = schema.GroupResource{Resource: "namespaces"}
	// podsResource is the resource whose label holds the pod name.
	podsResource = schema.GroupResource{Resource: "pods"}
	// nodesResource is the resource whose label holds the node name.
	nodesResource = schema.GroupResource{Resource: "nodes"}
)

// IsNamespacedResource reports whether metrics about gr are served under a
// namespace. As in prometheus-adapter only namespaces, nodes and
// persistentvolumes are root-scoped; other cluster-scoped resources are
// served as namespaced, which keeps existing HPAs working.
func IsNamespacedResource(gr schema.GroupResource) bool {
	if gr.Group != "" {
		return true
	}
	switch gr.Resource {
	case "namespaces", "nodes", "persistentvolumes":
		return false
	}
	return true
}

// ResourceConverter maps series labels to Kubernetes resources and back for
// one rule's resources section. It is safe for concurrent use.
type ResourceConverter struct {
	mapper   ResourceMapper
	template *metricsconfig.LabelTemplate // nil without a template

	// Explicit overrides, immutable after construction.
	overrideResource map[string]schema.GroupResource
	overrideLabel    map[schema.GroupResource]string

	// Template results, remembered because discovery asks the same
	// questions for every series on every relist.
	mu            sync.RWMutex
	cacheResource map[string]schema.GroupResource
	cacheLabel    map[schema.GroupResource]string
}

// NewResourceConverter compiles a resources section. Override resources are
// normalised through the mapper, so `{resource: pod}` means pods.
func NewResourceConverter(m metricsconfig.ResourceMapping, mapper ResourceMapper) (*ResourceConverter, error) {
	c := &ResourceConverter{
		mapper:           mapper,
		overrideResource: map[string]schema.GroupResource{},
		overrideLabel:    map[schema.GroupResource]string{},
		cacheResource:    map[string]schema.GroupResource{},
		cacheLabel:       map[schema.GroupResource]string{},
	}
	if m.Template != "" {
		t, err := metricsconfig.CompileLabelTemplate(m.Template)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		c.template = t
	}
	labels := make([]string, 0, len(m.Overrides))
	for label := range m.Overrides {
		labels = append(labels, label)
	}
	// Sorted so that, when two labels name one resource, the label used in
	// queries is always the same one.
	sort.Strings(labels)
	for _, label := range labels {
		o := m.Overrides[label]
		gr, err := c.normalize(o.Group, o.Resource)
		if err != nil {
			return nil, fmt.Errorf("overrides[%s]: unable to normalize group-resource {%s %s}: %w", label, o.Group, o.Resource, err)
		}
		c.overrideResource[label] = gr
		if _, taken := c.overrideLabel[gr]; !taken {
			c.overrideLabel[gr] = label
		}
	}
	return c, nil
}

func (c *ResourceConverter) normalize(group, resource string) (schema.GroupResource, error) {
	gvr, err := c.mapper.ResourceFor(schema.GroupVersionResource{Group: group, Resource: resource})
	if err != nil {
		return schema.GroupResource{}, err
	}
	return gvr.GroupResource(), nil
}

// ResourcesForSeries returns the resources named by a series' labels, in
// label-name order without duplicates. Labels that look like the template
// but name no known resource are skipped: the RESTMapper decides what a
// resource is.
func (c *ResourceConverter) ResourcesForSeries(labelNames []string) []schema.GroupResource {
	sorted := append([]string(nil), labelNames...)
	sort.Strings(sorted)
	var out []schema.GroupResource
	seen := map[schema.GroupResource]bool{}
	for _, label := range sorted {
		gr, ok := c.resourceForLabel(label)
		if !ok || seen[gr] {
			continue
		}
		seen[gr] = true
		out = append(out, gr)
	}
	return out
}

func (c *ResourceConverter) resourceForLabel(label string) (schema.GroupResource, bool) {
	if gr, ok := c.overrideResource[label]; ok {
		return gr, true
	}
	c.mu.RLock()
	gr, ok := c.cacheResource[label]
	c.mu.RUnlock()
	if ok {
		return gr, true
	}
	if c.template == nil {
		return schema.GroupResource{}, false
	}
	group, resource, ok := c.template.Match(label)
	if !ok {
		return schema.GroupResource{}, false
	}
	gr, err := c.normalize(group, resource)
	if err != nil {
		// Not cached: the mapper may learn the resource later (new CRDs).
		return schema.GroupResource{}, false
	}
	c.remember(label, gr)
	return gr, true
}

func (c *ResourceConverter) remember(label string, gr schema.GroupResource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cacheResource[label] = gr
	if _, ok := c.cacheLabel[gr]; !ok {
		c.cacheLabel[gr] = label
	}
}

// LabelForResource returns the series label holding the names of gr's
// objects: the override's label, or the template rendered with the group
// ("." and "-" replaced by "_") and the singular resource.
func (c *ResourceConverter) LabelForResource(gr schema.GroupResource) (string, error) {
	if label, ok := c.overrideLabel[gr]; ok {
		return label, nil
	}
	c.mu.RLock()
	label, ok := c.cacheLabel[gr]
	c.mu.RUnlock()
	if ok {
		return label, nil
	}
	if c.template == nil {
		return "", fmt.Errorf("no generic resource label form specified for this metric")
	}
	singular, err := c.mapper.ResourceSingularizer(gr.Resource)
	if err != nil {
		return "", fmt.Errorf("unable to singularize resource %q: %w", gr.Resource, err)
	}
	group := strings.NewReplacer(".", "_", "-", "_").Replace(gr.Group)
	label, err = c.template.Render(group, singular)
	if err != nil {
		return "", err
	}
	c.remember(label, gr)
	return label, nil
}
