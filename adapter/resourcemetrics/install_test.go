package resourcemetrics

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/component-base/compatibility"
	"sigs.k8s.io/metrics-server/pkg/api"

	"github.com/kapacitystack/kapacity/adapter/naming/namingtest"
)

func TestNewInformers(t *testing.T) {
	p := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "a", Name: "p1", Labels: map[string]string{"app": "web"},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme, p)
	kube := kubefake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})

	inf, err := NewInformers(kube, meta, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What Install does, short of needing an API server.
	pods := inf.PodMetadata.ForResource(podsGVR).Lister()
	nodes := inf.Kube.Core().V1().Nodes().Lister()
	stop := make(chan struct{})
	defer close(stop)
	inf.Start(stop)
	if err := inf.WaitForCacheSync(stop); err != nil {
		t.Fatal(err)
	}

	objs, err := pods.ByNamespace("a").List(labels.Everything())
	if err != nil || len(objs) != 1 {
		t.Fatalf("listed pods %v, %v; want p1", objs, err)
	}
	got := objs[0].(*metav1.PartialObjectMetadata)
	if got.Name != "p1" || got.Labels["app"] != "web" {
		t.Errorf("pod %s with labels %v, want p1 with its labels", got.Name, got.Labels)
	}
	if got.Annotations != nil || got.ManagedFields != nil {
		t.Errorf("cached pod keeps annotations %v / managed fields %v", got.Annotations, got.ManagedFields)
	}
	if ns, err := nodes.List(labels.Everything()); err != nil || len(ns) != 1 {
		t.Errorf("listed nodes %v, %v; want n1", ns, err)
	}

	var selectors []string
	for _, a := range meta.Actions() {
		if l, ok := a.(clienttesting.ListAction); ok {
			selectors = append(selectors, l.GetListRestrictions().Fields.String())
		}
	}
	if len(selectors) == 0 {
		t.Fatal("no pod list call")
	}
	for _, s := range selectors {
		if s != "status.phase=Running" {
			t.Errorf("pods listed with field selector %q, want status.phase=Running", s)
		}
	}
}

// TestInstall registers metrics.k8s.io on an API server that is built but
// never run, which checks the OpenAPI definitions cover the API.
func TestInstall(t *testing.T) {
	cfg := genericapiserver.NewRecommendedConfig(api.Codecs)
	cfg.EffectiveVersion = compatibility.NewEffectiveVersionFromString("1.35", "", "")
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "127.0.0.1:443"
	namer := openapinamer.NewDefinitionNamer(api.Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(OpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(OpenAPIDefinitions, namer)
	srv, err := cfg.Complete().New("test", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatal(err)
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	inf, err := NewInformers(kubefake.NewClientset(), metadatafake.NewSimpleMetadataClient(scheme), 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(config(t, false), namingtest.NewMapper(), &fakeProm{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Install(srv, p, inf); err != nil {
		t.Fatal(err)
	}
}
