package metricsconfig

import (
	"fmt"

	"go.yaml.in/yaml/v2"
)

// Parse decodes a metrics-discovery config strictly: unknown fields and
// duplicate keys are errors, as in prometheus-adapter, so that a typo is
// never silently ignored. It does not validate; see Load.
func Parse(data []byte) (*MetricsDiscoveryConfig, error) {
	var cfg MetricsDiscoveryConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("unable to parse metrics discovery config: %w", err)
	}
	return &cfg, nil
}

// Load parses and validates a metrics-discovery config.
func Load(data []byte) (*MetricsDiscoveryConfig, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid metrics discovery config: %w", err)
	}
	return cfg, nil
}

// Marshal writes cfg as YAML in the same format Parse reads.
func Marshal(cfg *MetricsDiscoveryConfig) ([]byte, error) {
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("unable to marshal metrics discovery config: %w", err)
	}
	return out, nil
}
