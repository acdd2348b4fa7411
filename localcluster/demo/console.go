package demo

import (
	"context"

	"github.com/kapacitystack/kapacity/console"
	"github.com/kapacitystack/kapacity/localcluster"
)

// startConsole starts Kapacity's web console on a free loopback port, acting with the bed's
// admin kubeconfig (the demo's user), and returns its URL (with the token made at start) and how
// to stop it.
func startConsole(ctx context.Context, bed *localcluster.Cluster) (url string, stop func(), err error) {
	s, err := console.StartForDemo(ctx, bed.Kubeconfig)
	if err != nil {
		return "", nil, err
	}
	return s.URL(), s.Close, nil
}

// consoleLine is the instructions' line for the console.
func consoleLine(url string) string {
	return "Web console (read-only, the IHPAs, their portraits, pods and cost): " + url + "\n"
}
