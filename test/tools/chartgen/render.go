// Package main renders the Kapacity Helm chart with Helm's SDK (no helm binary needed): `generate`
// writes the kustomize tree of deploy/ from it, `template` prints a render, `lint` runs helm lint.
package main

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"
)

// Release names the release a chart is rendered for.
type Release struct {
	Name      string
	Namespace string
}

// Object is one rendered Kubernetes object: its text as the template wrote it (comments kept) and
// its identity.
type Object struct {
	// Template is the template file's path inside the chart, e.g. templates/adapter/rbac.yaml.
	Template   string
	Text       string
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Doc is the parsed object.
	Doc map[string]any
}

// Key identifies an object across renders.
func (o Object) Key() string {
	group := o.APIVersion
	if i := strings.Index(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	return fmt.Sprintf("%s/%s/%s/%s", group, o.Kind, o.Namespace, o.Name)
}

func (o Object) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Template)
	}
	return fmt.Sprintf("%s %s/%s (%s)", o.Kind, o.Namespace, o.Name, o.Template)
}

// LoadChart loads the chart in dir.
func LoadChart(dir string) (*chart.Chart, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading the chart in %s: %w", dir, err)
	}
	return ch, nil
}

// Render renders ch as `helm template` does for rel with values (merged over the chart's
// values.yaml) and returns its objects ordered by template path, then by position in the template.
func Render(ch *chart.Chart, rel Release, values map[string]any) ([]Object, error) {
	vals, err := chartutil.ToRenderValues(ch, values, common.ReleaseOptions{
		Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, name := range slices.Sorted(maps.Keys(files)) {
		tpl := strings.TrimPrefix(name, ch.Name()+"/")
		if path.Ext(tpl) != ".yaml" || strings.HasPrefix(path.Base(tpl), "_") {
			continue // NOTES.txt, partials
		}
		got, err := splitObjects(tpl, files[name])
		if err != nil {
			return nil, err
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitObjects cuts a rendered template into its objects; documents holding only comments or
// blanks (a disabled block) are dropped.
func splitObjects(tpl, rendered string) ([]Object, error) {
	var objs []Object
	for i, part := range docSeparator.Split(rendered, -1) {
		text := tidy(part)
		if text == "" {
			continue
		}
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return nil, fmt.Errorf("%s, document %d: %w\n%s", tpl, i, err, text)
		}
		if doc == nil {
			continue
		}
		meta, _ := doc["metadata"].(map[string]any)
		o := Object{Template: tpl, Text: text, Doc: doc}
		o.APIVersion, _ = doc["apiVersion"].(string)
		o.Kind, _ = doc["kind"].(string)
		o.Name, _ = meta["name"].(string)
		o.Namespace, _ = meta["namespace"].(string)
		if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
			return nil, fmt.Errorf("%s, document %d: apiVersion, kind and metadata.name are required\n%s", tpl, i, text)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// tidy drops trailing blanks of every line and blank lines at both ends. A document of comments only
// becomes "".
func tidy(doc string) string {
	lines := strings.Split(doc, "\n")
	out := lines[:0]
	content := false
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		out = append(out, l)
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			content = true
		}
	}
	if !content {
		return ""
	}
	return strings.Trim(strings.Join(out, "\n"), "\n") + "\n"
}

// Manifest joins objects into one multi-document YAML stream.
func Manifest(objs []Object) string {
	var b strings.Builder
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(o.Text)
	}
	return b.String()
}
