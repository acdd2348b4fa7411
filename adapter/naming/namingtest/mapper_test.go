package namingtest

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The REST mapper must resolve the same partial forms as the fake Mapper
// (plural, singular, group-less), and know kinds for describing objects.
func TestNewRESTMapper(t *testing.T) {
	m := NewRESTMapper()
	tests := []struct {
		in       schema.GroupVersionResource
		want     schema.GroupVersionResource
		wantKind string
	}{
		{schema.GroupVersionResource{Resource: "pod"}, schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"},
		{schema.GroupVersionResource{Resource: "pods"}, schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"},
		{schema.GroupVersionResource{Resource: "namespace"}, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "Namespace"},
		{schema.GroupVersionResource{Resource: "persistentvolumes"}, schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}, "PersistentVolume"},
		{schema.GroupVersionResource{Resource: "deployment"}, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
		{schema.GroupVersionResource{Group: "apps", Resource: "statefulsets"}, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet"},
		{schema.GroupVersionResource{Group: "apps", Resource: "replicaset"}, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, "ReplicaSet"},
	}
	for _, tc := range tests {
		t.Run(tc.in.String(), func(t *testing.T) {
			got, err := m.ResourceFor(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ResourceFor = %v, want %v", got, tc.want)
			}
			gvk, err := m.KindFor(got)
			if err != nil {
				t.Fatal(err)
			}
			if gvk.Kind != tc.wantKind || gvk.GroupVersion() != got.GroupVersion() {
				t.Fatalf("KindFor = %v, want kind %s in %v", gvk, tc.wantKind, got.GroupVersion())
			}
		})
	}
	if _, err := m.ResourceFor(schema.GroupVersionResource{Resource: "widgets"}); err == nil {
		t.Fatal("ResourceFor(widgets) succeeded, want an error for an unknown resource")
	}
	if s, err := m.ResourceSingularizer("services"); err != nil || s != "service" {
		t.Fatalf("ResourceSingularizer(services) = %q, %v; want service", s, err)
	}
	mapping, err := m.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"})
	if err != nil {
		t.Fatal(err)
	}
	if gr := mapping.Resource.GroupResource(); gr != (schema.GroupResource{Group: "apps", Resource: "deployments"}) {
		t.Fatalf("RESTMapping(Deployment.apps) resource = %v", gr)
	}
}
