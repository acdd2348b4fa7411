package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/kapacitystack/kapacity/config/kubeconfig"
	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
)

// KubeOptions are the connection flags shared by train and recommend.
type KubeOptions struct {
	Kubeconfig string
	// MetricsServerAddr, when set, is the adapter's gRPC ProviderService (the reference's
	// METRICS_SERVER_ADDR); otherwise history is read over HTTP through kube-apiserver.
	MetricsServerAddr string
	// MetricsServerTokenFile and MetricsServerCAFile authenticate to it and verify it.
	MetricsServerTokenFile, MetricsServerCAFile string
}

// AddFlags registers --kubeconfig and --metrics-server-addr.
func (k *KubeOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&k.Kubeconfig, kubeconfig.Flag, "", kubeconfig.FlagHelp)
	f.StringVar(&k.MetricsServerAddr, "metrics-server-addr", os.Getenv("METRICS_SERVER_ADDR"),
		"host:port of the adapter's gRPC metric service (default $METRICS_SERVER_ADDR; empty: the history API through kube-apiserver)")
	f.StringVar(&k.MetricsServerTokenFile, "metrics-server-token-file", historyclient.DefaultTokenFile,
		"Kubernetes token sent to the gRPC metric service, re-read for every call (default: the pod's ServiceAccount token)")
	f.StringVar(&k.MetricsServerCAFile, "metrics-server-ca-file", "",
		"CA certificates (PEM) trusted for the gRPC metric service (default: the system's; a loopback address without it is plaintext)")
}

// RestConfig loads the client config with controller-runtime's precedence (config/kubeconfig):
// --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.
func (k *KubeOptions) RestConfig() (*rest.Config, error) {
	return kubeconfig.Load(k.Kubeconfig)
}

// HistorySource connects the history API client: gRPC with --metrics-server-addr (TLS, or
// plaintext on loopback, with the token of --metrics-server-token-file), else HTTP through
// kube-apiserver.
func (k *KubeOptions) HistorySource() (HistorySource, error) {
	if k.MetricsServerAddr != "" {
		c, err := historyclient.DialGRPC(historyclient.GRPCOptions{Address: k.MetricsServerAddr, TokenFile: k.MetricsServerTokenFile, CAFile: k.MetricsServerCAFile})
		if err != nil {
			return nil, fmt.Errorf("--metrics-server-addr %q: %w", k.MetricsServerAddr, err)
		}
		return c, nil
	}
	c, err := k.RestConfig()
	if err != nil {
		return nil, err
	}
	h, err := historyclient.NewHTTPForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("history API client: %w", err)
	}
	return h, nil
}
