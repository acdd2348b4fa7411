// Package workload reaches a workload through its /scale subresource, whatever its kind, as the
// HorizontalPodAutoscaler does: the kind is mapped to its resource through the RESTMapper and the
// polymorphic scale client does the rest.
package workload

import (
	"context"
	"errors"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/scale"
)

// Scaler reads and writes a workload's /scale.
type Scaler interface {
	// GetScale returns the scale of the workload ref points to in namespace, and the resource it
	// was found under (for UpdateScale).
	GetScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error)
	// UpdateScale writes scale back (with its resourceVersion, so a concurrent change conflicts).
	UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
}

// ScaleClient is a Scaler over client-go's polymorphic scale client.
type ScaleClient struct {
	Mapper meta.RESTMapper
	Scales scale.ScalesGetter
}

// GetScale implements Scaler. It tries every mapping of the kind, as the HPA controller does, and
// returns the first error if none works.
func (c *ScaleClient) GetScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, schema.GroupResource, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, schema.GroupResource{}, fmt.Errorf("invalid apiVersion %q of the scale target: %w", ref.APIVersion, err)
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	mappings, err := c.Mapper.RESTMappings(gk)
	if err != nil {
		return nil, schema.GroupResource{}, fmt.Errorf("mapping %s to a resource: %w", gk, err)
	}
	var firstErr error
	for _, m := range mappings {
		gr := m.Resource.GroupResource()
		s, err := c.Scales.Scales(namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
		if err == nil {
			return s, gr, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no resource mapping")
	}
	return nil, schema.GroupResource{}, fmt.Errorf("getting the scale of %s %s/%s: %w", gk, namespace, ref.Name, firstErr)
}

// UpdateScale implements Scaler.
func (c *ScaleClient) UpdateScale(ctx context.Context, namespace string, gr schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	out, err := c.Scales.Scales(namespace).Update(ctx, gr, s, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating the scale of %s %s/%s: %w", gr, namespace, s.Name, err)
	}
	return out, nil
}

// Selector parses the label selector a scale reports. An empty selector would select every pod
// of the namespace, so it is an error.
func Selector(s *autoscalingv1.Scale) (labels.Selector, error) {
	if s.Status.Selector == "" {
		return nil, fmt.Errorf("the scale of %q reports no label selector", s.Name)
	}
	sel, err := labels.Parse(s.Status.Selector)
	if err != nil {
		return nil, fmt.Errorf("failed to parse label selector %q of scale: %w", s.Status.Selector, err)
	}
	if sel.Empty() {
		return nil, fmt.Errorf("the scale of %q reports an empty label selector", s.Name)
	}
	return sel, nil
}

// GroupKind is the group and kind of a scale target reference.
func GroupKind(ref autoscalingv2.CrossVersionObjectReference) (schema.GroupKind, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupKind{}, fmt.Errorf("invalid apiVersion %q of the scale target: %w", ref.APIVersion, err)
	}
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, nil
}
