package ruleset

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Source holds the rules compiled from a config file and reloads them when the file changes.
// Files mounted from a ConfigMap change by a symlink swap, which watching for writes misses;
// comparing content on a short period catches every form of update.
type Source struct {
	path    string
	mapper  Mapper
	current atomic.Pointer[RuleSet]
	content []byte

	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
	reloadErrors  prometheus.Counter
}

// NewSource loads path; an invalid file is an error (the adapter refuses to start on it).
func NewSource(path string, mapper Mapper, reg prometheus.Registerer) (*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading metrics-discovery config: %w", err)
	}
	return newSource(path, data, mapper, reg)
}

// NewFixedSource serves a config given as bytes (the built-in default); Reload and Watch do
// nothing for it.
func NewFixedSource(data []byte, mapper Mapper, reg prometheus.Registerer) (*Source, error) {
	return newSource("", data, mapper, reg)
}

func newSource(path string, data []byte, mapper Mapper, reg prometheus.Registerer) (*Source, error) {
	s := &Source{
		path:   path,
		mapper: mapper,
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_config_last_reload_successful",
			Help: "1 if the last attempt to load the metrics-discovery config succeeded, 0 if the adapter is still serving an older config.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_config_last_reload_success_timestamp_seconds",
			Help: "When the metrics-discovery config in use was loaded.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kapacity_adapter_config_reload_failures_total",
			Help: "Changed metrics-discovery config files that were rejected.",
		}),
	}
	reg.MustRegister(s.reloadSuccess, s.reloadTime, s.reloadErrors)
	rs, err := Load(data, mapper)
	if err != nil {
		return nil, fmt.Errorf("metrics-discovery config %s: %w", s.name(), err)
	}
	s.install(rs, data)
	return s, nil
}

func (s *Source) name() string {
	if s.path == "" {
		return "(built-in)"
	}
	return s.path
}

// Current returns the rules in force.
func (s *Source) Current() *RuleSet { return s.current.Load() }

func (s *Source) install(rs *RuleSet, data []byte) {
	s.current.Store(rs)
	s.content = data
	s.reloadSuccess.Set(1)
	s.reloadTime.SetToCurrentTime()
}

// Reload reads the file again and installs it when it changed and is valid. It reports whether
// new rules were installed; an invalid file leaves the current rules in force and returns the error.
func (s *Source) Reload() (bool, error) {
	if s.path == "" {
		return false, nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		s.fail()
		return false, fmt.Errorf("reading metrics-discovery config: %w", err)
	}
	if bytes.Equal(data, s.content) {
		return false, nil
	}
	rs, err := Load(data, s.mapper)
	if err != nil {
		s.fail()
		// Remember the bad content so that it is reported once, not on every poll.
		s.content = data
		return false, fmt.Errorf("metrics-discovery config %s: %w", s.path, err)
	}
	s.install(rs, data)
	return true, nil
}

func (s *Source) fail() {
	s.reloadSuccess.Set(0)
	s.reloadErrors.Inc()
}

// Watch polls the file every interval until ctx ends and calls onChange with each new rule set.
func (s *Source) Watch(ctx context.Context, interval time.Duration, onChange func(*RuleSet)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		changed, err := s.Reload()
		if err != nil {
			klog.ErrorS(err, "Rejected the changed metrics-discovery config; still serving the previous one", "path", s.path)
			continue
		}
		if changed {
			klog.InfoS("Loaded the changed metrics-discovery config", "path", s.path)
			onChange(s.Current())
		}
	}
}
