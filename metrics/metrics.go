// Package metrics exports Chronicle's Prometheus metrics: events accepted
// and rejected (by reason), publish latency, consumer batch sizes and
// store write latency, queue and dead-letter queue depths, reconnects and
// outstanding confirms. Consumers report through a consumer.Observer, so
// the transports know nothing of Prometheus.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
)

// Metrics holds the collectors of one process.
type Metrics struct {
	reg *prometheus.Registry

	EventsAccepted     prometheus.Counter
	EventsRejected     *prometheus.CounterVec
	EventsStored       *prometheus.CounterVec
	EventsDeadLettered *prometheus.CounterVec
	PublishSeconds     prometheus.Histogram
	BatchSize          prometheus.Histogram
	StoreSeconds       prometheus.Histogram
	StoreFailures      *prometheus.CounterVec
	HTTPRequests       *prometheus.CounterVec
	HTTPSeconds        *prometheus.HistogramVec
}

// New returns a registry with Go runtime, process and Chronicle metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.EventsAccepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chronicle_events_accepted_total", Help: "Events answered 202: durably held by the transport."})
	m.EventsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_events_rejected_total", Help: "Events refused, by reason (invalid, validation, too_large, unavailable, overloaded, conflict, unauthorized)."},
		[]string{"reason"})
	m.PublishSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chronicle_publish_duration_seconds", Help: "Time for the transport to take a publish (journal commit or broker confirm).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.BatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chronicle_consumer_batch_size", Help: "Events stored per consumer batch (one store transaction).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	m.StoreSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chronicle_store_write_duration_seconds", Help: "Time to store one consumer batch.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.StoreFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_store_write_failures_total", Help: "Attempts to settle a consumer batch that failed (retried, never dropped), by queue."},
		[]string{"queue"})
	m.EventsStored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_events_stored_total", Help: "Events this process's consumers stored, by route queue (an event routed to two queues counts in each)."},
		[]string{"queue"})
	m.EventsDeadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_events_dead_lettered_total", Help: "Messages this process's consumers dead-lettered, by route queue and reason class (parse_error, missing_field, invalid_field, store_refused_the_event, …)."},
		[]string{"queue", "reason"})
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.HTTPSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chronicle_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"route"})
	for _, c := range []prometheus.Collector{m.EventsAccepted, m.EventsRejected, m.EventsStored, m.EventsDeadLettered,
		m.PublishSeconds, m.BatchSize, m.StoreSeconds, m.StoreFailures, m.HTTPRequests, m.HTTPSeconds} {
		f(c)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// GaugeFunc registers a gauge read at scrape time.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// CounterFunc registers a counter read at scrape time.
func (m *Metrics) CounterFunc(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// WatchQueues exports every queue's depth and consumers (dead-letter and
// unrouted queues included, by kind), read from the gateway at scrape
// time.
func (m *Metrics) WatchQueues(gw chronicle.QueueInspector) {
	m.reg.MustRegister(&queueCollector{gw: gw})
}

var (
	depthDesc     = prometheus.NewDesc("chronicle_queue_depth", "Messages in a queue (kind: route, dlq, unrouted).", []string{"queue", "kind", "route"}, nil)
	consumersDesc = prometheus.NewDesc("chronicle_queue_consumers", "Consumers of a queue.", []string{"queue", "kind", "route"}, nil)
	upDesc        = prometheus.NewDesc("chronicle_transport_up", "1 when the transport can be reached.", nil, nil)
)

type queueCollector struct{ gw chronicle.QueueInspector }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- consumersDesc
	ch <- upDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	qs, err := c.gw.Queues(ctx)
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	for _, q := range qs {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(q.Depth), q.Name, string(q.Kind), q.Route)
		ch <- prometheus.MustNewConstMetric(consumersDesc, prometheus.GaugeValue, float64(q.Consumers), q.Name, string(q.Kind), q.Route)
	}
}

// Consumers is a consumer.Observer that counts, per route queue, the
// events stored and the messages dead-lettered (by the class of their
// reason), and measures batches.
type Consumers struct{ m *Metrics }

var _ consumer.Observer = Consumers{}

// Consumers returns the observer to give the transports' consumers.
func (m *Metrics) Consumers() Consumers { return Consumers{m} }

// Settled implements consumer.Observer.
func (c Consumers) Settled(queue string, stored int, dead []string, took time.Duration) {
	m := c.m
	if stored > 0 {
		m.EventsStored.WithLabelValues(queue).Add(float64(stored))
		m.BatchSize.Observe(float64(stored))
		m.StoreSeconds.Observe(took.Seconds())
	}
	for _, reason := range dead {
		m.EventsDeadLettered.WithLabelValues(queue, ReasonClass(reason)).Inc()
	}
}

// Failed implements consumer.Observer.
func (c Consumers) Failed(queue string, _ error) { c.m.StoreFailures.WithLabelValues(queue).Inc() }

// ReasonClass is the label of a dead-letter reason: the words before its
// first colon in snake case ("parse error: …" is parse_error), so that the
// label has a few values, not one per message.
func ReasonClass(reason string) string {
	head, _, _ := strings.Cut(reason, ":")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(head)) {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	class := strings.TrimSuffix(b.String(), "_")
	if class == "" || len(class) > 40 {
		return "other"
	}
	return class
}

// SinkFigures are one outbound sink's figures: its lag (events in the log
// after its cursor; negative when unknown) and what this process
// delivered, delivered again after a failed attempt, and failed.
type SinkFigures struct {
	Name        string
	Lag         int64
	Delivered   uint64
	Redelivered uint64
	Failures    uint64
}

// WatchSinks exports the outbound sinks' figures, read at scrape time.
func (m *Metrics) WatchSinks(figures func(ctx context.Context) []SinkFigures) {
	m.reg.MustRegister(&sinkCollector{figures: figures})
}

var (
	sinkLagDesc = prometheus.NewDesc("chronicle_sink_lag_events",
		"Events in the log after a sink's cursor: not delivered yet (or not matching its pattern).", []string{"sink"}, nil)
	sinkFailuresDesc = prometheus.NewDesc("chronicle_sink_delivery_failures_total",
		"Attempts to deliver a batch to a sink that failed (each is retried).", []string{"sink"}, nil)
	sinkDeliveredDesc = prometheus.NewDesc("chronicle_sink_events_delivered_total",
		"Events this process delivered to a sink.", []string{"sink"}, nil)
	sinkRedeliveredDesc = prometheus.NewDesc("chronicle_sink_events_redelivered_total",
		"Events delivered to a sink by an attempt that followed a failed one: the receiver may have them twice.", []string{"sink"}, nil)
)

type sinkCollector struct {
	figures func(ctx context.Context) []SinkFigures
}

func (c *sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinkLagDesc
	ch <- sinkFailuresDesc
	ch <- sinkDeliveredDesc
	ch <- sinkRedeliveredDesc
}

func (c *sinkCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range c.figures(ctx) {
		if f.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(sinkLagDesc, prometheus.GaugeValue, float64(f.Lag), f.Name)
		}
		ch <- prometheus.MustNewConstMetric(sinkFailuresDesc, prometheus.CounterValue, float64(f.Failures), f.Name)
		ch <- prometheus.MustNewConstMetric(sinkDeliveredDesc, prometheus.CounterValue, float64(f.Delivered), f.Name)
		ch <- prometheus.MustNewConstMetric(sinkRedeliveredDesc, prometheus.CounterValue, float64(f.Redelivered), f.Name)
	}
}
