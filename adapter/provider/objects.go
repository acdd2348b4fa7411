package provider

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
)

// MetadataLister lists object names through the metadata API: only names are needed, so
// nothing else of the objects is transferred.
type MetadataLister struct {
	client metadata.Interface
}

// NewMetadataLister returns an ObjectLister over client.
func NewMetadataLister(client metadata.Interface) *MetadataLister {
	return &MetadataLister{client: client}
}

// ListNames implements ObjectLister.
func (l *MetadataLister) ListNames(ctx context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error) {
	list, err := l.client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
	}
	names := make([]string, 0, len(list.Items))
	for _, item := range list.Items {
		names = append(names, item.Name)
	}
	return names, nil
}
