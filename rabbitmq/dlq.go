package rabbitmq

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/routing"
)

// DeadLetterQueues implements chronicle.DeadLetterChannel.
func (t *Transport) DeadLetterQueues(ctx context.Context) ([]chronicle.QueueStatus, error) {
	p, err := t.begin()
	if err != nil {
		return nil, err
	}
	defer t.inflight.Done()
	var qs []chronicle.QueueStatus
	for _, q := range queueNames(t.cfg.Routing) {
		if q.Kind != chronicle.QueueRoute {
			qs = append(qs, q)
		}
	}
	return inspect(p.conn, qs)
}

func (t *Transport) deadLetterQueue(name string) (chronicle.QueueKind, error) {
	if name == routing.UnroutedQueue {
		return chronicle.QueueUnrouted, nil
	}
	for _, r := range t.cfg.Routing.Routes {
		if r.DeadLetterQueue == name {
			return chronicle.QueueDeadLetter, nil
		}
	}
	return "", chronicle.Errorf(chronicle.ErrNotFound, "no dead-letter queue named %s", name)
}

// holding is a set of messages taken from a dead-letter queue without
// acknowledgement on a channel of its own. Whatever is not acked goes back
// to the queue, in its original position, when the channel closes: the
// broker requeues unacknowledged messages in order.
type holding struct {
	ch   *amqp.Channel
	msgs []amqp.Delivery
}

// hold takes up to limit messages (all when limit <= 0) from the head of
// queue. It never takes more than the queue held when it started, so it
// cannot chase its own requeued messages.
func (t *Transport) hold(p *publisher, queue string, limit int) (*holding, error) {
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, unavailable("open channel", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, unavailable("inspect "+queue, err)
	}
	n := q.Messages
	if limit > 0 {
		n = min(n, limit)
	}
	h := &holding{ch: ch}
	for len(h.msgs) < n {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			ch.Close()
			return nil, unavailable("get from "+queue, err)
		}
		if !ok {
			break
		}
		h.msgs = append(h.msgs, d)
	}
	return h, nil
}

// release returns every message not acked to the queue, in order.
func (h *holding) release() { h.ch.Close() }

// withHeld takes up to limit messages (all when limit <= 0) from the head
// of the dead-letter queue, lets fn settle some of them, and hands the
// rest back in order.
func (t *Transport) withHeld(queue string, limit int, fn func(p *publisher, kind chronicle.QueueKind, h *holding) error) error {
	kind, err := t.deadLetterQueue(queue)
	if err != nil {
		return err
	}
	p, err := t.begin()
	if err != nil {
		return err
	}
	defer t.inflight.Done()
	h, err := t.hold(p, queue, limit)
	if err != nil {
		return err
	}
	defer h.release()
	return fn(p, kind, h)
}

// holdLimit is how many messages a selection needs held: by ids, the
// whole queue must be searched.
func holdLimit(sel chronicle.Selection) int {
	if len(sel.IDs) > 0 {
		return 0
	}
	return sel.Limit
}

// PeekDeadLetters implements chronicle.DeadLetterChannel: the messages are
// read and handed back, so the queue is unchanged (depth and order).
func (t *Transport) PeekDeadLetters(ctx context.Context, queue string, limit int) ([]chronicle.DeadLetter, error) {
	var out []chronicle.DeadLetter
	err := t.withHeld(queue, limit, func(_ *publisher, kind chronicle.QueueKind, h *holding) error {
		out = make([]chronicle.DeadLetter, len(h.msgs))
		for i, d := range h.msgs {
			out[i] = DeadLetterOf(d, kind == chronicle.QueueUnrouted)
		}
		return nil
	})
	return out, err
}

func selected(sel chronicle.Selection, d amqp.Delivery, i int) bool {
	switch {
	case len(sel.IDs) > 0:
		return slices.Contains(sel.IDs, deadLetterID(d))
	case sel.Limit > 0:
		return i < sel.Limit
	default:
		return true
	}
}

// ReplayDeadLetters implements chronicle.DeadLetterChannel. Each selected
// dead letter is published, with a confirm, straight to the queue it died
// in (through the default exchange, so no other route gets a second copy)
// and only then acked on the dead-letter queue. Its death headers travel
// with it, so if it dies again its count goes up. Unrouted messages go
// through the exchange again: the configuration may route them now.
func (t *Transport) ReplayDeadLetters(ctx context.Context, queue string, sel chronicle.Selection) (int, error) {
	replayed := 0
	err := t.withHeld(queue, holdLimit(sel), func(p *publisher, kind chronicle.QueueKind, h *holding) error {
		var err error
		replayed, err = t.replay(ctx, p, kind, queue, sel, h)
		return err
	})
	return replayed, err
}

func (t *Transport) replay(ctx context.Context, p *publisher, kind chronicle.QueueKind, queue string, sel chronicle.Selection, h *holding) (int, error) {
	ch := p.channel()
	replayed := 0
	for i, d := range h.msgs {
		if !selected(sel, d, i) {
			continue
		}
		exchange, key := "", str(d.Headers[chronicle.HeaderOriginQueue])
		if kind == chronicle.QueueUnrouted {
			exchange, key = t.exchange, d.RoutingKey
		} else if key == "" {
			key = xDeathQueue(d.Headers)
		}
		if kind != chronicle.QueueUnrouted && t.cfg.Routing.RouteByQueue(key) == nil {
			t.logger.Warn("rabbitmq: dead letter has no known origin queue; left in place", "queue", queue, "message_id", d.MessageId, "origin", key)
			continue
		}
		to := key
		if exchange != "" {
			to = "" // routed again: the consumed hops will say where
		}
		back := chronicle.Replayed(*message(&d), to, sel.By, t.cfg.Process, t.cfg.Now())
		msg := amqp.Publishing{
			Headers:      headersOf(d.Headers, back),
			ContentType:  d.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    deadLetterID(d),
			Type:         d.Type,
			Timestamp:    d.Timestamp,
			Body:         d.Body,
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, msg)
		if err != nil {
			return replayed, unavailable("replay", err)
		}
		wctx, cancel := context.WithTimeout(ctx, t.cfg.ConfirmTimeout)
		err = waitConfirms(wctx, []*amqp.DeferredConfirmation{dc})
		cancel()
		if err != nil {
			return replayed, err
		}
		if err := d.Ack(false); err != nil {
			return replayed, unavailable("ack replayed message", err)
		}
		replayed++
	}
	return replayed, nil
}

// PurgeDeadLetters implements chronicle.DeadLetterChannel.
func (t *Transport) PurgeDeadLetters(ctx context.Context, queue string, sel chronicle.Selection) (int, error) {
	purged := 0
	err := t.withHeld(queue, holdLimit(sel), func(_ *publisher, _ chronicle.QueueKind, h *holding) error {
		for i, d := range h.msgs {
			if !selected(sel, d, i) {
				continue
			}
			if err := d.Ack(false); err != nil {
				return unavailable("purge", err)
			}
			purged++
		}
		return nil
	})
	return purged, err
}

// DeadLetterOf reads a dead letter's story: Chronicle's death record when
// a consumer rejected it, RabbitMQ's x-death when the broker dead-lettered
// it (rejected, expired, delivery limit), and the unrouted queue's own
// facts (unrouted is true for its messages).
func DeadLetterOf(d amqp.Delivery, unrouted bool) chronicle.DeadLetter {
	out := chronicle.DeadLetterOf(*message(&d))
	out.ID = deadLetterID(d)
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		fromXDeath(&out, d.Headers, deaths)
	}
	if unrouted && out.Reason == "" {
		// Routed here by the alternate exchange: the delivery still names
		// the exchange and routing key it was published with.
		out.Reason = "unroutable: no route matches " + d.RoutingKey
		out.Exchange, out.RoutingKey, out.Count = d.Exchange, d.RoutingKey, 1
		out.FirstDeathAt = d.Timestamp.UTC()
	}
	return out
}

// fromXDeath completes a dead letter from the broker's record, the most
// recent death first.
func fromXDeath(out *chronicle.DeadLetter, h amqp.Table, deaths []any) {
	if last, ok := deaths[0].(amqp.Table); ok {
		if out.Reason == "" {
			out.Reason = brokerReason(str(last["reason"]))
		}
		if out.Queue == "" {
			out.Queue = str(last["queue"])
		}
		if out.Exchange == "" {
			out.Exchange = str(last["exchange"])
		}
		if out.RoutingKey == "" {
			if keys, ok := last["routing-keys"].([]any); ok && len(keys) > 0 {
				out.RoutingKey = str(keys[0])
			}
		}
	}
	total := 0
	for _, x := range deaths {
		if t, ok := x.(amqp.Table); ok {
			if n, ok := t["count"].(int64); ok {
				total += int(n)
			}
		}
	}
	out.Count = max(out.Count, total)
	if first, ok := h["x-first-death-time"].(time.Time); ok && out.FirstDeathAt.IsZero() {
		out.FirstDeathAt = first.UTC()
	}
}

// deadLetterID names a dead letter: its message_id, which Chronicle's
// consumers always set when they dead-letter a message. A message that the
// broker dead-lettered (or the alternate exchange routed) without one gets
// a name derived from its content, the same at every peek, so that it can
// still be replayed or purged by id.
func deadLetterID(d amqp.Delivery) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	h := sha256.New()
	h.Write([]byte(d.RoutingKey))
	h.Write([]byte{0})
	h.Write([]byte(str(d.Headers["x-first-death-time"]) + d.Timestamp.String()))
	h.Write([]byte{0})
	h.Write(d.Body)
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x80 // UUID version 8: made from the content
	sum[8] = sum[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

func brokerReason(r string) string {
	switch r {
	case "rejected":
		return "rejected: a consumer rejected the message"
	case "expired":
		return "expired: the message's TTL passed"
	case "maxlen":
		return "dropped: the queue reached its length limit"
	case "delivery_limit":
		return "delivery limit reached: redelivered too many times"
	default:
		return fmt.Sprintf("dead-lettered by the broker: %s", r)
	}
}

func xDeathQueue(h amqp.Table) string {
	if deaths, ok := h["x-death"].([]any); ok && len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok {
			return str(t["queue"])
		}
	}
	return ""
}
