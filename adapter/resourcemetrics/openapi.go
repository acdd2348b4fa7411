package resourcemetrics

import (
	"strings"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
	generatedopenapi "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
)

// OpenAPIDefinitions returns the OpenAPI definitions of metrics.k8s.io, to
// merge into the server's OpenAPI (v2 and v3) configs; without them Install
// fails ("cannot find model definition").
//
// metrics-server v0.8.0's generated definitions are keyed and referenced by
// Go package path ("k8s.io/metrics/pkg/apis/metrics/v1beta1.NodeMetrics"),
// but the k8s.io/* v0.35 types name their models through OpenAPIModelName
// ("io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"), which is what the
// API server looks up. The keys, dependencies and references are renamed to
// that form.
func OpenAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := generatedopenapi.GetOpenAPIDefinitions(func(name string) spec.Ref { return ref(modelName(name)) })
	out := make(map[string]common.OpenAPIDefinition, len(defs))
	for name, def := range defs {
		deps := make([]string, len(def.Dependencies))
		for i, d := range def.Dependencies {
			deps[i] = modelName(d)
		}
		def.Dependencies = deps
		out[modelName(name)] = def
	}
	return out
}

// modelName turns a Go type path into its OpenAPI model name; names already
// in that form (no "/") are kept.
func modelName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return util.ToRESTFriendlyName(name)
}
