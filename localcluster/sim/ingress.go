package sim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ingress is an Ingress whose controller counts requests that follow Traffic, counted from Origin
// (the Start of the History that backfilled the counter's past).
type Ingress struct {
	Namespace, Name string
	Traffic         Traffic
	Origin          time.Time
}

var ingressRequestsDesc = prometheus.NewDesc("nginx_ingress_controller_requests", "Requests through the Ingress, as ingress-nginx counts them.",
	[]string{"namespace", "ingress"}, nil)

type ingressCollector struct {
	ingresses []Ingress
	now       func() time.Time
}

func (c ingressCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ingressRequestsDesc }

func (c ingressCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, in := range c.ingresses {
		ch <- prometheus.MustNewConstMetric(ingressRequestsDesc, prometheus.CounterValue, in.Traffic.Requests(in.Origin, now), in.Namespace, in.Name)
	}
}

// ServeIngresses serves nginx_ingress_controller_requests of the ingresses on /metrics on
// 127.0.0.1, as an ingress-nginx controller would, and returns the address. It stops when ctx ends.
func ServeIngresses(ctx context.Context, ingresses ...Ingress) (string, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(ingressCollector{ingresses: ingresses, now: time.Now}); err != nil {
		return "", fmt.Errorf("ingress exporter: %w", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("ingress exporter: listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(listener) }()
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	return listener.Addr().String(), nil
}
