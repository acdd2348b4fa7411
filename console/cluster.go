package console

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
)

// Limits on what one page reads, so that a namespace with very many objects cannot make a page
// unbounded in time or memory.
const (
	maxNamespaces       = 500
	maxIHPAsListed      = 2000
	maxPodsListed       = 1000
	maxEventsListed     = 200
	namespaceListPar    = 8
	maxProvidersCharted = 16
)

// Cluster reads what the console shows, with one user's credentials only: every read is the
// user's own API call, so RBAC decides what they see.
type Cluster struct {
	Client client.Client
	// History reads metric history through kube-apiserver (the history API), as the user; nil
	// when the console was started without it.
	History historyclient.Interface
	// Namespaces are tried when the user may list IHPAs in no namespace cluster-wide and may not
	// list namespaces either (the kubeconfig context's namespace and --namespace).
	Namespaces []string
}

// Scheme is what the console decodes: Kubernetes' built-in kinds and Kapacity's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewCluster returns a Cluster reading with cfg's credentials.
func NewCluster(cfg *rest.Config, namespaces []string, withHistory bool) (*Cluster, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	out := &Cluster{Client: c, Namespaces: namespaces}
	if withHistory {
		h, err := historyclient.NewHTTPForConfig(cfg)
		if err != nil {
			return nil, err
		}
		out.History = h
	}
	return out, nil
}

// Visible is the IHPAs a user can see, and how the console found them.
type Visible struct {
	Items []v1alpha1.IntelligentHorizontalPodAutoscaler
	// Scope says how they were listed: "all namespaces", or per namespace.
	Scope string
	// Hidden counts the namespaces tried where the user may not list IHPAs (they are left out,
	// without their names).
	Hidden int
	// Truncated tells that more than maxIHPAsListed exist.
	Truncated bool
}

// ListIHPAs lists the IHPAs the user may list: cluster-wide when allowed, else namespace by
// namespace (those the user may list, or the configured ones when namespaces cannot be listed),
// skipping the namespaces where listing is forbidden.
func (c *Cluster) ListIHPAs(ctx context.Context) (Visible, error) {
	var all v1alpha1.IntelligentHorizontalPodAutoscalerList
	err := c.Client.List(ctx, &all, client.Limit(maxIHPAsListed))
	if err == nil {
		return Visible{Items: all.Items, Scope: "all namespaces", Truncated: all.Continue != ""}, nil
	}
	if !apierrors.IsForbidden(err) {
		return Visible{}, fmt.Errorf("listing IntelligentHorizontalPodAutoscalers: %w", err)
	}
	namespaces, scope, err := c.namespaces(ctx)
	if err != nil {
		return Visible{}, err
	}
	out := Visible{Scope: scope}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, namespaceListPar)
	var errs []error
	for _, ns := range namespaces {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var list v1alpha1.IntelligentHorizontalPodAutoscalerList
			err := c.Client.List(ctx, &list, client.InNamespace(ns), client.Limit(maxIHPAsListed))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case apierrors.IsForbidden(err):
				out.Hidden++
			case err != nil:
				errs = append(errs, fmt.Errorf("listing IntelligentHorizontalPodAutoscalers in %s: %w", ns, err))
			default:
				out.Items = append(out.Items, list.Items...)
				out.Truncated = out.Truncated || list.Continue != ""
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	if len(out.Items) > maxIHPAsListed {
		out.Items, out.Truncated = out.Items[:maxIHPAsListed], true
	}
	slices.SortFunc(out.Items, func(a, b v1alpha1.IntelligentHorizontalPodAutoscaler) int {
		if a.Namespace != b.Namespace {
			return compareStrings(a.Namespace, b.Namespace)
		}
		return compareStrings(a.Name, b.Name)
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// namespaces lists the namespaces to try: all the user may list, else the configured ones.
func (c *Cluster) namespaces(ctx context.Context) ([]string, string, error) {
	var list corev1.NamespaceList
	err := c.Client.List(ctx, &list, client.Limit(maxNamespaces))
	switch {
	case err == nil:
		names := make([]string, 0, len(list.Items))
		for _, ns := range list.Items {
			names = append(names, ns.Name)
		}
		return names, "each namespace you may list", nil
	case apierrors.IsForbidden(err):
		if len(c.Namespaces) == 0 {
			return nil, "", errors.New("you may list IntelligentHorizontalPodAutoscalers in no namespace cluster-wide, nor list namespaces: " +
				"start the console with --namespace NAME (or a kubeconfig context with a namespace)")
		}
		return c.Namespaces, "namespaces " + fmt.Sprint(c.Namespaces), nil
	default:
		return nil, "", fmt.Errorf("listing namespaces: %w", err)
	}
}

// Objects is everything about one IHPA that the detail page shows. A part the user may not read
// (or that failed) is absent and its error is in Errors, by part, so the rest still shows.
type Objects struct {
	IHPA      *v1alpha1.IntelligentHorizontalPodAutoscaler
	Portraits map[string]*v1alpha1.HorizontalPortrait // by name
	Profile   *v1alpha1.ReplicaProfile
	Workload  *Workload
	Pods      []corev1.Pod
	Events    []corev1.Event
	Errors    map[string]string
}

// Workload is what the console needs of the scale target.
type Workload struct {
	Kind, Name            string
	Selector              labels.Selector
	SpecReplicas          int64
	Replicas, ReadyPods   int64
	CPURequestMilliPerPod int64 // 0 when a container has no CPU request
}

// Parts of a detail page, as keys of Objects.Errors.
const (
	PartPortraits = "portraits"
	PartProfile   = "replicaprofile"
	PartWorkload  = "workload"
	PartPods      = "pods"
	PartEvents    = "events"
	PartHistory   = "history"
	PartTraffic   = "traffic"
)

// ErrNotFound is an IHPA that does not exist or that the user may not read (the console does not
// tell the two apart, as the API server's own answers do not across namespaces).
var ErrNotFound = errors.New("not found")

// GetObjects reads one IHPA and what belongs to it, each part with the user's rights.
func (c *Cluster) GetObjects(ctx context.Context, key types.NamespacedName) (*Objects, error) {
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := c.Client.Get(ctx, key, ihpa); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("IntelligentHorizontalPodAutoscaler %s: %w (or you may not read it: %v)", key, ErrNotFound, err)
		}
		return nil, fmt.Errorf("reading IntelligentHorizontalPodAutoscaler %s: %w", key, err)
	}
	o := &Objects{IHPA: ihpa, Portraits: map[string]*v1alpha1.HorizontalPortrait{}, Errors: map[string]string{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fail := func(part string, err error) {
		mu.Lock()
		defer mu.Unlock()
		o.Errors[part] = err.Error()
	}
	wg.Add(4)
	go func() {
		defer wg.Done()
		var list v1alpha1.HorizontalPortraitList
		if err := c.Client.List(ctx, &list, client.InNamespace(key.Namespace)); err != nil {
			fail(PartPortraits, fmt.Errorf("listing HorizontalPortraits: %w", err))
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range list.Items {
			if metav1.IsControlledBy(&list.Items[i], ihpa) {
				o.Portraits[list.Items[i].Name] = &list.Items[i]
			}
		}
	}()
	go func() {
		defer wg.Done()
		rp := &v1alpha1.ReplicaProfile{}
		if err := c.Client.Get(ctx, key, rp); err != nil {
			if !apierrors.IsNotFound(err) {
				fail(PartProfile, fmt.Errorf("reading ReplicaProfile: %w", err))
			}
			return
		}
		mu.Lock()
		o.Profile = rp
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		var list corev1.EventList
		err := c.Client.List(ctx, &list, client.InNamespace(key.Namespace), client.Limit(maxEventsListed),
			client.MatchingFields{"involvedObject.name": key.Name, "involvedObject.kind": "IntelligentHorizontalPodAutoscaler"})
		if err != nil {
			fail(PartEvents, fmt.Errorf("listing events: %w", err))
			return
		}
		slices.SortFunc(list.Items, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a).Time) })
		mu.Lock()
		o.Events = list.Items
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		w, err := c.getWorkload(ctx, key.Namespace, ihpa)
		if err != nil {
			fail(PartWorkload, err)
			fail(PartPods, errors.New("the workload's pod selector is unknown"))
			return
		}
		mu.Lock()
		o.Workload = w
		mu.Unlock()
		var pods corev1.PodList
		if err := c.Client.List(ctx, &pods, client.InNamespace(key.Namespace), client.MatchingLabelsSelector{Selector: w.Selector},
			client.Limit(maxPodsListed)); err != nil {
			fail(PartPods, fmt.Errorf("listing pods: %w", err))
			return
		}
		slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return compareStrings(a.Name, b.Name) })
		mu.Lock()
		o.Pods = pods.Items
		mu.Unlock()
	}()
	wg.Wait()
	return o, nil
}

// getWorkload reads the scale target (any kind with spec.selector and a pod template: Deployment,
// StatefulSet, ReplicaSet…) as unstructured data.
func (c *Cluster) getWorkload(ctx context.Context, ns string, ihpa *v1alpha1.IntelligentHorizontalPodAutoscaler) (*Workload, error) {
	ref := ihpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("scaleTargetRef.apiVersion %q: %w", ref.APIVersion, err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, u); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", ref.Kind, ref.Name, err)
	}
	w := &Workload{Kind: ref.Kind, Name: ref.Name}
	raw, found, err := unstructured.NestedMap(u.Object, "spec", "selector")
	if err != nil || !found {
		return nil, fmt.Errorf("%s %s has no spec.selector", ref.Kind, ref.Name)
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, fmt.Errorf("%s %s spec.selector: %w", ref.Kind, ref.Name, err)
	}
	if w.Selector, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
		return nil, fmt.Errorf("%s %s spec.selector: %w", ref.Kind, ref.Name, err)
	}
	w.SpecReplicas, _, _ = unstructured.NestedInt64(u.Object, "spec", "replicas")
	w.Replicas, _, _ = unstructured.NestedInt64(u.Object, "status", "replicas")
	w.ReadyPods, _, _ = unstructured.NestedInt64(u.Object, "status", "readyReplicas")
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	var total int64
	for _, raw := range containers {
		var ctr corev1.Container
		m, ok := raw.(map[string]any)
		if !ok || runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ctr) != nil {
			total = 0
			break
		}
		q, ok := ctr.Resources.Requests[corev1.ResourceCPU]
		if !ok {
			total = 0
			break
		}
		total += q.MilliValue()
	}
	w.CPURequestMilliPerPod = total
	return w, nil
}

func eventTime(e corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.Time{Time: e.EventTime.Time}
	default:
		return e.CreationTimestamp
	}
}
