package provider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

// CachedPortraits lists HorizontalPortraits from an informer started on first use, so that an
// adapter installed without Kapacity's CRDs starts and serves everything else.
type CachedPortraits struct {
	ctx         context.Context
	client      dynamic.Interface
	syncTimeout time.Duration

	mu       sync.Mutex
	informer informers.GenericInformer
}

// NewCachedPortraits returns a PortraitLister whose informer runs until ctx ends.
func NewCachedPortraits(ctx context.Context, client dynamic.Interface) *CachedPortraits {
	return &CachedPortraits{ctx: ctx, client: client, syncTimeout: 10 * time.Second}
}

// ListPortraits implements PortraitLister.
func (c *CachedPortraits) ListPortraits(namespace string) ([]*v1alpha1.HorizontalPortrait, error) {
	informer := c.start()
	ctx, cancel := context.WithTimeout(c.ctx, c.syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return nil, fmt.Errorf("HorizontalPortraits are not listable (is the autoscaling.kapacitystack.io CRD installed, and may the adapter list and watch it?)")
	}
	objects, err := informer.Lister().ByNamespace(namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing HorizontalPortraits: %w", err)
	}
	out := make([]*v1alpha1.HorizontalPortrait, 0, len(objects))
	for _, obj := range objects {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		hp := &v1alpha1.HorizontalPortrait{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, hp); err != nil {
			return nil, fmt.Errorf("decoding HorizontalPortrait %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		out = append(out, hp)
	}
	return out, nil
}

func (c *CachedPortraits) start() informers.GenericInformer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.informer == nil {
		factory := dynamicinformer.NewDynamicSharedInformerFactory(c.client, 0)
		c.informer = factory.ForResource(v1alpha1.GroupVersion.WithResource("horizontalportraits"))
		factory.Start(c.ctx.Done())
	}
	return c.informer
}
