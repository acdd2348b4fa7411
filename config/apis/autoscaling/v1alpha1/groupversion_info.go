package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every kind in this package.
var GroupVersion = schema.GroupVersion{Group: "autoscaling.kapacitystack.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers this package's kinds. It is built on apimachinery's builder rather than
	// controller-runtime's so that importing the API does not drag a controller framework into
	// consumers such as the adapter or the replay simulator.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds every kind of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource turns an unqualified resource name into a group-qualified GroupResource, as client-go's
// error helpers expect.
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&IntelligentHorizontalPodAutoscaler{}, &IntelligentHorizontalPodAutoscalerList{},
		&HorizontalPortrait{}, &HorizontalPortraitList{},
		&ReplicaProfile{}, &ReplicaProfileList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
