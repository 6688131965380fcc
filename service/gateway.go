package service

import (
	"context"
	"fmt"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/rabbitmq"
	"github.com/chronicle-audit/chronicle/routing"
)

// openGateway builds the configured transport, its consumers checking
// messages with the ingestion rules (foreign messages going through the
// HTTP API's pipeline) and reporting to the metrics and the health of
// this process.
func (s *Service) openGateway(ctx context.Context) error {
	c := s.cfg
	check := ingest.Checker{Pipeline: s.pipeline(), MaxFuture: c.OccurredMaxFuture}.Check
	switch c.Transport {
	case config.TransportInproc:
		t, err := inproc.New(ctx, inproc.Config{
			Routing:       c.Routing,
			Journal:       s.store,
			Check:         check,
			Capacity:      c.QueueCapacity,
			BatchSize:     c.BatchSize,
			ConsumerCount: c.ConsumerCount,
			Observer:      s.metrics.Consumers(),
			Health:        s.health,
			Process:       s.process,
			StoreName:     s.store.Name(),
			Logger:        s.logger,
		})
		if err != nil {
			return err
		}
		if !t.Durable() {
			s.logger.Warn("in-process queues are in memory only: events accepted but not yet stored are lost if the process dies", "store", s.store.Name())
		}
		s.gateway, s.plan = t, t.Plan
		return nil
	case config.TransportRabbitMQ:
		t, err := rabbitmq.New(ctx, rabbitmq.Config{
			URL:             c.RabbitMQURL,
			Routing:         c.Routing,
			Store:           s.store,
			Check:           check,
			PublishChannels: c.PublishChannels,
			ConfirmTimeout:  c.ConfirmTimeout,
			Prefetch:        c.Prefetch,
			BatchSize:       c.BatchSize,
			BatchWait:       c.BatchWait,
			ConsumerCount:   c.ConsumerCount,
			Observer:        s.metrics.Consumers(),
			Health:          s.health,
			Process:         s.process,
			StoreName:       s.store.Name(),
			Name:            "chronicle " + c.Mode,
			Logger:          s.logger,
		})
		if err != nil {
			return fmt.Errorf("RabbitMQ: %w", err)
		}
		s.metrics.CounterFunc("chronicle_rabbitmq_reconnects_total", "Connections to RabbitMQ re-established after a loss.",
			func() float64 { return float64(t.Stats().Reconnects) })
		s.metrics.GaugeFunc("chronicle_rabbitmq_confirms_outstanding", "Published messages awaiting the broker's confirm.",
			func() float64 { return float64(t.Stats().ConfirmsOutstanding) })
		s.gateway = t
		s.plan = func(role string) ([]routing.Assignment, error) { return c.Routing.Plan(role, c.ConsumerCount) }
		return nil
	}
	return fmt.Errorf("CHRONICLE_TRANSPORT=%s is not available in this build", c.Transport)
}
