package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToSchemeRegistersEveryKind(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{
		"IntelligentHorizontalPodAutoscaler", "IntelligentHorizontalPodAutoscalerList",
		"HorizontalPortrait", "HorizontalPortraitList",
		"ReplicaProfile", "ReplicaProfileList",
	} {
		if _, err := scheme.New(GroupVersion.WithKind(kind)); err != nil {
			t.Errorf("kind %s: %v", kind, err)
		}
	}
}
