//go:build tools

// Package tools records controller-gen as a dependency of this module so that `go mod tidy` keeps
// its requirements pinned; generate.sh builds it from here. It is never compiled.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
