// Package sharedfiles finds the project's shared folder (design, reference, seeds, data), which sits
// beside the repository rather than in it, for tests and benchmarks that use it when it is there.
package sharedfiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Path is elem joined under ../shared beside the repository root (the nearest folder above the
// working directory holding go.mod). It fails when the root or the path does not exist, so that a
// caller can skip with the reason.
func Path(elem ...string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the working directory")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("shared files not found beside the repository: %w", err)
	}
	return p, nil
}
