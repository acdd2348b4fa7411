// Package ruleset compiles a metrics-discovery config into what the adapter serves from, and keeps
// it current when the config file changes: a bad new file is reported and the old rules stay.
package ruleset

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/adapter/naming"
	"github.com/kapacitystack/kapacity/adapter/resourcequery"
	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// RuleSet is one compiled config. It is immutable; a reload builds a new one.
type RuleSet struct {
	Config *metricsconfig.MetricsDiscoveryConfig
	// Custom and External are the compiled rules and externalRules.
	Custom, External []*naming.Rule
	// Resources builds resource and workload queries; nil without resourceRules.
	Resources *resourcequery.Builder
	// Workloads maps each workload resource with a pod-name pattern (deployments.apps, ...) to
	// its kind, for workload-aggregate metrics.
	Workloads map[schema.GroupResource]schema.GroupKind
}

// Mapper is the part of a RESTMapper compiling needs.
type Mapper interface {
	naming.ResourceMapper
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// Compile validates cfg and compiles it against mapper. Errors name the rule and field.
func Compile(cfg *metricsconfig.MetricsDiscoveryConfig, mapper Mapper) (*RuleSet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rs := &RuleSet{Config: cfg, Workloads: map[schema.GroupResource]schema.GroupKind{}}
	var err error
	if rs.Custom, err = naming.CompileRules("rules", cfg.Rules, mapper); err != nil {
		return nil, err
	}
	if rs.External, err = naming.CompileRules("externalRules", cfg.ExternalRules, mapper); err != nil {
		return nil, err
	}
	if cfg.ResourceRules != nil {
		if rs.Resources, err = resourcequery.NewBuilder(cfg, mapper); err != nil {
			return nil, err
		}
	}
	for i, p := range cfg.WorkloadPodNamePatterns {
		gk := schema.GroupKind{Group: p.Group, Kind: p.Kind}
		mapping, err := mapper.RESTMapping(gk)
		if err != nil {
			// A workload CRD may be installed after the adapter starts: its aggregates appear
			// at the next reload instead of failing the whole config.
			klog.InfoS("Workload kind not served by the cluster; its aggregate metrics are unavailable",
				"index", i, "kind", gk.String(), "err", err)
			continue
		}
		rs.Workloads[mapping.Resource.GroupResource()] = gk
	}
	return rs, nil
}

// Load parses, validates and compiles a config file's content.
func Load(data []byte, mapper Mapper) (*RuleSet, error) {
	cfg, err := metricsconfig.Parse(data)
	if err != nil {
		return nil, err
	}
	return Compile(cfg, mapper)
}
