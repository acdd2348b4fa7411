// Package metricsconfig defines the metrics-discovery configuration read by the
// adapter: prometheus-adapter's format (rules, externalRules, resourceRules)
// extended with Kapacity's workloadPodNamePatterns and
// readyPodsOnlyContainerQuery. It only parses and validates; compiling the
// rules against a RESTMapper is the job of adapter/naming.
package metricsconfig

// MetricsDiscoveryConfig is the whole configuration file.
type MetricsDiscoveryConfig struct {
	// Rules feed the custom metrics API (and Kapacity's object queries).
	Rules []DiscoveryRule `json:"rules,omitempty" yaml:"rules,omitempty"`
	// ExternalRules feed the external metrics API.
	ExternalRules []DiscoveryRule `json:"externalRules,omitempty" yaml:"externalRules,omitempty"`
	// ResourceRules feed the resource metrics API and Kapacity's
	// pod/container/workload resource queries; nil means not served.
	ResourceRules *ResourceRules `json:"resourceRules,omitempty" yaml:"resourceRules,omitempty"`
	// WorkloadPodNamePatterns tell which pods belong to a workload by the
	// shape of their names (Kapacity extension).
	WorkloadPodNamePatterns []WorkloadPodNamePattern `json:"workloadPodNamePatterns,omitempty" yaml:"workloadPodNamePatterns,omitempty"`
}

// DiscoveryRule turns the series returned by one series query into metrics.
type DiscoveryRule struct {
	// SeriesQuery is the series selector passed as match[] to /api/v1/series.
	SeriesQuery string `json:"seriesQuery" yaml:"seriesQuery"`
	// SeriesFilters are tested against series names after discovery; a
	// series must pass every filter.
	SeriesFilters []RegexFilter `json:"seriesFilters,omitempty" yaml:"seriesFilters,omitempty"`
	// Resources associates series labels with Kubernetes resources.
	Resources ResourceMapping `json:"resources,omitempty" yaml:"resources,omitempty"`
	// Name turns series names into API metric names.
	Name NameMapping `json:"name,omitempty" yaml:"name,omitempty"`
	// MetricsQuery is a Go template (delimiters << >>) producing the PromQL
	// query; see adapter/promql.QueryData for the fields it can use.
	MetricsQuery string `json:"metricsQuery,omitempty" yaml:"metricsQuery,omitempty"`
}

// RegexFilter keeps (Is) or drops (IsNot) series whose name matches a
// regular expression (unanchored). Exactly one of the two must be set.
type RegexFilter struct {
	Is    string `json:"is,omitempty" yaml:"is,omitempty"`
	IsNot string `json:"isNot,omitempty" yaml:"isNot,omitempty"`
}

// ResourceMapping associates series labels with Kubernetes resources.
type ResourceMapping struct {
	// Template (delimiters << >>, fields .Group and .Resource) derives a label
	// name from a group-resource, e.g. "kube_<<.Group>>_<<.Resource>>".
	Template string `json:"template,omitempty" yaml:"template,omitempty"`
	// Overrides maps label names to group-resources explicitly.
	Overrides map[string]GroupResource `json:"overrides,omitempty" yaml:"overrides,omitempty"`
	// Namespaced (default true) is only consulted for external rules: false
	// drops the namespace matcher so one metric can span namespaces.
	Namespaced *bool `json:"namespaced,omitempty" yaml:"namespaced,omitempty"`
}

// IsNamespaced reports the effective value of Namespaced.
func (m ResourceMapping) IsNamespaced() bool {
	return m.Namespaced == nil || *m.Namespaced
}

// GroupResource names a Kubernetes resource as written in the config; it is
// normalised (singular -> plural, group filled in) through a RESTMapper.
type GroupResource struct {
	Group    string `json:"group,omitempty" yaml:"group,omitempty"`
	Resource string `json:"resource" yaml:"resource"`
}

// NameMapping derives the API metric name from the series name.
type NameMapping struct {
	// Matches is a regular expression applied to the series name; empty means ".*".
	Matches string `json:"matches,omitempty" yaml:"matches,omitempty"`
	// As is a regexp expansion template ($0, $1, ${name}); empty means $0 when
	// Matches has no capture group and $1 when it has exactly one.
	As string `json:"as,omitempty" yaml:"as,omitempty"`
}

// ResourceRules configures CPU and memory queries.
type ResourceRules struct {
	CPU    ResourceRule `json:"cpu" yaml:"cpu"`
	Memory ResourceRule `json:"memory" yaml:"memory"`
	// Window is the measurement window reported with the samples.
	Window Duration `json:"window" yaml:"window"`
}

// ResourceRule configures the queries for one resource (cpu or memory).
type ResourceRule struct {
	// ContainerQuery is a metrics query template producing per-container
	// (grouped by pod, and container when asked) usage.
	ContainerQuery string `json:"containerQuery" yaml:"containerQuery"`
	// NodeQuery is a metrics query template producing per-node usage.
	NodeQuery string `json:"nodeQuery,omitempty" yaml:"nodeQuery,omitempty"`
	// Resources associates the query's labels with pods, namespaces and nodes.
	Resources ResourceMapping `json:"resources" yaml:"resources"`
	// ContainerLabel is the label holding the container name.
	ContainerLabel string `json:"containerLabel" yaml:"containerLabel"`
	// ReadyPodsOnlyContainerQuery (Kapacity extension) is used instead of
	// ContainerQuery for workload queries restricted to ready pods.
	ReadyPodsOnlyContainerQuery string `json:"readyPodsOnlyContainerQuery,omitempty" yaml:"readyPodsOnlyContainerQuery,omitempty"`
}

// WorkloadPodNamePattern (Kapacity extension) tells which pods belong to a
// workload of a given group-kind: Pattern is a regular expression with one %s
// standing for the (regex-escaped) workload name.
type WorkloadPodNamePattern struct {
	Group   string `json:"group,omitempty" yaml:"group,omitempty"`
	Kind    string `json:"kind" yaml:"kind"`
	Pattern string `json:"pattern" yaml:"pattern"`
}
