package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
)

// publisher is a pool of confirm-mode channels on one connection. Many
// publishes are in flight on each channel at once (deferred confirms), so
// concurrent requests do not wait for each other's confirms.
type publisher struct {
	conn  *amqp.Connection
	chans []*amqp.Channel
	next  atomic.Uint32
}

// startPublisher readies a new publishing connection: topology, then the
// channel pool. A channel that the broker closes takes the connection
// down with it, so the supervisor rebuilds everything.
func (t *Transport) startPublisher(conn *amqp.Connection) error {
	if err := Declare(conn, t.cfg.Routing); err != nil {
		return err
	}
	p := &publisher{conn: conn}
	for range t.cfg.PublishChannels {
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err != nil {
			return fmt.Errorf("open publishing channel: %w", err)
		}
		go func() {
			if err, ok := <-ch.NotifyClose(make(chan *amqp.Error, 1)); ok && err != nil {
				t.logger.Warn("rabbitmq: publishing channel closed by the broker", "err", err)
				conn.Close()
			}
		}()
		p.chans = append(p.chans, ch)
	}
	t.setPub(p, nil)
	return nil
}

func (p *publisher) channel() *amqp.Channel {
	return p.chans[int(p.next.Add(1))%len(p.chans)]
}

// begin registers a publish so Close can wait for it, and returns the
// current publisher.
func (t *Transport) begin() (*publisher, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return nil, chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	if t.pub == nil {
		return nil, chronicle.Unavailable(RetryAfter, unreachable, t.pubErr)
	}
	t.inflight.Add(1)
	return t.pub, nil
}

// Publish implements chronicle.Publisher: persistent messages to the publish
// exchange with routing key = event_type, message_id = event id; it
// returns once the broker confirmed every one. A nack, a closed channel or
// no confirm within ConfirmTimeout is ErrUnavailable.
func (t *Transport) Publish(ctx context.Context, events []*chronicle.Event) error {
	msgs := make([]amqp.Publishing, len(events))
	keys := make([]string, len(events))
	now := t.cfg.Now()
	for i, e := range events {
		body, err := e.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		h := e.History.Append(chronicle.Hop{Hop: chronicle.HopPublished, At: now, Transport: "rabbitmq",
			Exchange: t.exchange, RoutingKey: e.EventType, Queues: t.router.Queues(e.EventType)})
		msgs[i] = amqp.Publishing{
			Headers:      amqp.Table{chronicle.HeaderHistory: []byte(h)},
			DeliveryMode: amqp.Persistent,
			ContentType:  "application/json",
			MessageId:    e.ID,
			Type:         e.EventType,
			Timestamp:    e.Timestamp,
			Body:         body,
		}
		keys[i] = e.EventType
	}
	return t.publish(ctx, t.exchange, keys, msgs)
}

// PublishMessage publishes m to the exchange as it is, the way a foreign
// producer would: consumers decode and check its body.
func (t *Transport) PublishMessage(ctx context.Context, m chronicle.Message) error {
	msg := amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/json",
		MessageId:    m.ID,
		Type:         m.Type,
		Timestamp:    m.Timestamp,
		Body:         m.Body,
		Headers:      toTable(m.Headers),
	}
	return t.publish(ctx, t.exchange, []string{m.Type}, []amqp.Publishing{msg})
}

func (t *Transport) publish(ctx context.Context, exchange string, keys []string, msgs []amqp.Publishing) error {
	p, err := t.begin()
	if err != nil {
		return err
	}
	defer t.inflight.Done()
	start := time.Now()
	ch := p.channel()
	t.stats.outstanding.Add(int64(len(msgs)))
	defer t.stats.outstanding.Add(-int64(len(msgs)))
	dcs := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for i := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, keys[i], false, false, msgs[i])
		if err != nil {
			return unavailable("publish", err)
		}
		dcs = append(dcs, dc)
	}
	wctx, cancel := context.WithTimeout(ctx, t.cfg.ConfirmTimeout)
	defer cancel()
	if err := waitConfirms(wctx, dcs); err != nil {
		return err
	}
	t.stats.observePublish(len(msgs), time.Since(start))
	return nil
}

// waitConfirms waits for every confirm; the first nack or timeout wins.
func waitConfirms(ctx context.Context, dcs []*amqp.DeferredConfirmation) error {
	for _, dc := range dcs {
		ok, err := dc.WaitContext(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return chronicle.Unavailable(RetryAfter, "RabbitMQ did not confirm the publish in time", nil)
		case err != nil:
			return unavailable("await confirm", err)
		case !ok:
			return chronicle.Unavailable(RetryAfter, "RabbitMQ refused the message (nack) or its channel closed", nil)
		}
	}
	return nil
}

func unavailable(what string, err error) error {
	return chronicle.Unavailable(RetryAfter, "RabbitMQ cannot take the request now", fmt.Errorf("%s: %w", what, err))
}

func toTable(h map[string]string) amqp.Table {
	if len(h) == 0 {
		return nil
	}
	t := make(amqp.Table, len(h))
	for k, v := range h {
		t[k] = v
	}
	return t
}

// Queues implements chronicle.QueueInspector.
func (t *Transport) Queues(ctx context.Context) ([]chronicle.QueueStatus, error) {
	p, err := t.begin()
	if err != nil {
		return nil, err
	}
	defer t.inflight.Done()
	return inspect(p.conn, queueNames(t.cfg.Routing))
}
