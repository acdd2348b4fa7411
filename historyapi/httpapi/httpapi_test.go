package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

type fakeQuerier struct {
	got    v1alpha1.Query
	ranged bool
	err    error
}

func (f *fakeQuerier) Latest(_ context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error) {
	f.got = q
	return []v1alpha1.Series{{Labels: map[string]string{"namespace": q.Namespace}, Points: []v1alpha1.Point{{Timestamp: 1, Value: 2}}}}, f.err
}

func (f *fakeQuerier) Range(_ context.Context, q v1alpha1.Query, _ v1alpha1.Range) ([]v1alpha1.Series, error) {
	f.got, f.ranged = q, true
	return nil, f.err
}

// serve runs the handler on a request the way the API server's filter chain hands it over: with
// RequestInfo parsed from the URL (and authorized on it).
func serve(t *testing.T, q Querier, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	info, err := resolver.NewRequestInfo(req)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(request.WithRequestInfo(req.Context(), info))
	w := httptest.NewRecorder()
	(&handler{querier: q, now: time.Now}).ServeHTTP(w, req)
	return w
}

const base = "/apis/history.metrics.kapacitystack.io/v1alpha1"

func TestHandler(t *testing.T) {
	tests := []struct {
		name, method, target string
		err                  error
		wantCode             int
		wantBody             string
	}{
		{"latest", "GET", base + "/namespaces/prod/workloadresources/web?kind=Deployment.apps&resource=cpu", nil, 200, `"series":[{"labels":{"namespace":"prod"},"points":[{"timestamp":1,"value":2}]}]`},
		{"range", "GET", base + "/namespaces/prod/workloadresources/web?kind=Deployment.apps&resource=cpu&start=0&end=60&step=1m", nil, 200, `"kind":"SeriesList"`},
		{"list by selector", "GET", base + "/namespaces/prod/podresources?labelSelector=app%3Dweb&resource=cpu", nil, 200, `"series":`},
		{"engine error keeps its code", "GET", base + "/namespaces/prod/workloadresources/web?resource=gpu", apierrors.NewBadRequest(`unsupported resource "gpu"`), 400, `unsupported resource \"gpu\"`},
		{"bad parameter", "GET", base + "/namespaces/prod/workloadresources/web?start=x&step=1m", nil, 400, `neither RFC 3339`},
		{"unknown resource", "GET", base + "/namespaces/prod/widgets/web", nil, 400, `unknown resource \"widgets\"`},
		{"namespaced resource without namespace", "GET", base + "/workloadresources/web", nil, 400, "workloadresources is namespaced"},
		{"write", "POST", base + "/namespaces/prod/workloadresources/web", nil, 405, "MethodNotAllowed"},
		{"subresource", "GET", base + "/namespaces/prod/workloadresources/web/status", nil, 404, "NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, &fakeQuerier{err: tc.err}, tc.method, tc.target)
			if w.Code != tc.wantCode || !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Errorf("%d %s, want %d containing %s", w.Code, w.Body, tc.wantCode, tc.wantBody)
			}
			if w.Code != 200 {
				var s metav1.Status
				if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.Kind != "Status" || int(s.Code) != tc.wantCode {
					t.Errorf("error body is not a Status: %s (%v)", w.Body, err)
				}
			}
		})
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	list := resourceList()
	if len(list.APIResources) != len(v1alpha1.Kinds) {
		t.Errorf("%d resources, want %d", len(list.APIResources), len(v1alpha1.Kinds))
	}
	for _, r := range list.APIResources {
		if !r.Namespaced || strings.Join(r.Verbs, ",") != "get,list" {
			t.Errorf("resource %+v", r)
		}
	}
	if got := len(aggregatedResources()); got != len(v1alpha1.Kinds) {
		t.Errorf("aggregated discovery has %d resources", got)
	}
	w := httptest.NewRecorder()
	writeJSONHandler(list).ServeHTTP(w, httptest.NewRequest(http.MethodGet, base, nil))
	if !strings.Contains(w.Body.String(), `"name":"workloadexternalmetrics"`) {
		t.Errorf("resource list: %s", w.Body)
	}
}

type panicQuerier struct{ fakeQuerier }

func (*panicQuerier) Latest(context.Context, v1alpha1.Query) ([]v1alpha1.Series, error) {
	panic("boom")
}

// TestHandlerPanicIsA500: a panicking querier answers a 500 Status, and the handler serves on.
func TestHandlerPanicIsA500(t *testing.T) {
	w := serve(t, &panicQuerier{}, "GET", base+"/namespaces/prod/workloadresources/web?kind=Deployment.apps&resource=cpu")
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"kind":"Status"`) {
		t.Fatalf("%d %s, want a 500 Status", w.Code, w.Body)
	}
	if w := serve(t, &fakeQuerier{}, "GET", base+"/namespaces/prod/workloadresources/web?kind=Deployment.apps&resource=cpu"); w.Code != 200 {
		t.Fatalf("after a panic: %d %s", w.Code, w.Body)
	}
}
