// Command kapacity is the single binary of Kapacity: the metrics adapter, the controllers, the
// recommender jobs and the developer tools are its subcommands. This file only wires them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	logsapi "k8s.io/component-base/logs/api/v1"
	// The json log format (--logging-format=json), registered before the flags are made.
	_ "k8s.io/component-base/logs/json/register"
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
	err := newRootCommand(applyLogging).ExecuteContext(ctx)
	stop()
	klog.Flush()
	if err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}

// applyLogging makes the logging flags take effect, once per process: component-base's logging
// configuration is global (klog), as in every Kubernetes component.
func applyLogging(c *logsapi.LoggingConfiguration) error {
	return logsapi.ValidateAndApply(c, nil)
}

// newRootCommand returns the kapacity command; apply is given the logging flags' configuration
// before any subcommand runs.
func newRootCommand(apply func(*logsapi.LoggingConfiguration) error) *cobra.Command {
	root := &cobra.Command{
		Use:          "kapacity",
		Short:        "Prometheus-native metrics adapter and predictive autoscaler for Kubernetes",
		SilenceUsage: true,
		// --version prints what `kapacity version` prints; image tests run it on the binary.
		Version: version,
		// Without a Run, cobra treats stray arguments as unknown subcommands and says so.
	}
	// One logging scheme for every component, the Kubernetes components' own (component-base):
	// -v and --vmodule, --logging-format (text or json), --log-flush-frequency, as
	// prometheus-adapter takes them. klog's file-logging flags went out of Kubernetes in 1.26.
	logging := logsapi.NewLoggingConfiguration()
	logsapi.AddFlags(logging, root.PersistentFlags())
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := apply(logging); err != nil {
			return fmt.Errorf("logging flags: %w", err)
		}
		return nil
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
