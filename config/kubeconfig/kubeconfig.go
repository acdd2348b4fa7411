// Package kubeconfig loads the Kubernetes client configuration every Kapacity command uses, with
// controller-runtime's precedence, so that the manager, the recommender jobs and the console agree
// on which cluster they talk to.
package kubeconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/homedir"
)

// Flag and FlagHelp are the --kubeconfig flag every command registers.
const (
	Flag     = "kubeconfig"
	FlagHelp = "kubeconfig file; default: $KUBECONFIG, then the in-cluster config, then ~/.kube/config"
)

// Load returns the client configuration, taken from the first of: path (the --kubeconfig flag),
// $KUBECONFIG (a list of files, merged as kubectl does), the in-cluster service account, and
// ~/.kube/config. This is controller-runtime's order: an explicit choice wins, and a pod uses
// its own identity unless told otherwise.
func Load(path string) (*rest.Config, error) {
	c, _, err := loadFirst(path, "", rest.InClusterConfig)
	return c, err
}

// LoadContext is Load with the kubeconfig context kubeContext (empty: the current one), and also
// returns that context's namespace as kubectl takes it ("default" when it names none; "" in-cluster).
func LoadContext(path, kubeContext string) (*rest.Config, string, error) {
	return loadFirst(path, kubeContext, rest.InClusterConfig)
}

// loadFirst is LoadContext with the in-cluster loader given, so that tests need no pod.
func loadFirst(path, kubeContext string, inCluster func() (*rest.Config, error)) (*rest.Config, string, error) {
	if path != "" {
		return load(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, kubeContext, fmt.Sprintf("--%s %s", Flag, path))
	}
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "" {
		return load(clientcmd.NewDefaultClientConfigLoadingRules(), kubeContext, "$"+clientcmd.RecommendedConfigPathEnvVar)
	}
	if c, err := inCluster(); err == nil {
		return c, "", nil
	} else if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, "", fmt.Errorf("the in-cluster config: %w", err)
	}
	// Not clientcmd.RecommendedHomeFile: that is fixed when the process starts.
	home := filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
	if _, err := os.Stat(home); err != nil {
		return nil, "", fmt.Errorf("no cluster to talk to: pass --%s, set $%s, run in a pod, or create %s",
			Flag, clientcmd.RecommendedConfigPathEnvVar, home)
	}
	return load(&clientcmd.ClientConfigLoadingRules{ExplicitPath: home}, kubeContext, home)
}

func load(rules *clientcmd.ClientConfigLoadingRules, kubeContext, from string) (*rest.Config, string, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	c, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading the kubeconfig from %s: %w", from, err)
	}
	ns, _, err := cc.Namespace() // "default" when the context names none, as kubectl
	if err != nil {
		ns = ""
	}
	return c, ns, nil
}
