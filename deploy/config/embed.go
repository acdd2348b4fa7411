// Package deployconfig ships Kapacity's default metrics-discovery config so
// that the binary can fall back to it when no config file is given, and so
// the chart and the binary can never disagree about the defaults.
package deployconfig

import (
	"bytes"
	_ "embed"
)

//go:embed kapacity-default.yaml
var kapacityDefault []byte

// KapacityDefault returns a copy of kapacity-default.yaml, parseable with
// config/metricsconfig.Load. A copy, so that no caller can alter what the
// next one reads.
func KapacityDefault() []byte { return bytes.Clone(kapacityDefault) }
