// Package metrics defines modgate's Prometheus metrics and feeds them from
// what the other packages already produce (verdicts, webhook audit records,
// queue depth), so that none of them needs to know about Prometheus.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/modgate/modgate/pipeline"
)

// Metrics is the set of modgate's collectors, registered on its own
// registry (plus the Go and process collectors).
type Metrics struct {
	reg         *prometheus.Registry
	webhooks    *prometheus.CounterVec
	admissions  *prometheus.CounterVec
	stages      *prometheus.HistogramVec
	security    *prometheus.CounterVec
	redelivered prometheus.Counter
	queueDepth  prometheus.GaugeFunc
}

// New registers the collectors. depth reports the number of jobs waiting
// (nil: not reported).
func New(depth func(context.Context) (int, error)) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modgate_webhook_deliveries_total",
		Help: "Webhook deliveries received, by provider and result (accepted, ignored, refused).",
	}, []string{"provider", "result"})
	m.admissions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modgate_admissions_total",
		Help: "Admissions finished, by result (admitted, duplicate, rejected, error).",
	}, []string{"result"})
	m.stages = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "modgate_stage_duration_seconds",
		Help:    "Duration of each admission stage, by stage and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms … 16 s
	}, []string{"stage", "status"})
	m.security = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modgate_security_events_total",
		Help: "Security events (moved tags, checksum mismatches, forged signatures), by check.",
	}, []string{"check"})
	m.redelivered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "modgate_redeliveries_total",
		Help: "Jobs delivered to a worker more than once (retries after transient failures or crashes).",
	})
	m.reg.MustRegister(m.webhooks, m.admissions, m.stages, m.security, m.redelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if depth != nil {
		m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "modgate_queue_depth",
			Help: "Admission and re-verification jobs waiting in the stream.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := depth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
		m.reg.MustRegister(m.queueDepth)
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Verdict records one finished admission.
func (m *Metrics) Verdict(v *pipeline.Verdict) {
	m.admissions.WithLabelValues(string(v.Result)).Inc()
	for _, s := range v.Stages {
		if s.Status == "skipped" {
			continue
		}
		m.stages.WithLabelValues(s.Name, s.Status).Observe(s.DurationMS / 1000)
	}
	for _, p := range v.Problems {
		if p.Security {
			m.security.WithLabelValues(p.Check).Inc()
		}
	}
}

// Webhook records one delivery.
func (m *Metrics) Webhook(provider, result string) {
	m.webhooks.WithLabelValues(provider, result).Inc()
}

// SecurityEvent records a security event outside an admission (a forged
// webhook signature, say).
func (m *Metrics) SecurityEvent(check string) { m.security.WithLabelValues(check).Inc() }

// Redelivered records a job seen again.
func (m *Metrics) Redelivered() { m.redelivered.Inc() }
