// Package namingtest provides a fake naming.ResourceMapper for tests.
package namingtest

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource is one resource the fake mapper knows.
type Resource struct {
	Group, Version, Plural, Singular string
}

// Mapper is a fake RESTMapper subset resolving plural and singular names
// (case-insensitively), like a discovery-backed RESTMapper does.
type Mapper struct {
	Resources []Resource
}

// NewMapper knows core pods, services, nodes, namespaces and
// persistentvolumes, and deployments.apps: the mapper of the conformance
// cases.
func NewMapper() *Mapper {
	return &Mapper{Resources: []Resource{
		{"", "v1", "pods", "pod"},
		{"", "v1", "services", "service"},
		{"", "v1", "nodes", "node"},
		{"", "v1", "namespaces", "namespace"},
		{"", "v1", "persistentvolumes", "persistentvolume"},
		{"apps", "v1", "deployments", "deployment"},
	}}
}

// ResourceFor resolves a partial resource; an empty group matches any.
func (m *Mapper) ResourceFor(in schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	name := strings.ToLower(in.Resource)
	for _, r := range m.Resources {
		if in.Group != "" && in.Group != r.Group {
			continue
		}
		if name == r.Plural || name == r.Singular {
			return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Plural}, nil
		}
	}
	return schema.GroupVersionResource{}, &meta.NoResourceMatchError{PartialResource: in}
}

// ResourceSingularizer returns the singular of a known plural.
func (m *Mapper) ResourceSingularizer(resource string) (string, error) {
	for _, r := range m.Resources {
		if r.Plural == resource {
			return r.Singular, nil
		}
	}
	return "", fmt.Errorf("no singular of resource %q known", resource)
}
