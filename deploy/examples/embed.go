// Package examples holds what users copy: Kapacity's quick-start samples (quickstart/,
// applied unchanged by its users, so the tests and the demo read them from here), and the examples
// of this project: Kubernetes manifests at the top (an HPA on predicted replicas) and training
// configs in training/.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

//go:embed quickstart/*.yaml
var quickStart embed.FS

// QuickStartSample returns the named sample of Kapacity's quick-start, e.g.
// "dynamic-predictive-portrait-sample.yaml".
func QuickStartSample(name string) ([]byte, error) {
	raw, err := quickStart.ReadFile(path.Join("quickstart", name))
	if err != nil {
		return nil, fmt.Errorf("no quick-start sample %q: %w", name, err)
	}
	return raw, nil
}

// QuickStartSamples returns the file names of every quick-start sample, sorted.
func QuickStartSamples() ([]string, error) {
	entries, err := fs.ReadDir(quickStart, "quickstart")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
