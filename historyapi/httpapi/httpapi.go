// Package httpapi serves the history API (history.metrics.kapacitystack.io/v1alpha1, see
// historyapi/v1alpha1) from the adapter's aggregated API server, discovery included.
//
// Authorization is the API server's own: every request passes the generic filter chain, whose
// delegated authorizer (a SubjectAccessReview to kube-apiserver) checks the verb, resource and
// namespace parsed from the URL before this handler runs. Each query kind is a resource of the
// group, so RBAC works as for any API:
//
//	kubectl auth can-i get workloadresources.history.metrics.kapacitystack.io -n prod
//
// `get` on a named resource reads one pod, workload, object or metric; `list` reads what a
// labelSelector matches. Nothing is writable.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// Querier answers queries; *query.Engine implements it.
type Querier interface {
	Latest(ctx context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error)
	Range(ctx context.Context, q v1alpha1.Query, r v1alpha1.Range) ([]v1alpha1.Series, error)
}

// Install serves the API group on server: the query endpoints and their discovery documents
// (unaggregated /apis, /apis/<group>, /apis/<group>/<version>, and aggregated /apis).
func Install(server *genericapiserver.GenericAPIServer, querier Querier) error {
	h := &handler{querier: querier, now: time.Now}
	group := metav1.APIGroup{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:     v1alpha1.GroupName,
		Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: v1alpha1.SchemeGroupVersion.String(), Version: v1alpha1.Version}},
	}
	group.PreferredVersion = group.Versions[0]
	server.DiscoveryGroupManager.AddGroup(group)
	if server.AggregatedDiscoveryGroupManager != nil {
		server.AggregatedDiscoveryGroupManager.AddGroupVersion(v1alpha1.GroupName, apidiscoveryv2.APIVersionDiscovery{
			Version: v1alpha1.Version, Resources: aggregatedResources(), Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
		})
	}
	mux := server.Handler.NonGoRestfulMux
	mux.Handle("/apis/"+v1alpha1.GroupName, writeJSONHandler(group))
	mux.Handle("/apis/"+v1alpha1.GroupName+"/", writeJSONHandler(group))
	mux.Handle("/apis/"+v1alpha1.SchemeGroupVersion.String(), writeJSONHandler(resourceList()))
	mux.HandlePrefix("/apis/"+v1alpha1.SchemeGroupVersion.String()+"/", h)
	klog.InfoS("Serving the history API", "groupVersion", v1alpha1.SchemeGroupVersion.String())
	return nil
}

func resourceList() *metav1.APIResourceList {
	list := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: v1alpha1.SchemeGroupVersion.String(),
	}
	for _, k := range v1alpha1.Kinds {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: k.Resource(), Namespaced: true, Kind: v1alpha1.SeriesListKind,
			Verbs: metav1.Verbs{"get", "list"},
		})
	}
	return list
}

func aggregatedResources() []apidiscoveryv2.APIResourceDiscovery {
	var out []apidiscoveryv2.APIResourceDiscovery
	for _, r := range resourceList().APIResources {
		out = append(out, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			ResponseKind:     &metav1.GroupVersionKind{Group: v1alpha1.GroupName, Version: v1alpha1.Version, Kind: v1alpha1.SeriesListKind},
			Scope:            apidiscoveryv2.ScopeNamespace,
			SingularResource: r.Name,
			Verbs:            r.Verbs,
		})
	}
	return out
}

type handler struct {
	querier Querier
	now     func() time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The API server's filter chain recovers panics too (genericfilters.WithPanicRecovery); here
	// a panic becomes a Status the client can read, naming the request.
	defer func() {
		if p := recover(); p != nil {
			klog.ErrorS(fmt.Errorf("%v", p), "Recovered a panic in a history API handler", "path", r.URL.Path, "stack", string(debug.Stack()))
			writeError(w, apierrors.NewInternalError(fmt.Errorf("internal error serving %s", r.URL.Path)))
		}
	}()
	began := time.Now()
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok || !info.IsResourceRequest {
		writeError(w, apierrors.NewNotFound(v1alpha1.SchemeGroupVersion.WithResource("").GroupResource(), r.URL.Path))
		return
	}
	if !slices.Contains([]string{"get", "list"}, info.Verb) {
		writeError(w, apierrors.NewMethodNotSupported(v1alpha1.SchemeGroupVersion.WithResource(info.Resource).GroupResource(), info.Verb))
		return
	}
	if info.Subresource != "" || len(info.Parts) > 2 {
		writeError(w, apierrors.NewNotFound(v1alpha1.SchemeGroupVersion.WithResource(info.Resource).GroupResource(), r.URL.Path))
		return
	}
	q, rng, err := v1alpha1.ParseRequest(info.Namespace, info.Resource, info.Name, r.URL.Query(), h.now())
	if err != nil {
		writeError(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	if info.Namespace == "" && !q.Kind.ClusterScoped() {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("%s is namespaced: use /apis/%s/namespaces/<namespace>/%s", info.Resource, v1alpha1.SchemeGroupVersion, info.Resource)))
		return
	}
	var series []v1alpha1.Series
	if rng == nil {
		series, err = h.querier.Latest(r.Context(), q)
	} else {
		series, err = h.querier.Range(r.Context(), q, *rng)
	}
	if err != nil {
		klog.V(2).InfoS("History query failed", "kind", q.Kind, "namespace", q.Namespace, "name", q.Name, "err", err)
		writeError(w, err)
		return
	}
	klog.V(4).InfoS("History query", "kind", q.Kind, "namespace", q.Namespace, "name", q.Name, "range", rng != nil, "series", len(series), "took", time.Since(began))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := WriteSeriesList(w, series); err != nil {
		klog.V(2).InfoS("Writing a history API answer failed", "err", err)
	}
}

func writeJSONHandler(v any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, apierrors.NewMethodNotSupported(v1alpha1.SchemeGroupVersion.WithResource("").GroupResource(), r.Method))
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// writeError answers a metav1.Status, as Kubernetes APIs do, so kubectl and client-go show its
// message. Errors that are not API errors are internal.
func writeError(w http.ResponseWriter, err error) {
	status, ok := err.(apierrors.APIStatus)
	if !ok {
		status = apierrors.NewInternalError(err)
	}
	s := status.Status()
	s.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	code := int(s.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, &s)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.V(2).InfoS("Writing a history API answer failed", "err", err)
	}
}
