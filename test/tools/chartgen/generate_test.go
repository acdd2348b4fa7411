package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// copyTree copies the files under src (repository-relative) into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(root, src), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// generatedFiles lists the files under root/deploy that the generator owns, repository-relative.
func generatedFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(root, deployDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if bytes.HasPrefix(data, []byte(generatedMark)) || strings.HasPrefix(rel, filepath.Join(chartDir, "crds")) || rel == filepath.Join(chartDir, "files", "kapacity-default.yaml") {
			out[rel] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeployTreeIsCurrent: the checked-in kustomize tree and the chart's copies of the CRDs and of
// the default config are exactly what the generator makes from the chart and their sources.
func TestDeployTreeIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	copyTree(t, crdDir, tmp)
	copyTree(t, defaultConfig, tmp)
	copyTree(t, chartDir, tmp)
	if err := Generate(tmp); err != nil {
		t.Fatal(err)
	}
	want := generatedFiles(t, tmp)
	got := generatedFiles(t, root)
	for _, f := range slices.Sorted(maps.Keys(want)) {
		if !bytes.Equal(got[f], want[f]) {
			t.Errorf("%s is stale or missing: run `make generate` and commit the result", f)
		}
	}
	for f := range got {
		if _, ok := want[f]; !ok {
			t.Errorf("%s is no longer generated: run `make generate` (it removes it)", f)
		}
	}
}

// kubectl is the kubectl of `make tools` (or $KUBECTL); its built-in kustomize builds deploy/.
func kubectl(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	k, err := filepath.Abs(filepath.Join(root, "bin", "kubectl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k); err != nil {
		t.Fatalf("kubectl is needed to build deploy/ with kustomize: run `make tools` or set KUBECTL (%v)", err)
	}
	return k
}

// objectSet parses a YAML stream into objects keyed like Object.Key, normalised through JSON so that
// two streams compare by content, not by layout, comments or key order.
func objectSet(t *testing.T, stream string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, part := range docSeparator.Split(stream, -1) {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
			t.Fatalf("%v\n%s", err, part)
		}
		if doc == nil {
			continue
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var norm map[string]any
		if err := json.Unmarshal(raw, &norm); err != nil {
			t.Fatal(err)
		}
		o := Object{APIVersion: norm["apiVersion"].(string), Kind: norm["kind"].(string)}
		o.Name, _ = dig(norm, "metadata", "name").(string)
		o.Namespace, _ = dig(norm, "metadata", "namespace").(string)
		out[o.Key()] = norm
	}
	return out
}

// TestKustomizeMatchesChart: `kubectl kustomize` of deploy/, alone and with each component, builds
// exactly the objects the chart renders with the same values (CRDs included), so that a kustomize
// user and a Helm user install the same thing.
func TestKustomizeMatchesChart(t *testing.T) {
	k := kubectl(t)
	deploy, err := filepath.Abs(filepath.Join(root, deployDir))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := LoadChart(filepath.Join(root, chartDir))
	if err != nil {
		t.Fatal(err)
	}
	var crds strings.Builder
	for _, c := range ch.CRDObjects() {
		crds.WriteString("---\n")
		crds.Write(c.File.Data)
	}
	cases := append([]Component{{Name: "", Set: "kustomize=true"}}, Components...)
	for _, c := range cases {
		name := c.Name
		if name == "" {
			name = "deploy/ alone"
		}
		t.Run(name, func(t *testing.T) {
			// As a user's overlay would: kustomize takes relative paths only.
			overlay := t.TempDir()
			base, err := filepath.Rel(overlay, deploy)
			if err != nil {
				t.Fatal(err)
			}
			kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + base + "\n"
			if c.Name != "" {
				kust += "components:\n  - " + filepath.Join(base, "components", c.Name) + "\n"
			}
			if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(k, "kustomize", overlay).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v\n%s", err, out)
			}
			vals, err := ComponentValues(c)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Render(ch, kustomizeRelease, vals)
			if err != nil {
				t.Fatal(err)
			}
			got := objectSet(t, string(out))
			want := objectSet(t, crds.String()+"---\n"+Manifest(objs))
			for _, key := range slices.Sorted(maps.Keys(want)) {
				if g, ok := got[key]; !ok {
					t.Errorf("kustomize lacks %s", key)
				} else if !reflect.DeepEqual(g, want[key]) {
					gj, _ := json.MarshalIndent(g, "", " ")
					wj, _ := json.MarshalIndent(want[key], "", " ")
					t.Errorf("%s differs:\nkustomize: %s\nchart: %s", key, gj, wj)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("kustomize builds %s, which the chart does not render", key)
				}
			}
		})
	}
}
