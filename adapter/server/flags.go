package server

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	cliflag "k8s.io/component-base/cli/flag"
)

// AddFlags registers every flag of `kapacity adapter` on fs, prometheus-adapter's (the generic
// API server's secure serving, delegated authentication and authorization, audit, features,
// --lister-kubeconfig…) included, and returns them by section, as --help prints them.
func (o *Options) AddFlags(fs *pflag.FlagSet) cliflag.NamedFlagSets {
	fss := o.flagSets()
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
	return fss
}

// flagSets are the adapter's flags by section, in the order --help prints them: what a
// prometheus-adapter user sets first, then Kapacity's additions, then the generic API server's.
func (o *Options) flagSets() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.Prometheus.AddFlags(fss.FlagSet("prometheus"))

	discovery := fss.FlagSet("metrics discovery")
	discovery.StringVar(&o.ConfigFile, "config", "", "metrics-discovery config file (prometheus-adapter format); default: Kapacity's built-in config")
	discovery.DurationVar(&o.ConfigReloadInterval, "config-reload-interval", 10*time.Second, "how often the config file is checked for changes (0 disables reloading)")
	discovery.DurationVar(&o.RelistInterval, "metrics-relist-interval", time.Minute, "how often the series in Prometheus are listed to discover metrics; unknown metrics asked for also trigger a (rate-limited) listing")
	discovery.DurationVar(&o.MaxAge, "metrics-max-age", 0, "how far back a series needs a sample to be discovered (0: the relist interval)")
	discovery.IntVar(&o.MaxRegexBytes, "max-name-regex-bytes", 0, "longest object-name regex in one query; requests for more objects are split into several queries (0: 8 KiB)")

	o.History.AddFlags(fss.FlagSet("history API"))
	o.History.AddGRPCFlags(fss.FlagSet("Kapacity's gRPC ProviderService"))
	o.ServingCert.AddFlags(fss.FlagSet("serving certificate"))

	// custom-metrics-apiserver makes the generic server's options and registers their flags all in
	// one set; it is made once on a set of its own (InstallFlags runs once), and the same options
	// are registered again here by section (their current values are the defaults).
	o.base.FlagSet = pflag.NewFlagSet("custom-metrics-apiserver", pflag.ContinueOnError)
	o.base.InstallFlags()
	generic := o.base.CustomMetricsAdapterServerOptions
	serving := fss.FlagSet("secure serving")
	generic.SecureServing.AddFlags(serving)
	serving.BoolVar(&o.DisableHTTP2, "disable-http2", false, "serve HTTP/1.1 only on the secure port, against HTTP/2 rapid reset and stream exhaustion (prometheus-adapter's flag; the same as --disable-http2-serving)")
	generic.Authentication.AddFlags(fss.FlagSet("authentication"))
	generic.Authorization.AddFlags(fss.FlagSet("authorization"))
	generic.Audit.AddFlags(fss.FlagSet("audit"))
	generic.Features.AddFlags(fss.FlagSet("features"))

	client := fss.FlagSet("Kubernetes client")
	client.StringVar(&o.base.RemoteKubeConfigFile, "lister-kubeconfig", o.base.RemoteKubeConfigFile,
		"kubeconfig of the cluster whose objects the metrics describe (default: the in-cluster config)")
	client.DurationVar(&o.base.DiscoveryInterval, "discovery-interval", o.base.DiscoveryInterval, "how often API discovery (the REST mapper) is refreshed")
	client.Float32Var(&o.base.ClientQPS, "client-qps", o.base.ClientQPS, "requests per second to kube-apiserver")
	client.IntVar(&o.base.ClientBurst, "client-burst", o.base.ClientBurst, "request burst to kube-apiserver")
	return fss
}

// setSectionedHelp makes --help and usage errors print the flags by section, the inherited ones
// (logging: -v, --logging-format…) last.
func setSectionedHelp(cmd *cobra.Command, fss cliflag.NamedFlagSets) {
	print := func(w io.Writer, c *cobra.Command) {
		all := fss
		all.Order = append([]string(nil), fss.Order...)
		all.FlagSets = map[string]*pflag.FlagSet{}
		for name, fs := range fss.FlagSets {
			all.FlagSets[name] = fs
		}
		if inherited := c.InheritedFlags(); inherited.HasFlags() {
			all.Order = append(all.Order, "logging and global")
			all.FlagSets["logging and global"] = inherited
		}
		cliflag.PrintSections(w, all, terminalWidth(w))
	}
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		fmt.Fprintf(c.OutOrStderr(), "Usage:\n  %s\n", c.UseLine())
		print(c.OutOrStderr(), c)
		return nil
	})
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		fmt.Fprintf(c.OutOrStdout(), "%s\n\nUsage:\n  %s\n", c.Long, c.UseLine())
		print(c.OutOrStdout(), c)
	})
}

// terminalWidth is the width of w when it is a terminal; 0 (no wrapping) otherwise.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}
