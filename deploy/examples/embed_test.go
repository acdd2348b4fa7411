package examples

import (
	"path/filepath"
	"slices"
	"testing"
)

// The embedded samples are the files of quickstart/, all of them.
func TestQuickStartSamplesAreEmbedded(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("quickstart", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f))
	}
	got, err := QuickStartSamples()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(got) != 5 {
		t.Fatalf("embedded samples %v, want the 5 files of quickstart/ %v", got, want)
	}
	if _, err := QuickStartSample("gray-strategy-sample.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := QuickStartSample("missing.yaml"); err == nil {
		t.Fatal("a missing sample was found")
	}
}
