package provider

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

type fakePortraits struct {
	items []*v1alpha1.HorizontalPortrait
	err   error
}

func (f fakePortraits) ListPortraits(namespace string) ([]*v1alpha1.HorizontalPortrait, error) {
	var out []*v1alpha1.HorizontalPortrait
	for _, hp := range f.items {
		if hp.Namespace == namespace {
			out = append(out, hp)
		}
	}
	return out, f.err
}

func portraitWith(name, workload string, data *v1alpha1.HorizontalPortraitData) *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: v1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: workload},
			PortraitSpec:   v1alpha1.PortraitSpec{PortraitType: "Predictive"},
		},
		Status: v1alpha1.HorizontalPortraitStatus{PortraitData: data},
	}
}

func timeSeries(points ...v1alpha1.ReplicaTimeSeriesPoint) *v1alpha1.HorizontalPortraitData {
	return &v1alpha1.HorizontalPortraitData{
		Type:       v1alpha1.TimeSeriesHorizontalPortraitDataType,
		TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: points},
	}
}

func TestPredictedReplicas(t *testing.T) {
	now := testNow
	past := metav1.NewTime(now.Add(-time.Minute))
	portraits := fakePortraits{items: []*v1alpha1.HorizontalPortrait{
		portraitWith("web-predictive", "web", timeSeries(
			v1alpha1.ReplicaTimeSeriesPoint{Timestamp: now.Add(-10 * time.Minute).Unix(), Replicas: 3},
			v1alpha1.ReplicaTimeSeriesPoint{Timestamp: now.Add(-time.Minute).Unix(), Replicas: 5},
			v1alpha1.ReplicaTimeSeriesPoint{Timestamp: now.Add(10 * time.Minute).Unix(), Replicas: 9},
		)),
		portraitWith("api-static", "api", &v1alpha1.HorizontalPortraitData{
			Type: v1alpha1.StaticHorizontalPortraitDataType, Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 2},
		}),
		portraitWith("old-predictive", "old", &v1alpha1.HorizontalPortraitData{
			Type: v1alpha1.StaticHorizontalPortraitDataType, Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 7},
			ExpireTime: &past,
		}),
		portraitWith("empty", "empty", nil),
	}}
	tests := []struct {
		name     string
		selector string
		want     map[string]string // portrait -> value
		wantCode int32
	}{
		{name: "one workload: the point in force now", selector: "workload_name=web", want: map[string]string{"web-predictive": "5"}},
		{name: "by portrait name", selector: "portrait=api-static", want: map[string]string{"api-static": "2"}},
		{name: "all valid portraits", selector: "", want: map[string]string{"web-predictive": "5", "api-static": "2"}},
		{name: "expired data is no prediction, not 0", selector: "workload_name=old", wantCode: http.StatusNotFound},
		{name: "no data yet", selector: "portrait=empty", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewExternal(&fakeRegistry{}, &fakeQuerier{}, namingtest.NewRESTMapper(), portraits, NewMetrics(prometheus.NewRegistry()),
				Options{Now: func() time.Time { return now }})
			selector, err := labels.Parse(tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			list, err := e.GetExternalMetric(t.Context(), "ns", selector, cmprovider.ExternalMetricInfo{Metric: PredictedReplicasMetric})
			if tt.wantCode != 0 {
				var status *apierrors.StatusError
				if !errors.As(err, &status) || status.ErrStatus.Code != tt.wantCode {
					t.Fatalf("error = %v, want HTTP %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, item := range list.Items {
				got[item.MetricLabels[LabelPortrait]] = item.Value.String()
				if item.MetricLabels[LabelWorkloadKind] != "Deployment" || item.MetricLabels[LabelNamespace] != "ns" {
					t.Errorf("labels = %v", item.MetricLabels)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestPredictedReplicasListedAndFailures(t *testing.T) {
	e := NewExternal(&fakeRegistry{}, &fakeQuerier{}, namingtest.NewRESTMapper(), fakePortraits{err: errors.New("CRD missing")},
		NewMetrics(prometheus.NewRegistry()), Options{Now: func() time.Time { return testNow }})
	found := false
	for _, m := range e.ListAllExternalMetrics() {
		found = found || m.Metric == PredictedReplicasMetric
	}
	if !found {
		t.Fatalf("%s not listed before discovery", PredictedReplicasMetric)
	}
	_, err := e.GetExternalMetric(t.Context(), "ns", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: PredictedReplicasMetric})
	if err == nil || !strings.Contains(err.Error(), "CRD missing") || apierrors.IsNotFound(err) {
		t.Fatalf("a failing portrait list must be an error naming the cause, got %v", err)
	}
}
