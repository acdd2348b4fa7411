package console

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kapacitystack/kapacity/config/kubeconfig"
)

// NewCommand returns the `console` subcommand.
func NewCommand() *cobra.Command {
	var (
		kubeconfigPath, kubeContext string
		opts                        Options
	)
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve a web console of what the autoscaler thinks, acting with your own kubeconfig and RBAC",
		Long: `console serves a read-only web UI on 127.0.0.1 (a free port by default): the IHPAs you may list
across namespaces with their state at a glance; one IHPA's providers, merged portrait, pods and their
states, gray change, stability checks, events and traffic history; and its cost in replica-hours
against a native HPA replayed on the same measured demand. Every page is your own API calls with your
kubeconfig, so RBAC decides what you see. It prints the URL to open, with a token made at start.

In a cluster, put it behind an authenticating proxy that forwards each user's bearer token
(--forwarded-token-header, --address 0.0.0.0:8080, --allowed-host the proxy's host): it then acts
with that token only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ns, err := kubeconfig.LoadContext(kubeconfigPath, kubeContext)
			if err != nil {
				return err
			}
			if ns != "" {
				opts.Namespaces = append(opts.Namespaces, ns)
			}
			opts.Config = cfg
			return Run(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfigPath, kubeconfig.Flag, "", kubeconfig.FlagHelp)
	f.StringVar(&kubeContext, "context", "", "kubeconfig context to use")
	f.StringVar(&opts.Address, "address", "127.0.0.1:0", "address to listen on (loopback by default; port 0 picks a free one)")
	f.StringSliceVar(&opts.AllowedHosts, "allowed-host", nil, "Host header accepted besides the listening address (the name a proxy or port-forward reaches the console by); repeatable")
	f.StringSliceVar(&opts.Namespaces, "namespace", nil, "namespaces to look in when you may not list namespaces (the context's namespace is added); repeatable")
	f.StringVar(&opts.ForwardedTokenHeader, "forwarded-token-header", "", "act with the bearer token an authenticating proxy forwards in this header (e.g. X-Forwarded-Access-Token) instead of the kubeconfig's credentials")
	f.BoolVar(&opts.NoHistory, "no-history", false, "do not read the history API (no measured pods, traffic or cost)")
	f.DurationVar(&opts.Refresh, "refresh", 30*time.Second, "how often pages reload themselves (0: never)")
	return cmd
}

// Run serves the console until ctx ends, printing its URL to out.
func Run(ctx context.Context, out io.Writer, opts Options) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Kapacity console: %s\n(read-only, acting with your credentials; Ctrl-C stops it)\n", s.URL())
	return s.Wait()
}

// StartForDemo starts a console on a free loopback port acting with the kubeconfig at path (the
// demo's), and returns it; its URL is s.URL(). It stops when ctx ends.
func StartForDemo(ctx context.Context, kubeconfigPath string) (*Server, error) {
	cfg, ns, err := kubeconfig.LoadContext(kubeconfigPath, "")
	if err != nil {
		return nil, err
	}
	var namespaces []string
	if ns != "" {
		namespaces = []string{ns}
	}
	return Start(ctx, Options{Config: cfg, Namespaces: namespaces, Refresh: 15 * time.Second})
}
