package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/promql"
	"github.com/kapacitystack/kapacity/adapter/resourcequery"
)

// ReadyPodsOnlyLabel is the metric-selector key that asks for a workload aggregate over ready
// pods only, e.g. an HPA Object metric with `selector: {matchLabels:
// {"kapacitystack.io/ready-pods-only": "true"}}`. It is never passed to Prometheus (a label name
// with a slash cannot exist there).
const ReadyPodsOnlyLabel = "kapacitystack.io/ready-pods-only"

// Workload aggregates join on kube-state-metrics' readiness series, whose pod and namespace
// labels are fixed.
const (
	readinessSeries    = `kube_pod_status_ready{condition="true"}`
	readinessPodLabel  = "pod"
	readinessNamespace = "namespace"
)

// workloadAggregate serves a pod metric summed over a workload's pods, which are recognised by
// name (workloadPodNamePatterns), so that a native HPA can target a workload-level metric with an
// Object metric on e.g. deployments.apps/web.
type workloadAggregate struct {
	kind    schema.GroupKind
	pods    naming.SeriesRef
	builder *resourcequery.Builder
}

func (c *Custom) workloadValues(ctx context.Context, req *customRequest, namespace string, names []string, metricSelector labels.Selector, at time.Time) (map[string]model.SampleValue, error) {
	readyOnly, selector, err := splitReadyPodsOnly(metricSelector)
	if err != nil {
		return nil, badRequest(req.metric, err)
	}
	queries := make([]string, len(names))
	for i, name := range names {
		if queries[i], err = req.workload.query(namespace, name, selector, readyOnly); err != nil {
			return nil, badRequest(req.metric, err)
		}
	}
	values := make(map[string]model.SampleValue, len(names))
	var mu sync.Mutex
	for i, query := range queries {
		// One query per workload: each has its own pod-name pattern.
		err := c.runAll(ctx, []string{query}, at, func(vector model.Vector) {
			mu.Lock()
			defer mu.Unlock()
			if len(vector) == 1 && measured(vector[0].Value) {
				values[names[i]] = vector[0].Value
			}
		})
		if err != nil {
			return nil, fetchError(req.metric, err)
		}
	}
	return values, nil
}

// query renders the aggregate for one workload: the rule's own metrics query grouped by
// namespace over the pods whose names match the workload's pattern; with readyOnly, grouped by
// pod first and joined with the readiness series.
func (w *workloadAggregate) query(namespace, name string, metricSelector labels.Selector, readyOnly bool) (string, error) {
	if w.builder == nil {
		return "", fmt.Errorf("workload aggregates need workloadPodNamePatterns and resourceRules in the config")
	}
	rule := w.pods.Rule
	podLabel, err := rule.Resources.LabelForResource(podsResource)
	if err != nil {
		return "", err
	}
	nsLabel, err := rule.Resources.LabelForResource(namespacesResource)
	if err != nil {
		return "", err
	}
	podMatcher, err := w.builder.PodNameMatcher(w.kind, name)
	if err != nil {
		return "", err
	}
	podMatcher.Name = podLabel
	nsMatcher := promql.Matcher{Name: nsLabel, Type: promql.MatchEqual, Value: namespace}
	groupBy := []string{nsLabel}
	if readyOnly {
		if podLabel != readinessPodLabel || nsLabel != readinessNamespace {
			return "", fmt.Errorf("%s needs the metric's pod and namespace labels to be %q and %q, as in kube-state-metrics; the rule uses %q and %q",
				ReadyPodsOnlyLabel, readinessPodLabel, readinessNamespace, podLabel, nsLabel)
		}
		groupBy = []string{nsLabel, podLabel}
	}
	perGroup, err := rule.Query.BuildExternal(naming.ExternalQuery{
		Series:         w.pods.SeriesName,
		GroupBy:        strings.Join(groupBy, ","),
		GroupBySlice:   groupBy,
		MetricSelector: metricSelector,
		ExtraMatchers:  []promql.Matcher{podMatcher, nsMatcher},
	})
	if err != nil {
		return "", err
	}
	if !readyOnly {
		// The template already groups by namespace; the outer sum guards templates that
		// ignore .GroupBy, so the answer is always one sample.
		return fmt.Sprintf("sum by (%s) (%s)", nsLabel, perGroup), nil
	}
	readiness, err := promql.RenderMatchers([]promql.Matcher{podMatcher, nsMatcher})
	if err != nil {
		return "", err
	}
	ready := strings.Replace(readinessSeries, "}", ","+readiness+"}", 1)
	return fmt.Sprintf("sum by (%[1]s) ((%[3]s) * on (%[1]s, %[2]s) group_left () (max by (%[1]s, %[2]s) (%[4]s) == 1))",
		nsLabel, podLabel, perGroup, ready), nil
}

// splitReadyPodsOnly removes ReadyPodsOnlyLabel from a metric selector and reports its value.
func splitReadyPodsOnly(selector labels.Selector) (bool, labels.Selector, error) {
	if selector == nil {
		return false, labels.Everything(), nil
	}
	reqs, _ := selector.Requirements()
	rest := labels.NewSelector()
	readyOnly := false
	for _, r := range reqs {
		if r.Key() != ReadyPodsOnlyLabel {
			rest = rest.Add(r)
			continue
		}
		values := r.Values().List()
		if (r.Operator() != selection.Equals && r.Operator() != selection.DoubleEquals) || len(values) != 1 ||
			(values[0] != "true" && values[0] != "false") {
			return false, nil, fmt.Errorf("%s must be given as %s=true or %s=false", ReadyPodsOnlyLabel, ReadyPodsOnlyLabel, ReadyPodsOnlyLabel)
		}
		readyOnly = values[0] == "true"
	}
	return readyOnly, rest, nil
}
