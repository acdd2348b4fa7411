package provider

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// CachedLister lists object names from metadata-only informers, one per resource, started the
// first time the resource is asked for. Listing through kube-apiserver on every request would put
// each HPA sync behind the adapter's client rate limit (5 requests/s by default: 200 ms per request
// under load) and load the API server; a watch costs one connection per resource.
type CachedLister struct {
	ctx         context.Context
	factory     metadatainformer.SharedInformerFactory
	syncTimeout time.Duration

	mu      sync.Mutex
	started map[schema.GroupVersionResource]informers.GenericInformer
}

// NewCachedLister returns a lister whose informers run until ctx ends.
func NewCachedLister(ctx context.Context, client metadata.Interface) *CachedLister {
	return &CachedLister{
		ctx:         ctx,
		factory:     metadatainformer.NewSharedInformerFactory(client, 0),
		syncTimeout: 30 * time.Second,
		started:     map[schema.GroupVersionResource]informers.GenericInformer{},
	}
}

// ListNames implements ObjectLister, in name order.
func (l *CachedLister) ListNames(ctx context.Context, gvr schema.GroupVersionResource, namespace string, selector labels.Selector) ([]string, error) {
	informer, err := l.informer(gvr)
	if err != nil {
		return nil, err
	}
	syncCtx, cancel := context.WithTimeout(ctx, l.syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.Informer().HasSynced) {
		return nil, fmt.Errorf("the cache of %s did not sync within %s (can the adapter list and watch them?)", gvr.GroupResource(), l.syncTimeout)
	}
	var objects []runtime.Object
	if namespace == "" {
		objects, err = informer.Lister().List(selector)
	} else {
		objects, err = informer.Lister().ByNamespace(namespace).List(selector)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
	}
	names := make([]string, 0, len(objects))
	for _, obj := range objects {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			names = append(names, m.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (l *CachedLister) informer(gvr schema.GroupVersionResource) (informers.GenericInformer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if informer, ok := l.started[gvr]; ok {
		return informer, nil
	}
	informer := l.factory.ForResource(gvr)
	// Only names and labels are used: drop what makes metadata large.
	if err := informer.Informer().SetTransform(stripMetadata); err != nil {
		return nil, fmt.Errorf("caching %s: %w", gvr.GroupResource(), err)
	}
	l.factory.Start(l.ctx.Done())
	l.started[gvr] = informer
	return informer, nil
}

func stripMetadata(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		m.Annotations = nil
		m.OwnerReferences = nil
	}
	return obj, nil
}
