package promclient

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the client's own metrics, registered on the adapter's registry (never the global one).
type Metrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

// NewMetrics creates and registers the client metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kapacity_prometheus_request_duration_seconds",
			Help:    "Duration of Prometheus HTTP API calls by endpoint (query, query_range, series) and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"endpoint", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kapacity_prometheus_request_failures_total",
			Help: "Failed Prometheus HTTP API calls by endpoint and reason (api: Prometheus answered an error; transport: no usable answer).",
		}, []string{"endpoint", "reason"}),
	}
	reg.MustRegister(m.duration, m.failures)
	return m
}

func (m *Metrics) observe(endpoint string, began time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "success"
	if err != nil {
		outcome = "error"
		reason := "transport"
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			reason = "api"
		}
		m.failures.WithLabelValues(endpoint, reason).Inc()
	}
	m.duration.WithLabelValues(endpoint, outcome).Observe(time.Since(began).Seconds())
}
