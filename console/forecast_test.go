package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/config/portraitresult"
)

// predictiveObjects are an IHPA with a Predictive provider, its portrait (traffic metric "qps",
// spec.metrics[2]) and, when data is not nil, the portrait's result ConfigMap.
func predictiveObjects(data map[string]string) []client.Object {
	ihpa := cronIHPA()
	ihpa.UID = "ihpa-uid"
	spec := v1alpha1.PortraitSpec{PortraitType: v1alpha1.PredictivePortraitType, Metrics: []v1alpha1.MetricSpec{
		{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU}}},
		{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "kube_pod_status_ready"}}}},
		{Name: "qps", MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "http_requests"}}}},
	}}
	ihpa.Spec.PortraitProviders = append(ihpa.Spec.PortraitProviders, v1alpha1.HorizontalPortraitProvider{
		Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 3, Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: spec}})
	hp := &v1alpha1.HorizontalPortrait{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "batch-predictive", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "IntelligentHorizontalPodAutoscaler", Name: ihpa.Name, UID: ihpa.UID, Controller: ptr.To(true)}}},
		Spec: v1alpha1.HorizontalPortraitSpec{ScaleTargetRef: ihpa.Spec.ScaleTargetRef, PortraitSpec: spec}}
	objs := []client.Object{ihpa, hp}
	if data != nil {
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "batch-predictive-result"}, Data: data})
	}
	return objs
}

// result is what kapacity recommend writes: a forecast over the next hours, with the median
// unless olderJob.
func result(t *testing.T, expire time.Time, olderJob bool) map[string]string {
	t.Helper()
	band := &portraitresult.Band{Quantile: 0.9, Upper: map[string][]portraitresult.Point{}, Median: map[string][]portraitresult.Point{}}
	for h := range 6 {
		at := t0.Truncate(time.Hour).Add(time.Duration(h+1) * time.Hour)
		band.Upper["qps"] = append(band.Upper["qps"], portraitresult.Point{Time: at, Value: 120 + float64(h)})
		band.Median["qps"] = append(band.Median["qps"], portraitresult.Point{Time: at, Value: 80 + float64(h)})
	}
	if olderJob {
		band.Median = nil
	}
	data, err := portraitresult.Encode(portraitresult.Result{ExpireTime: expire,
		Replicas: []v1alpha1.ReplicaTimeSeriesPoint{{Timestamp: t0.Unix(), Replicas: 2}}, Band: band})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// detailServer serves the detail page and API from a fake cluster at t0, without the history API.
func detailServer(t *testing.T, c client.Client) *Server {
	t.Helper()
	p, err := newPages()
	if err != nil {
		t.Fatal(err)
	}
	return &Server{opts: Options{Now: func() time.Time { return t0 }, Refresh: 30 * time.Second}, pages: p, costs: newCostCache(),
		users: &userClusters{local: &Cluster{Client: c}}}
}

func fetch(t *testing.T, handler http.HandlerFunc, path string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetPathValue("namespace", "demo")
	req.SetPathValue("name", "batch")
	rec := httptest.NewRecorder()
	handler(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestDetailDrawsTheForecast: the IHPA page draws the traffic forecast the result ConfigMap holds
// (median and upper band, named by its quantile) and says what it shows; a result without a band,
// an older job's band without median, no result, an expired or unreadable one, or a ConfigMap the
// user may not read are each said, and the rest of the page still shows.
func TestDetailDrawsTheForecast(t *testing.T) {
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	withoutBand := result(t, t0.Add(6*time.Hour), false)
	delete(withoutBand, portraitresult.KeyTrafficBand)
	forbidden := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.ConfigMap); ok {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, key.Name, fmt.Errorf("RBAC"))
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	for _, tc := range []struct {
		name        string
		data        map[string]string
		intercept   *interceptor.Funcs
		series      []string // data-series on the traffic chart
		noteHas     string
		errorHas    string
		captionHas  string
		wantToAfter time.Duration // how far right of now the traffic chart reaches
	}{
		{name: "median and band", data: result(t, t0.Add(6*time.Hour), false),
			series: []string{"median forecast", "0.9 quantile (upper band)"}, noteHas: "its median and its 0.9 quantile",
			captionHas: "the median (dashed) and the 0.9 quantile, the upper band (dotted); expires 2026-03-02 16:03 UTC", wantToAfter: 6*time.Hour - 3*time.Minute},
		{name: "an older job's band, without median", data: result(t, t0.Add(6*time.Hour), true),
			series: []string{"0.9 quantile (upper band)"}, noteHas: "the median forecast is not stored by the job that wrote it", wantToAfter: 6*time.Hour - 3*time.Minute},
		{name: "expired", data: result(t, t0.Add(-time.Minute), false),
			series: []string{"median forecast", "0.9 quantile (upper band)"}, noteHas: "It expired at 2026-03-02T10:02:00Z", captionHas: "expired 2026-03-02 10:02 UTC",
			wantToAfter: 6*time.Hour - 3*time.Minute},
		{name: "no band", data: withoutBand, noteHas: "holds replicas only (no trafficBand"},
		{name: "no result yet", noteHas: "has written no result yet (ConfigMap batch-predictive-result)"},
		{name: "band unreadable", data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1": 1}`, "trafficBand": `{"quantile": 0.9, "metrics": {"qps": {"1": -1}}}`},
			errorHas: `ConfigMap batch-predictive-result: trafficBand: metrics of &#34;qps&#34; at 1 is -1`},
		{name: "band of another metric", data: map[string]string{"type": "TimeSeries", "timeSeries": `{"1": 1}`, "trafficBand": `{"quantile": 0.9, "metrics": {"rps": {"1": 1}}}`},
			errorHas: `no band for the metric &#34;qps&#34;`},
		{name: "ConfigMaps forbidden", data: result(t, t0.Add(6*time.Hour), false), intercept: &forbidden, errorHas: "reading the forecast in ConfigMap batch-predictive-result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(predictiveObjects(tc.data)...)
			if tc.intercept != nil {
				b = b.WithInterceptorFuncs(*tc.intercept)
			}
			s := detailServer(t, b.Build())
			page := fetch(t, s.detailPage, "/ihpas/demo/batch")
			for _, name := range tc.series {
				if !strings.Contains(page, `data-series="`+name+`"`) {
					t.Errorf("the traffic chart lacks the line %q", name)
				}
			}
			if len(tc.series) == 0 && strings.Contains(page, "(upper band)") {
				t.Error("a band is drawn where there is none")
			}
			if !strings.Contains(page, `data-field="forecastNotice"`) || !strings.Contains(page, strings.ReplaceAll(tc.noteHas, `"`, "&#34;")) {
				t.Errorf("the page does not say %q", tc.noteHas)
			}
			if tc.errorHas != "" && (!strings.Contains(page, `data-field="forecastError"`) || !strings.Contains(page, tc.errorHas)) {
				t.Errorf("the page does not report %q", tc.errorHas)
			}
			if !strings.Contains(page, `data-field="title"`) || !strings.Contains(page, "without the history API") {
				t.Error("the rest of the page (title, the traffic history's error) is missing")
			}
			if !strings.Contains(page, tc.captionHas) {
				t.Errorf("the caption does not say %q", tc.captionHas)
			}

			var d struct {
				Traffic *struct {
					To     time.Time `json:"To"`
					Series []Series  `json:"series"`
				} `json:"traffic"`
				Forecast *Forecast `json:"forecast"`
			}
			if err := json.Unmarshal([]byte(fetch(t, s.detailAPI, "/api/v1/namespaces/demo/ihpas/batch")), &d); err != nil {
				t.Fatal(err)
			}
			if len(tc.series) == 0 {
				if d.Forecast != nil || d.Traffic != nil {
					t.Errorf("forecast %+v, traffic %+v: want none", d.Forecast, d.Traffic)
				}
				return
			}
			if d.Forecast == nil || d.Forecast.Quantile != 0.9 || len(d.Forecast.Upper) != 6 || d.Forecast.Upper[0].V != 120 {
				t.Fatalf("forecast %+v", d.Forecast)
			}
			if got := d.Traffic.To.Sub(t0.Truncate(historyEndRounding)); got != tc.wantToAfter {
				t.Errorf("the traffic chart reaches %v right of now, want %v (the forecast's last point)", got, tc.wantToAfter)
			}
		})
	}
}

// TestForecastReachesADayAhead: a forecast longer than a day is drawn a day ahead; the points
// outside the chart are left out of its lines.
func TestForecastReachesADayAhead(t *testing.T) {
	f := &Forecast{Metric: "qps", Quantile: 0.95}
	for h := range 72 {
		f.Upper = append(f.Upper, Point{T: t0.Add(time.Duration(h-12) * time.Hour), V: 1})
	}
	tr := withForecast(nil, f, t0.Add(-trafficSpan), t0)
	if !tr.To.Equal(t0.Add(trafficFuture)) || len(tr.Series) != 1 || tr.Series[0].Name != "0.95 quantile (upper band)" || len(tr.Series[0].Points) != 12+24+1 {
		t.Errorf("traffic %v to %v, series %+v", tr.From, tr.To, tr.Series)
	}
}
