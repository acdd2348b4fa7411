// Package stability evaluates an autoscaler's stability checkers (Kapacity has the API but never
// implemented it): each Metrics checker's rules read "<actual> <operator> <target>" and describe an
// anomaly, with the actual value measured over the workload's Online pods only, the pods that
// serve traffic. A gray scale-down that leaves too few of them overloaded shows up that way.
//
// What to do about an anomaly is podstate.Stabilize's business; this package only detects it.
package stability

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/hportrait"
	"github.com/kapacitystack/kapacity/executor/replicacalc"
)

// Target is the workload whose pods the rules measure.
type Target struct {
	Namespace string
	// Selector selects all the workload's pods (the metrics APIs are asked with it).
	Selector labels.Selector
	// Online are the pods serving traffic; per-pod values are averaged over them.
	Online []*corev1.Pod
}

// Violation is a rule that holds: an anomaly.
type Violation struct {
	// Checker is the index of the checker in the list given to Check; Rule the rule's index.
	Checker, Rule int
	Action        v1alpha1.StabilizationActionType
	CoolDown      time.Duration
	// Message says what was measured, e.g. `pods metric "qps": 16.667 > 15`.
	Message string
}

// Result is the outcome of one check.
type Result struct {
	// Violations are the rules that hold, in the checkers' order.
	Violations []Violation
	// Errors are the rules that could not be evaluated (a missing metric, an External checker).
	// They are not anomalies: a checker that cannot see must not stop a change forever.
	Errors []error
}

// Anomaly summarises the violations as the stabilization to apply: Rollback wins over Pause, and
// the longest cool-down of the winning action applies. Nil when there is no violation.
func (r Result) Anomaly() *Violation {
	var out *Violation
	for i := range r.Violations {
		v := r.Violations[i]
		switch {
		case out == nil, v.Action == v1alpha1.StabilizationActionRollback && out.Action != v1alpha1.StabilizationActionRollback:
			out = &v
		case v.Action == out.Action && v.CoolDown > out.CoolDown:
			out.CoolDown = v.CoolDown
		}
	}
	return out
}

// Check evaluates the checkers' rules.
func Check(ctx context.Context, m hportrait.MetricsClient, checkers []v1alpha1.StabilityChecker, t Target) Result {
	var res Result
	for i := range checkers {
		c := &checkers[i]
		switch c.Type {
		case v1alpha1.MetricsStabilityCheckerType:
		case v1alpha1.ExternalStabilityCheckerType:
			res.Errors = append(res.Errors, fmt.Errorf("checker %d: External checkers are not supported by this manager", i))
			continue
		default:
			res.Errors = append(res.Errors, fmt.Errorf("checker %d: unknown type %q", i, c.Type))
			continue
		}
		if c.Metrics == nil || len(c.Metrics.Metrics) == 0 {
			res.Errors = append(res.Errors, fmt.Errorf("checker %d: no metrics", i))
			continue
		}
		for j := range c.Metrics.Metrics {
			rule := &c.Metrics.Metrics[j]
			actual, target, what, err := measure(ctx, m, &rule.MetricSpec, t)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Errorf("checker %d rule %d (%s): %w", i, j, rule.Type, err))
				continue
			}
			op := rule.Operator
			if op == "" {
				op = v1alpha1.GreaterThan
			}
			holds, err := Compare(actual, op, target)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Errorf("checker %d rule %d: %w", i, j, err))
				continue
			}
			if holds {
				name := what
				if rule.Name != "" {
					name = fmt.Sprintf("%s (%s)", rule.Name, what)
				}
				res.Violations = append(res.Violations, Violation{
					Checker: i, Rule: j, Action: c.StabilizationAction,
					CoolDown: time.Duration(c.CoolDownSeconds) * time.Second,
					Message:  fmt.Sprintf("%s: %s %s %s", name, milli(actual), op, milli(target)),
				})
			}
		}
	}
	return res
}

// Compare tells whether "actual op target" holds.
func Compare(actual int64, op v1alpha1.Operator, target int64) (bool, error) {
	switch op {
	case v1alpha1.Equals:
		return actual == target, nil
	case v1alpha1.GreaterThan:
		return actual > target, nil
	case v1alpha1.LessThan:
		return actual < target, nil
	case v1alpha1.GreaterThanOrEquals:
		return actual >= target, nil
	case v1alpha1.LessThanOrEquals:
		return actual <= target, nil
	default:
		return false, fmt.Errorf("unknown operator %q", op)
	}
}

// measure returns the rule's actual and target values in milli-units (utilization in milli-percent)
// and a description of the quantity.
func measure(ctx context.Context, m hportrait.MetricsClient, spec *autoscalingv2.MetricSpec, t Target) (actual, target int64, what string, err error) {
	if len(t.Online) == 0 {
		return 0, 0, "", errors.New("no online pods to measure")
	}
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		name, container, tgt, err := hportrait.ResourceSource(spec)
		if err != nil {
			return 0, 0, "", err
		}
		samples, err := m.PodResource(ctx, t.Namespace, t.Selector, name, container)
		if err != nil {
			return 0, 0, "", err
		}
		switch {
		case tgt.AverageUtilization != nil:
			requests, err := replicacalc.Requests(t.Online, name, container)
			if err != nil {
				return 0, 0, "", err
			}
			var usage, request int64
			for _, p := range t.Online {
				if s, ok := samples[p.Name]; ok {
					usage += s.Value
					request += requests[p.Name]
				}
			}
			if request == 0 {
				return 0, 0, "", fmt.Errorf("no %s samples for the online pods", name)
			}
			return usage * 100 * 1000 / request, int64(*tgt.AverageUtilization) * 1000, fmt.Sprintf("%s utilization %%", name), nil
		case tgt.AverageValue != nil:
			avg, err := average(samples, t.Online)
			if err != nil {
				return 0, 0, "", err
			}
			return avg, tgt.AverageValue.MilliValue(), fmt.Sprintf("%s per online pod", name), nil
		default:
			return 0, 0, "", errors.New("a resource rule needs an averageUtilization or averageValue target")
		}
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods == nil || spec.Pods.Target.AverageValue == nil {
			return 0, 0, "", errors.New("a pods rule needs an averageValue target")
		}
		sel, err := selector(spec.Pods.Metric.Selector)
		if err != nil {
			return 0, 0, "", err
		}
		samples, err := m.PodMetric(ctx, t.Namespace, t.Selector, spec.Pods.Metric.Name, sel)
		if err != nil {
			return 0, 0, "", err
		}
		avg, err := average(samples, t.Online)
		if err != nil {
			return 0, 0, "", err
		}
		return avg, spec.Pods.Target.AverageValue.MilliValue(), fmt.Sprintf("pods metric %q per online pod", spec.Pods.Metric.Name), nil
	case autoscalingv2.ObjectMetricSourceType:
		if spec.Object == nil {
			return 0, 0, "", errors.New("no object block")
		}
		sel, err := selector(spec.Object.Metric.Selector)
		if err != nil {
			return 0, 0, "", err
		}
		v, err := m.ObjectMetric(ctx, t.Namespace, spec.Object.DescribedObject, spec.Object.Metric.Name, sel)
		if err != nil {
			return 0, 0, "", err
		}
		return total(v, spec.Object.Target, len(t.Online), fmt.Sprintf("object metric %q", spec.Object.Metric.Name))
	case autoscalingv2.ExternalMetricSourceType:
		if spec.External == nil {
			return 0, 0, "", errors.New("no external block")
		}
		sel, err := selector(spec.External.Metric.Selector)
		if err != nil {
			return 0, 0, "", err
		}
		v, err := m.ExternalMetric(ctx, t.Namespace, spec.External.Metric.Name, sel)
		if err != nil {
			return 0, 0, "", err
		}
		return total(v, spec.External.Target, len(t.Online), fmt.Sprintf("external metric %q", spec.External.Metric.Name))
	default:
		return 0, 0, "", fmt.Errorf("unknown metric source type %q", spec.Type)
	}
}

// total compares a single value with a value target, or its share per online pod with an
// averageValue target.
func total(v int64, tgt autoscalingv2.MetricTarget, online int, what string) (int64, int64, string, error) {
	switch {
	case tgt.Value != nil:
		return v, tgt.Value.MilliValue(), what, nil
	case tgt.AverageValue != nil:
		return v / int64(online), tgt.AverageValue.MilliValue(), what + " per online pod", nil
	default:
		return 0, 0, "", errors.New("the rule needs a value or averageValue target")
	}
}

// average is the mean sample over the online pods that have one.
func average(samples replicacalc.Samples, online []*corev1.Pod) (int64, error) {
	var sum, n int64
	for _, p := range online {
		if s, ok := samples[p.Name]; ok {
			sum += s.Value
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no samples for the online pods")
	}
	return sum / n, nil
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("invalid metric selector: %w", err)
	}
	return sel, nil
}

func milli(v int64) string {
	return strconv.FormatFloat(float64(v)/1000, 'f', -1, 64)
}
