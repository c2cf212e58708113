package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors.
type Metrics struct {
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	authentications  *prometheus.CounterVec
	authDuration     prometheus.Histogram
	upstreamDuration *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	upgradedOpen     *prometheus.GaugeVec
	upgrades         *prometheus.CounterVec
	upgradedBytes    *prometheus.CounterVec
}

// NewMetrics creates the proxy's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontgate_http_requests_total",
			Help: "Requests answered on the proxy listener, by HTTP status code and method.",
		}, []string{"code", "method"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "frontgate_http_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its response, upgraded sessions excluded, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontgate_authentication_attempts_total",
			Help: "Authentication outcomes: result is success, failure or no_credentials; reason says why a failure failed.",
		}, []string{"result", "reason"}),
		authDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "frontgate_authentication_duration_seconds",
			Help:    "Time spent establishing the caller's identity, cache hits included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "frontgate_upstream_request_duration_seconds",
			Help:    "Time from sending a request to kube-apiserver to receiving its response headers, by status code (\"error\" when no response came).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "frontgate_http_requests_in_flight",
			Help: "Requests being served now, upgraded sessions included.",
		}),
		upgradedOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "frontgate_upgraded_connections",
			Help: "Upgraded connections (exec, attach, port-forward) open now, by protocol (websocket, spdy).",
		}, []string{"protocol"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontgate_upgrades_total",
			Help: "Upgrade requests forwarded, by protocol and result (switched, refused, error).",
		}, []string{"protocol", "result"}),
		upgradedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontgate_upgraded_bytes_total",
			Help: "Bytes copied over upgraded connections, by protocol and direction (to_upstream: from the client to kube-apiserver; to_client: back).",
		}, []string{"protocol", "direction"}),
	}
	reg.MustRegister(m.requests, m.requestDuration, m.authentications, m.authDuration,
		m.upstreamDuration, m.inFlight, m.upgradedOpen, m.upgrades, m.upgradedBytes)
	return m
}
