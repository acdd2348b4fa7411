// Command kapacity is the single binary of Kapacity: the metrics adapter, the controllers, the
// recommender jobs and the developer tools are its subcommands. This file only wires them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	adapterserver "github.com/kapacitystack/kapacity/adapter/server"
	"github.com/kapacitystack/kapacity/console"
	"github.com/kapacitystack/kapacity/executor/manager"
	"github.com/kapacitystack/kapacity/localcluster/demo"
	"github.com/kapacitystack/kapacity/recommender/cli"
)

// version and commit are stamped by the Makefile through -ldflags.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// SIGTERM (how Kubernetes stops a pod) and Ctrl-C cancel the context every subcommand runs
	// with, so servers and controllers shut down gracefully instead of dying mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:          "kapacity",
		Short:        "Prometheus-native metrics adapter and predictive autoscaler for Kubernetes",
		SilenceUsage: true,
		// --version prints what `kapacity version` prints; image tests run it on the binary.
		Version: version,
		// Without a Run, cobra treats stray arguments as unknown subcommands and says so.
	}
	// Only klog's verbosity flags: the rest are file-logging options no component here uses.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		root.PersistentFlags().AddGoFlag(klogFlags.Lookup(name))
	}

	root.SetVersionTemplate(versionLine() + "\n")
	// Help lists the components a cluster runs apart from the tools a person runs on a laptop.
	root.AddGroup(
		&cobra.Group{ID: groupComponents, Title: "Components (what a cluster runs):"},
		&cobra.Group{ID: groupModel, Title: "Forecasting and what-if tools:"},
		&cobra.Group{ID: groupDeveloper, Title: "Trying it out:"},
	)
	inGroup := func(id string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	inGroup(groupComponents, adapterserver.NewCommand(), manager.NewCommand(), cli.NewRecommendCommand())
	inGroup(groupModel, cli.NewTrainCommand(), cli.NewForecastCommand(), cli.NewReplayCommand(), console.NewCommand())
	inGroup(groupDeveloper, demo.NewCommand())
	root.AddCommand(newVersionCommand())
	return root
}

// Command groups of `kapacity --help`.
const (
	groupComponents = "components"
	groupModel      = "model"
	groupDeveloper  = "developer"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kapacity",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}

func versionLine() string {
	return fmt.Sprintf("kapacity %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
