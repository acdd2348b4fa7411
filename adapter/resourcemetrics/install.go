package resourcemetrics

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"sigs.k8s.io/metrics-server/pkg/api"
)

var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// Informers feed metrics-server's API layer with the objects it may report
// metrics for. Call Install before Start (Start only runs the informers
// requested so far), and serve only after WaitForCacheSync.
type Informers struct {
	// Kube provides the node lister; it may be shared with other users.
	Kube informers.SharedInformerFactory
	// PodMetadata is a metadata-only factory restricted to running pods;
	// keep it for this purpose, its pods are stripped (see NewInformers).
	PodMetadata metadatainformer.SharedInformerFactory
}

// NewInformers creates the informers Install needs. Pods are watched as
// metadata only and restricted to status.phase=Running, like
// prometheus-adapter: metrics.k8s.io lists only running pods, and full pod
// objects would cost far more memory on large clusters. Managed fields and
// annotations are dropped from the cached pods too: only name, namespace and
// labels (for label selectors) are used.
func NewInformers(kubeClient kubernetes.Interface, metadataClient metadata.Interface, resync time.Duration) (Informers, error) {
	running := fields.OneTermEqualSelector("status.phase", string(corev1.PodRunning)).String()
	pods := metadatainformer.NewFilteredSharedInformerFactory(metadataClient, resync, metav1.NamespaceAll,
		func(o *metav1.ListOptions) { o.FieldSelector = running })
	if err := pods.ForResource(podsGVR).Informer().SetTransform(stripPodMetadata); err != nil {
		return Informers{}, fmt.Errorf("pod metadata informer: %w", err)
	}
	return Informers{Kube: informers.NewSharedInformerFactory(kubeClient, resync), PodMetadata: pods}, nil
}

func stripPodMetadata(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		m.Annotations = nil
	}
	return obj, nil
}

// Start starts the informers requested so far (call Install first).
func (i Informers) Start(stop <-chan struct{}) {
	i.Kube.Start(stop)
	i.PodMetadata.Start(stop)
}

// WaitForCacheSync waits for the informers' caches, failing if one did not
// sync before stop was closed.
func (i Informers) WaitForCacheSync(stop <-chan struct{}) error {
	for typ, ok := range i.Kube.WaitForCacheSync(stop) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync", typ)
		}
	}
	for gvr, ok := range i.PodMetadata.WaitForCacheSync(stop) {
		if !ok {
			return fmt.Errorf("metadata informer cache for %s did not sync", gvr)
		}
	}
	return nil
}

// Install registers metrics.k8s.io (v1beta1 pods and nodes) on server,
// served by p from the informers' listers.
func Install(server *genericapiserver.GenericAPIServer, p api.MetricsGetter, inf Informers) error {
	pods := inf.PodMetadata.ForResource(podsGVR).Lister()
	nodes := inf.Kube.Core().V1().Nodes().Lister()
	// No node selector: every node the lister knows is served.
	if err := api.Install(p, pods, nodes, server, nil); err != nil {
		return fmt.Errorf("installing metrics.k8s.io: %w", err)
	}
	return nil
}
