package stability

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/replicacalc"
)

// fakeMetrics serves fixed values in milli-units.
type fakeMetrics struct {
	resource, pods replicacalc.Samples
	object         int64
	external       int64
	err            error
}

func (f *fakeMetrics) PodResource(context.Context, string, labels.Selector, corev1.ResourceName, string) (replicacalc.Samples, error) {
	return f.resource, f.err
}

func (f *fakeMetrics) PodMetric(context.Context, string, labels.Selector, string, labels.Selector) (replicacalc.Samples, error) {
	return f.pods, f.err
}

func (f *fakeMetrics) ObjectMetric(context.Context, string, autoscalingv2.CrossVersionObjectReference, string, labels.Selector) (int64, error) {
	return f.object, f.err
}

func (f *fakeMetrics) ExternalMetric(context.Context, string, string, labels.Selector) (int64, error) {
	return f.external, f.err
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		}}}},
	}
}

func samples(values map[string]int64) replicacalc.Samples {
	out := replicacalc.Samples{}
	for k, v := range values {
		out[k] = replicacalc.Sample{Value: v}
	}
	return out
}

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func checker(action v1alpha1.StabilizationActionType, coolDown int32, rules ...v1alpha1.MetricSpec) v1alpha1.StabilityChecker {
	return v1alpha1.StabilityChecker{Type: v1alpha1.MetricsStabilityCheckerType, StabilizationAction: action, CoolDownSeconds: coolDown,
		Metrics: &v1alpha1.MetricsStabilityChecker{Metrics: rules}}
}

func podsRule(target string, op v1alpha1.Operator) v1alpha1.MetricSpec {
	return v1alpha1.MetricSpec{Name: "qps", Operator: op, MetricSpec: autoscalingv2.MetricSpec{
		Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q(target)}},
	}}
}

func TestCheck(t *testing.T) {
	online := []*corev1.Pod{pod("a"), pod("b"), pod("c")}
	// d is cut off: it gets no traffic and must not dilute the average.
	traffic := samples(map[string]int64{"a": 13000, "b": 14000, "c": 13000, "d": 0})
	cpuUtil := v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)}}}}
	externalAvg := v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("10")}}}}
	objectValue := v1alpha1.MetricSpec{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType,
		Object: &autoscalingv2.ObjectMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "latency"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: q("200m")}}}}

	tests := []struct {
		name       string
		metrics    *fakeMetrics
		checkers   []v1alpha1.StabilityChecker
		violations []string // messages' prefixes
		errors     int
		action     v1alpha1.StabilizationActionType // of Anomaly(); "" for none
		coolDown   time.Duration
	}{
		{name: "pods average over online pods exceeds", metrics: &fakeMetrics{pods: traffic},
			checkers:   []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionRollback, 60, podsRule("10", ""))},
			violations: []string{`qps (pods metric "qps" per online pod): 13.333 > 10`}, action: v1alpha1.StabilizationActionRollback, coolDown: time.Minute},
		{name: "pods average within target", metrics: &fakeMetrics{pods: traffic},
			checkers: []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 0, podsRule("15", ""))}},
		{name: "operator <", metrics: &fakeMetrics{pods: traffic},
			checkers:   []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 30, podsRule("15", v1alpha1.LessThan))},
			violations: []string{"qps"}, action: v1alpha1.StabilizationActionPause, coolDown: 30 * time.Second},
		{name: "cpu utilization of online pods", metrics: &fakeMetrics{resource: samples(map[string]int64{"a": 500, "b": 300, "c": 200, "d": 0})},
			checkers:   []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 10, cpuUtil)},
			violations: []string{"cpu utilization %: 66.666 > 60"}, action: v1alpha1.StabilizationActionPause, coolDown: 10 * time.Second},
		{name: "external per online pod", metrics: &fakeMetrics{external: 33000},
			checkers:   []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 10, externalAvg)},
			violations: []string{`external metric "rps" per online pod: 11 > 10`}, action: v1alpha1.StabilizationActionPause, coolDown: 10 * time.Second},
		{name: "object value", metrics: &fakeMetrics{object: 150},
			checkers: []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 10, objectValue)}},
		{name: "rollback wins over pause, longest cool-down", metrics: &fakeMetrics{pods: traffic, external: 33000},
			checkers: []v1alpha1.StabilityChecker{
				checker(v1alpha1.StabilizationActionPause, 300, externalAvg),
				checker(v1alpha1.StabilizationActionRollback, 20, podsRule("10", "")),
				checker(v1alpha1.StabilizationActionRollback, 40, podsRule("12", ">=")),
			},
			violations: []string{"external", "qps", "qps"}, action: v1alpha1.StabilizationActionRollback, coolDown: 40 * time.Second},
		{name: "metric errors are reported, not anomalies", metrics: &fakeMetrics{err: errors.New("no metrics")},
			checkers: []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionRollback, 60, podsRule("10", ""))}, errors: 1},
		{name: "external checkers are unsupported", metrics: &fakeMetrics{},
			checkers: []v1alpha1.StabilityChecker{{Type: v1alpha1.ExternalStabilityCheckerType, StabilizationAction: v1alpha1.StabilizationActionPause,
				External: &v1alpha1.ExternalStabilityChecker{Name: "x"}}}, errors: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(context.Background(), tt.metrics, tt.checkers, Target{Namespace: "ns", Selector: labels.Everything(), Online: online})
			if len(res.Violations) != len(tt.violations) {
				t.Fatalf("violations %+v, want %d", res.Violations, len(tt.violations))
			}
			for i, v := range res.Violations {
				if !strings.HasPrefix(v.Message, tt.violations[i]) {
					t.Errorf("violation %d: %q, want prefix %q", i, v.Message, tt.violations[i])
				}
			}
			if len(res.Errors) != tt.errors {
				t.Errorf("errors %v, want %d", res.Errors, tt.errors)
			}
			a := res.Anomaly()
			switch {
			case tt.action == "" && len(tt.violations) == 0 && a != nil:
				t.Errorf("anomaly %+v, want none", a)
			case tt.action != "" && (a == nil || a.Action != tt.action || a.CoolDown != tt.coolDown):
				t.Errorf("anomaly %+v, want %s for %s", a, tt.action, tt.coolDown)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b int64
		op   v1alpha1.Operator
		want bool
	}{
		{1, 1, v1alpha1.Equals, true}, {2, 1, v1alpha1.GreaterThan, true}, {1, 1, v1alpha1.GreaterThan, false},
		{0, 1, v1alpha1.LessThan, true}, {1, 1, v1alpha1.GreaterThanOrEquals, true}, {2, 1, v1alpha1.LessThanOrEquals, false},
	}
	for _, tt := range tests {
		got, err := Compare(tt.a, tt.op, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("%d %s %d = %v, %v; want %v", tt.a, tt.op, tt.b, got, err, tt.want)
		}
	}
	if _, err := Compare(1, "!=", 1); err == nil {
		t.Error("unknown operator accepted")
	}
}

func TestCheckWithoutOnlinePods(t *testing.T) {
	res := Check(context.Background(), &fakeMetrics{}, []v1alpha1.StabilityChecker{checker(v1alpha1.StabilizationActionPause, 0, podsRule("1", ""))}, Target{Selector: labels.Everything()})
	if len(res.Errors) != 1 || len(res.Violations) != 0 {
		t.Errorf("result %+v, want one error and no violation", res)
	}
}
