package server

import (
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustommetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternalmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/kapacitystack/kapacity/adapter/resourcemetrics"
)

// openAPIDefinitions covers every API group the adapter serves. custom-metrics-apiserver's own
// defaults know only the custom and external groups, and the server refuses to install
// metrics.k8s.io without its models.
func openAPIDefinitions(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	defs := map[string]openapicommon.OpenAPIDefinition{}
	for _, getter := range []openapicommon.GetOpenAPIDefinitions{
		generatedcore.GetOpenAPIDefinitions,
		generatedcustommetrics.GetOpenAPIDefinitions,
		generatedexternalmetrics.GetOpenAPIDefinitions,
		resourcemetrics.OpenAPIDefinitions,
	} {
		for name, def := range getter(ref) {
			defs[name] = def
		}
	}
	return defs
}

func (o *Options) setOpenAPIConfig() {
	namer := openapinamer.NewDefinitionNamer(cmapiserver.Scheme, metricsapi.Scheme)
	v2 := genericapiserver.DefaultOpenAPIConfig(openAPIDefinitions, namer)
	v2.Info.Title, v2.Info.Version = o.base.Name, "1.0.0"
	v3 := genericapiserver.DefaultOpenAPIV3Config(openAPIDefinitions, namer)
	v3.Info.Title, v3.Info.Version = o.base.Name, "1.0.0"
	o.base.OpenAPIConfig, o.base.OpenAPIV3Config = v2, v3
}
