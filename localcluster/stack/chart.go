package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/kapacitystack/kapacity/localcluster"
)

// ChartInstall is Kapacity's Helm chart, rendered (`helm template`, or chartgen template) and
// installed into a test bed for components that run on the host: every object of the render but
// the Deployments, with the Services of the adapter and of the webhooks turned into ExternalName
// Services of localhost on the components' host ports, and the APIServices and webhook
// configurations pointing at those ports. The components run with the arguments of the chart's
// Deployments and the tokens of its ServiceAccounts (StartAdapterWith, StartManagerWith): what
// they may do is what the chart grants, nothing more.
type ChartInstall struct {
	// Namespace is the release namespace.
	Namespace string
	// AdapterPort and WebhookPort are the host ports the adapter and the manager's webhooks must
	// serve on (127.0.0.1).
	AdapterPort, WebhookPort int

	adapter, manager component
	dir              string
}

// component is one Deployment of the render.
type component struct {
	// args of its container, without the subcommand; nil when the chart has no such Deployment.
	args []string
	// serviceAccount it runs as, and a kubeconfig holding a token of it.
	serviceAccount, kubeconfig string
}

// ChartInstallOptions say what InstallChart installs.
type ChartInstallOptions struct {
	// Namespace is the release namespace the manifest was rendered for; created if missing.
	Namespace string
	// RBACOnly installs the rights and their subjects (ServiceAccounts, roles, bindings, Secrets,
	// ConfigMaps) and leaves out the cluster's singletons: APIServices, webhook configurations and
	// the Services behind them, so that components already registered on the bed keep serving.
	RBACOnly bool
}

// InstallChart applies the rendered chart manifest (CRDs are left to InstallCRDs) and writes a
// kubeconfig with a token of each component's ServiceAccount into a folder under the bed's.
func InstallChart(ctx context.Context, bed *localcluster.Cluster, manifest []byte, o ChartInstallOptions) (_ *ChartInstall, err error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	c := &ChartInstall{Namespace: o.Namespace}
	if c.dir, err = os.MkdirTemp(bed.Dir, "chart-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(c.dir)
		}
	}()
	if c.AdapterPort, err = freePort(); err != nil {
		return nil, err
	}
	if c.WebhookPort, err = freePort(); err != nil {
		return nil, err
	}
	_, err = bed.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating namespace %s: %w", o.Namespace, err)
	}
	apply, err := c.adapt(objs, o.RBACOnly)
	if err != nil {
		return nil, err
	}
	if err := applyObjects(ctx, bed, apply); err != nil {
		return nil, err
	}
	for _, comp := range []*component{&c.adapter, &c.manager} {
		if comp.serviceAccount == "" {
			continue
		}
		comp.kubeconfig = filepath.Join(c.dir, comp.serviceAccount+".kubeconfig")
		if err := ServiceAccountKubeconfig(ctx, bed, o.Namespace, comp.serviceAccount, comp.kubeconfig); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Close removes the install's files (the tokens); the objects stay with the bed.
func (c *ChartInstall) Close() { _ = os.RemoveAll(c.dir) }

// AdapterServiceAccount and ManagerServiceAccount are the ServiceAccounts the chart's Deployments
// run as ("" if the chart has no such Deployment).
func (c *ChartInstall) AdapterServiceAccount() string { return c.adapter.serviceAccount }
func (c *ChartInstall) ManagerServiceAccount() string { return c.manager.serviceAccount }

// AdapterKubeconfig and ManagerKubeconfig hold a token of those ServiceAccounts.
func (c *ChartInstall) AdapterKubeconfig() string { return c.adapter.kubeconfig }
func (c *ChartInstall) ManagerKubeconfig() string { return c.manager.kubeconfig }

// decodeManifest splits a multi-document YAML stream into objects.
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding the chart's manifest: %w", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// adapt records the Deployments and returns what to apply: the Services behind the APIServices
// and the webhooks become ExternalName Services of localhost on the host ports, and the
// registrations point at those ports.
func (c *ChartInstall) adapt(objs []*unstructured.Unstructured, rbacOnly bool) ([]*unstructured.Unstructured, error) {
	services := map[string]int{} // Service name → host port
	for _, u := range objs {
		switch u.GetKind() {
		case "APIService":
			if name, _, _ := unstructured.NestedString(u.Object, "spec", "service", "name"); name != "" {
				services[name] = c.AdapterPort
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			for _, h := range hooks {
				if name, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "service", "name"); name != "" {
					services[name] = c.WebhookPort
				}
			}
		}
	}
	var out []*unstructured.Unstructured
	for _, u := range objs {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			continue
		case "Deployment":
			if err := c.record(u); err != nil {
				return nil, err
			}
			continue
		case "APIService":
			if rbacOnly {
				continue
			}
			if err := unstructured.SetNestedField(u.Object, int64(c.AdapterPort), "spec", "service", "port"); err != nil {
				return nil, err
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			if rbacOnly {
				continue
			}
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			for _, h := range hooks {
				if err := unstructured.SetNestedField(h.(map[string]any), int64(c.WebhookPort), "clientConfig", "service", "port"); err != nil {
					return nil, err
				}
			}
			if err := unstructured.SetNestedSlice(u.Object, hooks, "webhooks"); err != nil {
				return nil, err
			}
		case "Service":
			port, ok := services[u.GetName()]
			if !ok {
				break
			}
			if rbacOnly {
				continue
			}
			// kube-apiserver resolves an ExternalName Service to externalName:<port asked for>,
			// so the Service's one port is the host port the registrations name.
			u.Object["spec"] = map[string]any{
				"type": "ExternalName", "externalName": "localhost",
				"ports": []any{map[string]any{"name": "https", "port": int64(port)}},
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// record keeps the args and ServiceAccount of the adapter's or the manager's Deployment.
func (c *ChartInstall) record(u *unstructured.Unstructured) error {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return fmt.Errorf("the chart's Deployment %s has no container", u.GetName())
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
	if len(args) == 0 || sa == "" {
		return fmt.Errorf("the chart's Deployment %s: a component's container args and ServiceAccount are expected", u.GetName())
	}
	comp := component{args: args[1:], serviceAccount: sa}
	switch args[0] {
	case "adapter":
		c.adapter = comp
	case "manager":
		c.manager = comp
	default:
		return fmt.Errorf("the chart's Deployment %s runs %q, not the adapter or the manager", u.GetName(), args[0])
	}
	return nil
}

// applyObjects server-side applies the objects as the bed's admin (installing is an admin's act).
func applyObjects(ctx context.Context, bed *localcluster.Cluster, objs []*unstructured.Unstructured) error {
	disc, err := discovery.NewDiscoveryClientForConfig(bed.Config)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	client, err := dynamic.NewForConfig(bed.Config)
	if err != nil {
		return err
	}
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
		}
		data, err := u.MarshalJSON()
		if err != nil {
			return err
		}
		var ri dynamic.ResourceInterface = client.Resource(mapping.Resource)
		if u.GetNamespace() != "" {
			ri = client.Resource(mapping.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "kapacity-test-bed", Force: ptr.To(true)}); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, u.GetName(), err)
		}
	}
	return nil
}

// ServiceAccountKubeconfig writes to path a kubeconfig of the bed that authenticates as
// ServiceAccount namespace/name, with a token from the TokenRequest API valid for a day: what a
// pod of that ServiceAccount would hold.
func ServiceAccountKubeconfig(ctx context.Context, bed *localcluster.Cluster, namespace, name, path string) error {
	token, err := bed.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", namespace, name, err)
	}
	ca := bed.Config.CAData
	if len(ca) == 0 && bed.Config.CAFile != "" {
		if ca, err = os.ReadFile(bed.Config.CAFile); err != nil {
			return err
		}
	}
	user := "system:serviceaccount:" + namespace + ":" + name
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bed"] = &clientcmdapi.Cluster{Server: bed.Config.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	kc.Contexts["bed"] = &clientcmdapi.Context{Cluster: "bed", AuthInfo: user, Namespace: namespace}
	kc.CurrentContext = "bed"
	return clientcmd.WriteToFile(*kc, path)
}

// withFlags returns args with the flags of set given the values there (in place, or appended,
// sorted by name, when args lack them) and the flags of drop removed. Flags are --name=value.
func withFlags(args []string, set map[string]string, drop ...string) []string {
	out := make([]string, 0, len(args)+len(set))
	done := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := set[name]; ok {
			if !done[name] {
				out = append(out, "--"+name+"="+v)
				done[name] = true
			}
			continue
		}
		if !slices.Contains(drop, name) {
			out = append(out, a)
		}
	}
	var names []string
	for name := range set {
		if !done[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, "--"+name+"="+set[name])
	}
	return out
}
