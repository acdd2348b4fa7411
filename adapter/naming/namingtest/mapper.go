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

// NewRESTMapper returns a real meta.DefaultRESTMapper knowing core v1 pods,
// services, nodes, namespaces and persistentvolumes and apps/v1
// deployments, replicasets and statefulsets. Use it where a full
// meta.RESTMapper is needed (KindFor, RESTMapping), e.g. to compile
// workloadPodNamePatterns or to describe objects in provider answers.
func NewRESTMapper() *meta.DefaultRESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{core, apps})
	for _, r := range []struct {
		gv    schema.GroupVersion
		kind  string
		scope meta.RESTScope
	}{
		{core, "Pod", meta.RESTScopeNamespace},
		{core, "Service", meta.RESTScopeNamespace},
		{core, "Node", meta.RESTScopeRoot},
		{core, "Namespace", meta.RESTScopeRoot},
		{core, "PersistentVolume", meta.RESTScopeRoot},
		{apps, "Deployment", meta.RESTScopeNamespace},
		{apps, "ReplicaSet", meta.RESTScopeNamespace},
		{apps, "StatefulSet", meta.RESTScopeNamespace},
	} {
		m.Add(r.gv.WithKind(r.kind), r.scope)
	}
	return m
}
