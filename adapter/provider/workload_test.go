package provider

import (
	"context"
	"math"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// Workload aggregates: an Object metric on a workload is its pods' metric summed over the pods
// whose names match the kind's workloadPodNamePatterns entry (spec §2.2), optionally only over
// ready pods (joined with kube-state-metrics' kube_pod_status_ready).
func TestWorkloadAggregate(t *testing.T) {
	const (
		webPods = `pod=~"^web-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"`
		plain   = `sum by (namespace) (sum(container_some_usage{namespace="ns",` + webPods + `,container!="POD"}) by (namespace))`
		ready   = `sum by (namespace) ((sum(container_some_usage{namespace="ns",` + webPods + `,container!="POD"}) by (namespace,pod))` +
			` * on (namespace, pod) group_left () (max by (namespace, pod) (kube_pod_status_ready{condition="true",` + webPods + `,namespace="ns"}) == 1))`
	)
	tests := []struct {
		name        string
		gr          schema.GroupResource
		workload    string
		metric      string
		selector    string
		wantQuery   string
		answer      answer
		wantKind    string
		wantValue   string
		wantCode    int32
		wantMessage string
	}{
		{name: "deployment", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{value: vector(sample(3.5, "namespace", "ns"))},
			wantKind: "Deployment", wantValue: "3500m"},
		{name: "deployment, singular resource", gr: schema.GroupResource{Group: "apps", Resource: "deployment"}, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{value: vector(sample(3.5, "namespace", "ns"))},
			wantKind: "Deployment", wantValue: "3500m"},
		{name: "ready pods only", gr: deployments, workload: "web", metric: "some_usage", selector: ReadyPodsOnlyLabel + "=true",
			wantQuery: ready, answer: answer{value: vector(sample(2, "namespace", "ns"))},
			wantKind: "Deployment", wantValue: "2"},
		{name: "ready pods only false is the plain aggregate", gr: deployments, workload: "web", metric: "some_usage", selector: ReadyPodsOnlyLabel + "=false",
			wantQuery: plain, answer: answer{value: vector(sample(1, "namespace", "ns"))},
			wantKind: "Deployment", wantValue: "1"},
		{name: "statefulset counter", gr: schema.GroupResource{Group: "apps", Resource: "statefulsets"}, workload: "db", metric: "some_count",
			wantQuery: `sum by (namespace) (sum(rate(container_some_count_total{namespace="ns",pod=~"^db-(0|[1-9][0-9]*)$",container!="POD"}[1m])) by (namespace))`,
			answer:    answer{value: vector(sample(0.25, "namespace", "ns"))},
			wantKind:  "StatefulSet", wantValue: "250m"},
		{name: "workload name is regex-quoted", gr: deployments, workload: "web.v2", metric: "some_usage",
			wantQuery: `sum by (namespace) (sum(container_some_usage{namespace="ns",pod=~"^web\\.v2-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",container!="POD"}) by (namespace))`,
			answer:    answer{value: vector(sample(1, "namespace", "ns"))},
			wantKind:  "Deployment", wantValue: "1"},
		{name: "no pods running", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{value: vector()}, wantCode: 404},
		{name: "NaN", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{value: vector(sample(math.NaN(), "namespace", "ns"))}, wantCode: 404},
		{name: "+Inf", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{value: vector(sample(math.Inf(1), "namespace", "ns"))}, wantCode: 404},
		{name: "prometheus error", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{err: errPromAPI}, wantCode: 500},
		{name: "transport error", gr: deployments, workload: "web", metric: "some_usage",
			wantQuery: plain, answer: answer{err: errPromTransport}, wantCode: 503},
		{name: "invalid ready-pods-only value", gr: deployments, workload: "web", metric: "some_usage", selector: ReadyPodsOnlyLabel + "=yes",
			wantCode: 400, wantMessage: ReadyPodsOnlyLabel},
		{name: "ready-pods-only without value", gr: deployments, workload: "web", metric: "some_usage", selector: ReadyPodsOnlyLabel,
			wantCode: 400, wantMessage: ReadyPodsOnlyLabel},
		{name: "ready-pods-only negated", gr: deployments, workload: "web", metric: "some_usage", selector: ReadyPodsOnlyLabel + "!=true",
			wantCode: 400, wantMessage: ReadyPodsOnlyLabel},
		// ingress_hits' pod label is kube_pod, which cannot be joined with kube-state-metrics'
		// pod label.
		{name: "ready pods only needs kube-state-metrics labels", gr: deployments, workload: "web", metric: "ingress_hits", selector: ReadyPodsOnlyLabel + "=true",
			wantCode: 400, wantMessage: "kube-state-metrics"},
		{name: "unsupported operator in the remaining selector", gr: deployments, workload: "web", metric: "some_usage", selector: "foo>3",
			wantCode: 400, wantMessage: "operator not supported by prometheus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers := map[string]answer{}
			if tc.wantQuery != "" {
				answers[tc.wantQuery] = tc.answer
			}
			q := &fakeQuerier{t: t, answers: answers}
			c := newCustom(discoveredRegistry(t), q, &fakeObjects{})
			sel := labels.Everything()
			if tc.selector != "" {
				sel = mustSelector(t, tc.selector)
			}
			info := cmprovider.CustomMetricInfo{GroupResource: tc.gr, Namespaced: true, Metric: tc.metric}
			mv, err := c.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns", Name: tc.workload}, info, sel)
			if tc.wantQuery != "" {
				if got := q.seen(); len(got) != 1 || got[0] != tc.wantQuery {
					t.Errorf("queries %q,\nwant [%q]", got, tc.wantQuery)
				}
			} else if n := len(q.seen()); n != 0 {
				t.Errorf("%d queries for a bad request", n)
			}
			if tc.wantCode != 0 {
				if mv != nil {
					t.Errorf("got value %s, want none", mv.Value.String())
				}
				if code := statusCode(err); code != tc.wantCode {
					t.Fatalf("error %v (HTTP %d), want HTTP %d", err, code, tc.wantCode)
				}
				if !strings.Contains(err.Error(), tc.wantMessage) {
					t.Errorf("error %q does not contain %q", err, tc.wantMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := custom_metrics.ObjectReference{APIVersion: "apps/v1", Kind: tc.wantKind, Name: tc.workload, Namespace: "ns"}
			if mv.DescribedObject != want {
				t.Errorf("described object %+v, want %+v", mv.DescribedObject, want)
			}
			if mv.Metric.Name != tc.metric || mv.Value.String() != tc.wantValue {
				t.Errorf("metric %s = %s, want %s = %s", mv.Metric.Name, mv.Value.String(), tc.metric, tc.wantValue)
			}
			// The selector the client asked with is echoed back, ready-pods-only key included.
			if tc.selector != "" && (mv.Metric.Selector == nil || metav1.FormatLabelSelector(mv.Metric.Selector) != tc.selector) {
				t.Errorf("metric selector %v, want %s", mv.Metric.Selector, tc.selector)
			}
		})
	}
}

// By selector, each listed workload gets its own query (each has its own pod-name pattern), and
// workloads without pods are left out.
func TestWorkloadAggregateBySelector(t *testing.T) {
	query := func(name string) string {
		return `sum by (namespace) (sum(container_some_usage{namespace="ns",pod=~"^` + name + `-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$",container!="POD"}) by (namespace))`
	}
	q := &fakeQuerier{t: t, answers: map[string]answer{
		query("web"): {value: vector(sample(1, "namespace", "ns"))},
		query("api"): {value: vector()},
		query("db"):  {value: vector(sample(2, "namespace", "ns"))},
	}}
	objects := &fakeObjects{names: []string{"web", "api", "db"}}
	c := newCustom(discoveredRegistry(t), q, objects)
	info := cmprovider.CustomMetricInfo{GroupResource: deployments, Namespaced: true, Metric: "some_usage"}
	list, err := c.GetMetricBySelector(context.Background(), "ns", mustSelector(t, "tier=front"), info, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	if objects.gotGVR != (schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}) {
		t.Errorf("listed %v, want deployments", objects.gotGVR)
	}
	var got []string
	for _, mv := range list.Items {
		got = append(got, mv.DescribedObject.Name+"="+mv.Value.String())
	}
	if strings.Join(got, ",") != "web=1,db=2" {
		t.Errorf("items %v, want web=1,db=2", got)
	}
	if n := len(q.seen()); n != 3 {
		t.Errorf("%d queries, want one per workload", n)
	}
}
