package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	historyclient "github.com/kapacitystack/kapacity/historyapi/client"
)

// KubeOptions are the connection flags shared by train and recommend.
type KubeOptions struct {
	Kubeconfig string
	// MetricsServerAddr, when set, is the adapter's gRPC ProviderService (the reference's
	// METRICS_SERVER_ADDR); otherwise history is read over HTTP through kube-apiserver.
	MetricsServerAddr string
}

// AddFlags registers --kubeconfig and --metrics-server-addr.
func (k *KubeOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&k.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: in-cluster, then $KUBECONFIG and ~/.kube/config)")
	f.StringVar(&k.MetricsServerAddr, "metrics-server-addr", os.Getenv("METRICS_SERVER_ADDR"),
		"host:port of the adapter's gRPC metric service (default $METRICS_SERVER_ADDR; empty: the history API through kube-apiserver)")
}

// RestConfig loads the client config: --kubeconfig, else in-cluster, else the default loading rules.
func (k *KubeOptions) RestConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	} else if c, err := rest.InClusterConfig(); err == nil {
		return c, nil
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %q: %w", k.Kubeconfig, err)
	}
	return c, nil
}

// HistorySource connects the history API client: gRPC (plaintext, as the reference) with
// --metrics-server-addr, else HTTP through kube-apiserver.
func (k *KubeOptions) HistorySource() (HistorySource, error) {
	if k.MetricsServerAddr != "" {
		conn, err := grpc.NewClient(k.MetricsServerAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("--metrics-server-addr %q: %w", k.MetricsServerAddr, err)
		}
		return historyclient.NewGRPC(conn), nil
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
