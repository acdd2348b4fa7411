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
	return loadFirst(path, rest.InClusterConfig)
}

// loadFirst is Load with the in-cluster loader given, so that tests need no pod.
func loadFirst(path string, inCluster func() (*rest.Config, error)) (*rest.Config, error) {
	if path != "" {
		return load(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, fmt.Sprintf("--%s %s", Flag, path))
	}
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "" {
		return load(clientcmd.NewDefaultClientConfigLoadingRules(), "$"+clientcmd.RecommendedConfigPathEnvVar)
	}
	if c, err := inCluster(); err == nil {
		return c, nil
	} else if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("the in-cluster config: %w", err)
	}
	// Not clientcmd.RecommendedHomeFile: that is fixed when the process starts.
	home := filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
	if _, err := os.Stat(home); err != nil {
		return nil, fmt.Errorf("no cluster to talk to: pass --%s, set $%s, run in a pod, or create %s",
			Flag, clientcmd.RecommendedConfigPathEnvVar, home)
	}
	return load(&clientcmd.ClientConfigLoadingRules{ExplicitPath: home}, home)
}

func load(rules *clientcmd.ClientConfigLoadingRules, from string) (*rest.Config, error) {
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig from %s: %w", from, err)
	}
	return c, nil
}
