package discovery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	duration        *prometheus.HistogramVec
	lastSuccess     prometheus.Gauge
	seriesListed    prometheus.Gauge
	customMetrics   prometheus.Gauge
	externalMetrics prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kapacity_adapter_relist_duration_seconds",
			Help:    "Duration of metrics discovery (all series calls of one listing), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_relist_last_success_timestamp_seconds",
			Help: "When metrics discovery last succeeded.",
		}),
		seriesListed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_discovered_series",
			Help: "Series returned by the series calls of the last successful discovery.",
		}),
		customMetrics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_custom_metrics",
			Help: "Custom metrics (resource and metric pairs) served after the last discovery.",
		}),
		externalMetrics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kapacity_adapter_external_metrics",
			Help: "External metrics served after the last discovery.",
		}),
	}
	reg.MustRegister(m.duration, m.lastSuccess, m.seriesListed, m.customMetrics, m.externalMetrics)
	return m
}

func (m *metrics) observe(began time.Time, err error) {
	outcome := "success"
	if err != nil {
		outcome = "error"
	} else {
		m.lastSuccess.SetToCurrentTime()
	}
	m.duration.WithLabelValues(outcome).Observe(time.Since(began).Seconds())
}
