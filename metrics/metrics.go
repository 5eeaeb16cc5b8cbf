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
	reverified  *prometheus.CounterVec
	lastRun     prometheus.Gauge
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
	m.reverified = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "modgate_reverify_versions_total",
		Help: "Versions re-verified by this process, by outcome (good, quarantined, still-quarantined, restored, error).",
	}, []string{"outcome"})
	m.lastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "modgate_reverify_last_run_completed_timestamp_seconds",
		Help: "When the last scheduled re-verification run this process followed completed (0: none yet).",
	})
	m.reg.MustRegister(m.webhooks, m.admissions, m.stages, m.security, m.redelivered, m.reverified, m.lastRun,
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

// Reverified records the outcomes of a re-verification shard (counts by
// outcome).
func (m *Metrics) Reverified(counts map[string]int) {
	for o, n := range counts {
		m.reverified.WithLabelValues(o).Add(float64(n))
	}
}

// RunCompleted records the end of a scheduled re-verification run.
func (m *Metrics) RunCompleted(t time.Time) { m.lastRun.Set(float64(t.Unix())) }

// WatchKeys exports, at each scrape, when each signing key keys lists
// expires: modgate_signing_key_expiry_timestamp_seconds{group,fingerprint},
// for alerts such as "expires within 30 days".
func (m *Metrics) WatchKeys(keys func() []pipeline.KeyExpiry) {
	m.reg.MustRegister(keyCollector{keys})
}

var keyExpiryDesc = prometheus.NewDesc("modgate_signing_key_expiry_timestamp_seconds",
	"When each OpenPGP signing key of a signer group expires (keys that never expire are not listed); the versions it signed fail re-verification from then.",
	[]string{"group", "fingerprint"}, nil)

type keyCollector struct{ keys func() []pipeline.KeyExpiry }

func (keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyExpiryDesc }

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.keys() {
		ch <- prometheus.MustNewConstMetric(keyExpiryDesc, prometheus.GaugeValue, float64(k.Expires.Unix()), k.Group, k.Fingerprint)
	}
}
