// Package deploycrds ships the generated CRD manifests of autoscaling.kapacitystack.io inside the
// binary, so that whatever installs them (the demo, the test bed) uses exactly the checked-in files
// without finding the source tree at run time.
package deploycrds

import (
	"embed"
	"io/fs"
)

//go:embed autoscaling.kapacitystack.io_*.yaml
var manifests embed.FS

// Manifests returns the CRD manifests, one YAML document each, by file name.
func Manifests() (map[string][]byte, error) {
	names, err := fs.Glob(manifests, "*.yaml")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		if out[n], err = manifests.ReadFile(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}
