package grpcapi

import (
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// FromProto converts a Kapacity query as its server does: dispatch on the type, read the
// matching oneof (a mismatched oneof reads as empty fields); a pod or object name wins over a
// selector, and an empty selector means all.
func FromProto(pq *metricpb.Query) (v1alpha1.Query, error) {
	gk := func(g *metricpb.GroupKind) schema.GroupKind {
		return schema.GroupKind{Group: g.GetGroup(), Kind: g.GetKind()}
	}
	switch pq.GetType() {
	case metricpb.QueryType_POD_RESOURCE:
		x := pq.GetPodResource()
		return v1alpha1.Query{Kind: v1alpha1.PodResource, Namespace: x.GetNamespace(), Name: x.GetName(), Selector: x.GetSelector(), Resource: x.GetResourceName()}, nil
	case metricpb.QueryType_CONTAINER_RESOURCE:
		x := pq.GetContainerResource()
		return v1alpha1.Query{Kind: v1alpha1.ContainerResource, Namespace: x.GetNamespace(), Name: x.GetName(), Selector: x.GetSelector(),
			Resource: x.GetResourceName(), Container: x.GetContainerName()}, nil
	case metricpb.QueryType_WORKLOAD_RESOURCE:
		x := pq.GetWorkloadResource()
		return v1alpha1.Query{Kind: v1alpha1.WorkloadResource, Workload: gk(x.GetGroupKind()), Namespace: x.GetNamespace(), Name: x.GetName(),
			Resource: x.GetResourceName(), ReadyPodsOnly: x.GetReadyPodsOnly()}, nil
	case metricpb.QueryType_WORKLOAD_CONTAINER_RESOURCE:
		x := pq.GetWorkloadContainerResource()
		return v1alpha1.Query{Kind: v1alpha1.WorkloadContainerResource, Workload: gk(x.GetGroupKind()), Namespace: x.GetNamespace(), Name: x.GetName(),
			Resource: x.GetResourceName(), Container: x.GetContainerName(), ReadyPodsOnly: x.GetReadyPodsOnly()}, nil
	case metricpb.QueryType_OBJECT:
		x := pq.GetObject()
		return v1alpha1.Query{Kind: v1alpha1.Object, Workload: gk(x.GetGroupKind()), Namespace: x.GetNamespace(), Name: x.GetName(), Selector: x.GetSelector(),
			Metric: x.GetMetric().GetName(), MetricSelector: x.GetMetric().GetSelector()}, nil
	case metricpb.QueryType_EXTERNAL:
		x := pq.GetExternal()
		return v1alpha1.Query{Kind: v1alpha1.External, Namespace: x.GetNamespace(), Metric: x.GetMetric().GetName(), MetricSelector: x.GetMetric().GetSelector()}, nil
	case metricpb.QueryType_WORKLOAD_EXTERNAL:
		x := pq.GetWorkloadExternal()
		return v1alpha1.Query{Kind: v1alpha1.WorkloadExternal, Workload: gk(x.GetGroupKind()), Namespace: x.GetNamespace(), Name: x.GetName(),
			Metric: x.GetMetric().GetName(), MetricSelector: x.GetMetric().GetSelector()}, nil
	}
	return v1alpha1.Query{}, fmt.Errorf("unknown query type %d", pq.GetType())
}

// ToProto converts a query to Kapacity's message.
func ToProto(q v1alpha1.Query) (*metricpb.Query, error) {
	gk := &metricpb.GroupKind{Group: q.Workload.Group, Kind: q.Workload.Kind}
	metric := &metricpb.MetricIdentifier{Name: q.Metric}
	if q.MetricSelector != "" {
		metric.Selector = &q.MetricSelector
	}
	var ns *string
	if q.Namespace != "" {
		ns = &q.Namespace
	}
	switch q.Kind {
	case v1alpha1.PodResource:
		x := &metricpb.PodResourceQuery{Namespace: q.Namespace, ResourceName: q.Resource}
		if q.Name != "" {
			x.PodIdentifier = &metricpb.PodResourceQuery_Name{Name: q.Name}
		} else {
			x.PodIdentifier = &metricpb.PodResourceQuery_Selector{Selector: q.Selector}
		}
		return &metricpb.Query{Type: metricpb.QueryType_POD_RESOURCE, Query: &metricpb.Query_PodResource{PodResource: x}}, nil
	case v1alpha1.ContainerResource:
		x := &metricpb.ContainerResourceQuery{Namespace: q.Namespace, ResourceName: q.Resource, ContainerName: q.Container}
		if q.Name != "" {
			x.PodIdentifier = &metricpb.ContainerResourceQuery_Name{Name: q.Name}
		} else {
			x.PodIdentifier = &metricpb.ContainerResourceQuery_Selector{Selector: q.Selector}
		}
		return &metricpb.Query{Type: metricpb.QueryType_CONTAINER_RESOURCE, Query: &metricpb.Query_ContainerResource{ContainerResource: x}}, nil
	case v1alpha1.WorkloadResource:
		return &metricpb.Query{Type: metricpb.QueryType_WORKLOAD_RESOURCE, Query: &metricpb.Query_WorkloadResource{WorkloadResource: &metricpb.WorkloadResourceQuery{
			GroupKind: gk, Namespace: q.Namespace, Name: q.Name, ResourceName: q.Resource, ReadyPodsOnly: q.ReadyPodsOnly,
		}}}, nil
	case v1alpha1.WorkloadContainerResource:
		return &metricpb.Query{Type: metricpb.QueryType_WORKLOAD_CONTAINER_RESOURCE, Query: &metricpb.Query_WorkloadContainerResource{WorkloadContainerResource: &metricpb.WorkloadContainerResourceQuery{
			GroupKind: gk, Namespace: q.Namespace, Name: q.Name, ResourceName: q.Resource, ContainerName: q.Container, ReadyPodsOnly: q.ReadyPodsOnly,
		}}}, nil
	case v1alpha1.Object:
		x := &metricpb.ObjectQuery{GroupKind: gk, Namespace: ns, Metric: metric}
		if q.Name != "" {
			x.ObjectIdentifier = &metricpb.ObjectQuery_Name{Name: q.Name}
		} else {
			x.ObjectIdentifier = &metricpb.ObjectQuery_Selector{Selector: q.Selector}
		}
		return &metricpb.Query{Type: metricpb.QueryType_OBJECT, Query: &metricpb.Query_Object{Object: x}}, nil
	case v1alpha1.External:
		return &metricpb.Query{Type: metricpb.QueryType_EXTERNAL, Query: &metricpb.Query_External{External: &metricpb.ExternalQuery{Namespace: ns, Metric: metric}}}, nil
	case v1alpha1.WorkloadExternal:
		return &metricpb.Query{Type: metricpb.QueryType_WORKLOAD_EXTERNAL, Query: &metricpb.Query_WorkloadExternal{WorkloadExternal: &metricpb.WorkloadExternalQuery{
			GroupKind: gk, Namespace: q.Namespace, Name: q.Name, Metric: metric,
		}}}, nil
	}
	return nil, fmt.Errorf("unknown query kind %q", q.Kind)
}

// SeriesToProto converts answer series. Each series' points are allocated as one block (a
// message per point costs 56 bytes; one allocation each would add the allocator's rounding and
// the collector's work per point).
func SeriesToProto(series []v1alpha1.Series) []*metricpb.Series {
	out := make([]*metricpb.Series, len(series))
	for i := range series {
		out[i] = seriesToProto(&series[i])
	}
	return out
}

// seriesToProtoReleasing converts like SeriesToProto, releasing each series' points once
// converted, so that an answer is not held twice in full.
func seriesToProtoReleasing(series []v1alpha1.Series) []*metricpb.Series {
	out := make([]*metricpb.Series, len(series))
	for i := range series {
		out[i] = seriesToProto(&series[i])
		series[i].Points = nil
	}
	return out
}

func seriesToProto(s *v1alpha1.Series) *metricpb.Series {
	block := make([]metricpb.Point, len(s.Points))
	ps := &metricpb.Series{Labels: s.Labels, Points: make([]*metricpb.Point, len(s.Points))}
	for j, p := range s.Points {
		block[j].Timestamp, block[j].Value = p.Timestamp, float64(p.Value)
		ps.Points[j] = &block[j]
	}
	if s.Window != nil {
		ps.Window = durationpb.New(s.Window.Duration)
	}
	return ps
}

// SamplesToProto converts the answer of a latest query (one point per series).
func SamplesToProto(series []v1alpha1.Series) []*metricpb.Sample {
	out := make([]*metricpb.Sample, 0, len(series))
	for _, s := range series {
		for _, p := range s.Points {
			ps := &metricpb.Sample{Labels: s.Labels, Point: &metricpb.Point{Timestamp: p.Timestamp, Value: float64(p.Value)}}
			if s.Window != nil {
				ps.Window = durationpb.New(s.Window.Duration)
			}
			out = append(out, ps)
		}
	}
	return out
}

// SeriesFromProto converts answer series back.
func SeriesFromProto(in []*metricpb.Series) []v1alpha1.Series {
	out := make([]v1alpha1.Series, len(in))
	for i, s := range in {
		out[i] = v1alpha1.Series{Labels: labels(s.GetLabels()), Points: make([]v1alpha1.Point, len(s.GetPoints())), Window: window(s.GetWindow())}
		for j, p := range s.GetPoints() {
			out[i].Points[j] = v1alpha1.Point{Timestamp: p.GetTimestamp(), Value: v1alpha1.Value(p.GetValue())}
		}
	}
	return out
}

// SamplesFromProto converts latest samples to one-point series.
func SamplesFromProto(in []*metricpb.Sample) []v1alpha1.Series {
	out := make([]v1alpha1.Series, len(in))
	for i, s := range in {
		out[i] = v1alpha1.Series{Labels: labels(s.GetLabels()), Window: window(s.GetWindow()),
			Points: []v1alpha1.Point{{Timestamp: s.GetPoint().GetTimestamp(), Value: v1alpha1.Value(s.GetPoint().GetValue())}}}
	}
	return out
}

func window(d *durationpb.Duration) *metav1Duration {
	if d == nil {
		return nil
	}
	return &metav1Duration{Duration: d.AsDuration()}
}

// labels returns l, or an empty map for an empty label set (protobuf decodes it as nil; JSON and
// the engine give an empty map).
func labels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}
