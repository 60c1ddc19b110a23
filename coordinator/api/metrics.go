package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, b Backend) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proximity_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "proximity_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proximity_http_auth_failures_total",
			Help: "Requests with a bearer token that did not authenticate: refused (401) or throttled (429).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.authFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "proximity_raft_leader", Help: "1 if this server is the leader and ready.",
		}, func() float64 {
			if b.IsLeader() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "proximity_fsm_applied_index", Help: "Last Raft index applied to the state machine.",
		}, func() float64 { return float64(b.FSM().AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "proximity_registry_reservations", Help: "Reservations held in the registry.",
		}, func() float64 {
			var n int
			b.FSM().Read(func(s *fsm.State) { n = len(s.Reservations) })
			return float64(n)
		}),
	)
	return m
}

func (m *metrics) observe(route, method string, code int, d time.Duration) {
	if code == 0 {
		code = 200
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
