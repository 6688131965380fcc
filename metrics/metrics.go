// Package metrics exports Chronicle's Prometheus metrics: events accepted
// and rejected (by reason), publish latency, consumer batch sizes and
// store write latency, queue and dead-letter queue depths, reconnects and
// outstanding confirms. The store and journal decorators here measure
// consumer batches without the transports knowing about Prometheus.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronicle-audit/chronicle"
)

// Metrics holds the collectors of one process.
type Metrics struct {
	reg *prometheus.Registry

	EventsAccepted prometheus.Counter
	EventsRejected *prometheus.CounterVec
	PublishSeconds prometheus.Histogram
	BatchSize      prometheus.Histogram
	StoreSeconds   prometheus.Histogram
	StoreFailures  prometheus.Counter
	HTTPRequests   *prometheus.CounterVec
	HTTPSeconds    *prometheus.HistogramVec
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
	m.StoreFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chronicle_store_write_failures_total", Help: "Consumer batches the store failed to write (retried, never dropped)."})
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronicle_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.HTTPSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chronicle_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"route"})
	for _, c := range []prometheus.Collector{m.EventsAccepted, m.EventsRejected, m.PublishSeconds, m.BatchSize,
		m.StoreSeconds, m.StoreFailures, m.HTTPRequests, m.HTTPSeconds} {
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
func (m *Metrics) WatchQueues(gw chronicle.Gateway) {
	m.reg.MustRegister(&queueCollector{gw: gw})
}

var (
	depthDesc     = prometheus.NewDesc("chronicle_queue_depth", "Messages in a queue (kind: route, dlq, unrouted).", []string{"queue", "kind", "route"}, nil)
	consumersDesc = prometheus.NewDesc("chronicle_queue_consumers", "Consumers of a queue.", []string{"queue", "kind", "route"}, nil)
	upDesc        = prometheus.NewDesc("chronicle_transport_up", "1 when the transport can be reached.", nil, nil)
)

type queueCollector struct{ gw chronicle.Gateway }

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

// Store measures the consumer batches written through StoreEvents.
type Store struct {
	chronicle.Store
	m *Metrics
}

// InstrumentStore wraps s.
func InstrumentStore(s chronicle.Store, m *Metrics) *Store { return &Store{Store: s, m: m} }

// StoreEvents implements chronicle.EventStore.
func (s *Store) StoreEvents(ctx context.Context, events []*chronicle.Event) error {
	start := time.Now()
	err := s.Store.StoreEvents(ctx, events)
	s.m.observe(len(events), time.Since(start), err)
	return err
}

func (m *Metrics) observe(n int, d time.Duration, err error) {
	if err != nil {
		m.StoreFailures.Inc()
		return
	}
	if n > 0 {
		m.BatchSize.Observe(float64(n))
		m.StoreSeconds.Observe(d.Seconds())
	}
}

// Journal measures the consumer batches settled through a journal.
type Journal struct {
	chronicle.Journal
	m *Metrics
}

// InstrumentJournal wraps j.
func InstrumentJournal(j chronicle.Journal, m *Metrics) *Journal { return &Journal{Journal: j, m: m} }

// Settle implements chronicle.Journal.
func (j *Journal) Settle(ctx context.Context, s *chronicle.Settlement) error {
	start := time.Now()
	err := j.Journal.Settle(ctx, s)
	j.m.observe(len(s.Events), time.Since(start), err)
	return err
}
