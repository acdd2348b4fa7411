package demo

import (
	"context"

	"github.com/kapacitystack/kapacity/localcluster"
)

// startConsole is where the demo starts Kapacity's web console on the bed (with the admin
// kubeconfig, bed.Kubeconfig) and returns its URL, printed with the instructions, and how to stop
// it. The console is not wired in yet: it returns no URL and the instructions leave the line out.
func startConsole(ctx context.Context, bed *localcluster.Cluster) (url string, stop func(), err error) {
	_, _ = ctx, bed
	return "", func() {}, nil
}

// consoleLine is the instructions' line for the console, empty without one.
func consoleLine(url string) string {
	if url == "" {
		return ""
	}
	return "Web console: " + url + "\n"
}
