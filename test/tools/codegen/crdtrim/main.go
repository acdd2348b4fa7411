// Command crdtrim drops the descriptions inside embedded Kubernetes CronJob specs from CRD manifests
// written by controller-gen, in place.
//
// The HorizontalPortrait schema embeds batch/v1 CronJobSpec (and through the Dynamic provider, so does
// the IntelligentHorizontalPodAutoscaler one). With the upstream pod template descriptions the
// manifests exceed 256 KiB as JSON, the limit of the last-applied-configuration annotation, so a plain
// `kubectl apply -f deploy/crds` would fail. Those descriptions are the upstream API reference and
// are available from `kubectl explain cronjob.spec`; the descriptions of this project's own fields
// are kept.
//
// Usage: crdtrim FILE...
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdtrim FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := trimFile(path); err != nil {
			fmt.Fprintf(os.Stderr, "crdtrim: %v\n", err)
			os.Exit(1)
		}
	}
}

func trimFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	for i := range crd.Spec.Versions {
		if s := crd.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
			walk(s.OpenAPIV3Schema, false)
		}
	}
	// A round trip through a generic map drops the empty status block that the typed struct would
	// print; controller-gen's own output has none, and its keys are sorted the same way.
	js, err := json.Marshal(&crd)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return fmt.Errorf("re-read %s: %w", path, err)
	}
	delete(doc, "status")
	out, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	// controller-gen starts each manifest with a document marker; keep it so diffs stay small.
	out = append([]byte("---\n"), out...)
	if bytes.Equal(out, raw) {
		return nil
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// walk clears descriptions below every "cronJob.template.spec" property. inside tells whether s is
// already below one.
func walk(s *apiextensionsv1.JSONSchemaProps, inside bool) {
	if inside {
		s.Description = ""
	}
	for name, p := range s.Properties {
		below := inside
		if name == "cronJob" {
			if tmpl, ok := p.Properties["template"]; ok {
				if spec, ok := tmpl.Properties["spec"]; ok {
					walk(&spec, true)
					tmpl.Properties["spec"] = spec
					p.Properties["template"] = tmpl
				}
			}
		}
		walk(&p, below)
		s.Properties[name] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		walk(s.Items.Schema, inside)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walk(s.AdditionalProperties.Schema, inside)
	}
}
