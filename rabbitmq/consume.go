package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/routing"
)

// consumers are the competing consumer workers of one role, on their own
// connection.
type consumers struct {
	t    *Transport
	plan []routing.Assignment

	mu      sync.Mutex
	lastErr error // why the consumer connection is down; nil when up

	stopping chan struct{} // closed by stop: workers cancel and drain
	abort    chan struct{} // closed when stop gives up waiting
	active   sync.WaitGroup
}

func (c *consumers) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func (c *consumers) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// StartConsumers implements chronicle.Gateway: every route of the role is
// consumed by its workers (CHRONICLE_CONSUMER_COUNT, else the role's
// instances), each on its own channel with a prefetch.
func (t *Transport) StartConsumers(ctx context.Context, role string) error {
	plan, err := t.cfg.Routing.Plan(role, t.cfg.ConsumerCount)
	if err != nil {
		return err
	}
	if t.cfg.Store == nil {
		return errors.New("rabbitmq: a Store is required to consume")
	}
	t.mu.Lock()
	if t.cons != nil {
		t.mu.Unlock()
		return errors.New("rabbitmq: consumers already started")
	}
	c := &consumers{t: t, plan: plan, stopping: make(chan struct{}), abort: make(chan struct{})}
	t.cons = c
	t.mu.Unlock()

	conn, err := t.dial("consumer")
	switch {
	case err == nil:
		if err := c.start(conn); err != nil {
			conn.Close()
			if isFatal(err) {
				return err
			}
			c.setErr(err)
			conn = nil
		}
	case isFatal(err):
		return err
	default:
		t.logger.Warn("rabbitmq: broker unreachable; consumers will start when it is back", "err", err)
		c.setErr(err)
	}
	t.sups.Go(func() {
		t.supervise("consumer", conn, func(conn *amqp.Connection) error {
			c.active.Wait() // the previous connection's workers are gone
			return c.start(conn)
		})
	})
	return nil
}

// start declares the topology on a new consumer connection and starts
// every worker on it.
func (c *consumers) start(conn *amqp.Connection) error {
	select {
	case <-c.stopping:
		return errors.New("stopping")
	default:
	}
	if err := Declare(conn, c.t.cfg.Routing); err != nil {
		return err
	}
	for _, a := range c.plan {
		for i := range a.Workers {
			w := &worker{c: c, t: c.t, route: a.Route, tag: fmt.Sprintf("%s-%s-%d", c.t.cfg.Name, a.Route.Name, i)}
			deliveries, err := w.open(conn)
			if err != nil {
				return fmt.Errorf("start consumer on %s: %w", a.Route.Queue, err)
			}
			c.active.Go(func() { w.run(deliveries) })
		}
	}
	c.setErr(nil)
	return nil
}

// stop makes every worker cancel its subscription, settle and ack what it
// holds, and return. If ctx ends first, workers abandon their batch; the
// broker requeues it.
func (c *consumers) stop(ctx context.Context) error {
	close(c.stopping)
	done := make(chan struct{})
	go func() { c.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		close(c.abort)
		<-done
		return errors.New("consumers did not finish their batches before the shutdown timeout; the broker will redeliver them")
	}
}

// worker is one competing consumer of one route queue.
type worker struct {
	c     *consumers
	t     *Transport
	route *routing.Route
	tag   string

	ch     *amqp.Channel
	dl     *amqp.Channel // confirm-mode channel for dead letters, opened on first use
	conn   *amqp.Connection
	closed chan *amqp.Error
}

func (w *worker) open(conn *amqp.Connection) (<-chan amqp.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Qos(w.t.cfg.Prefetch, 0, false); err != nil {
		ch.Close()
		return nil, err
	}
	deliveries, err := ch.Consume(w.route.Queue, w.tag, false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, err
	}
	w.ch, w.conn = ch, conn
	w.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	return deliveries, nil
}

// run takes deliveries in batches (whatever is waiting, up to BatchSize)
// until the subscription ends: cancelled by stop, or its channel closed.
func (w *worker) run(deliveries <-chan amqp.Delivery) {
	defer func() {
		w.ch.Close()
		if w.dl != nil {
			w.dl.Close()
		}
	}()
	stopping := w.c.stopping
	batch := make([]amqp.Delivery, 0, w.t.cfg.BatchSize)
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-deliveries:
		case <-stopping:
			// No new deliveries; those already sent still arrive and are
			// settled before deliveries closes.
			w.ch.Cancel(w.tag, false)
			stopping = nil
			continue
		}
		if !ok {
			return
		}
		batch = append(batch[:0], d)
		// Deliveries trickle in one by one: linger a moment for the batch
		// to fill, so one store transaction and one ack cover many.
		linger := time.NewTimer(w.t.cfg.BatchWait)
	fill:
		for len(batch) < cap(batch) {
			select {
			case d, ok := <-deliveries:
				if !ok {
					break fill
				}
				batch = append(batch, d)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		if !w.handle(batch) {
			return
		}
	}
}

// handle settles a batch: invalid messages go to the route's DLQ with
// their reason (published with a confirm before they are acked), valid
// events are stored in one transaction (retried with backoff while the
// store fails: never dead-lettered for that), then the batch is acked.
// It returns false when the channel is gone or stop gave up.
func (w *worker) handle(batch []amqp.Delivery) bool {
	events := make([]*chronicle.Event, 0, len(batch))
	var dead []deadLetter
	var drop []uint64
	for _, d := range batch {
		e, reason := w.t.cfg.Check(d.Body)
		switch {
		case reason == "":
			events = append(events, e)
		case w.route.DeadLetterQueue != "":
			dead = append(dead, deadLetter{d: d, reason: reason})
		default:
			w.t.logger.Error("rabbitmq: dropping a message its route cannot process: the route has no dead-letter queue",
				"queue", w.route.Queue, "message_id", d.MessageId, "reason", reason)
			drop = append(drop, d.DeliveryTag)
		}
	}
	if !w.retry("dead-letter", func() error { return w.deadLetter(dead) }) {
		return false
	}
	if !w.retry("store", func() error { return w.t.cfg.Store.StoreEvents(context.Background(), events) }) {
		return false
	}
	w.t.stats.consumed.Add(int64(len(events)))
	w.t.stats.batches.Add(1)
	var err error
	if len(drop) == 0 {
		err = w.ch.Ack(batch[len(batch)-1].DeliveryTag, true)
	} else {
		for _, d := range batch {
			if contains(drop, d.DeliveryTag) {
				err = errors.Join(err, w.ch.Nack(d.DeliveryTag, false, false))
			} else {
				err = errors.Join(err, w.ch.Ack(d.DeliveryTag, false))
			}
		}
	}
	if err != nil {
		// The channel is gone: the broker redelivers, the store ignores
		// the copies.
		w.t.logger.Warn("rabbitmq: ack failed; the batch will be redelivered", "queue", w.route.Queue, "err", err)
		return false
	}
	return true
}

func contains(tags []uint64, tag uint64) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

// retry runs fn until it succeeds, backing off between attempts. It gives
// up (false) when the worker's channel closes or stop gives up: the
// deliveries are then redelivered to whoever consumes next.
func (w *worker) retry(what string, fn func() error) bool {
	wait := w.t.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				w.t.logger.Info("rabbitmq: "+what+" succeeded after retries", "queue", w.route.Queue, "attempts", attempt)
			}
			return true
		}
		if what == "store" {
			w.t.stats.storeFailures.Add(1)
		}
		w.t.logger.Warn("rabbitmq: "+what+" failed; retrying without acking", "queue", w.route.Queue,
			"attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-w.closed:
			return false
		case <-w.c.abort:
			return false
		}
		wait = min(wait*2, w.t.cfg.RetryMax)
	}
}

type deadLetter struct {
	d      amqp.Delivery
	reason string
}

// deadLetter publishes each message to its route's dead-letter exchange
// with the route's DLQ as routing key (so it reaches that DLQ only), with
// the reason and the story of its death in headers, and waits for the
// broker's confirms. A broker-side reject could not add the reason.
func (w *worker) deadLetter(dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	if w.dl == nil {
		ch, err := w.conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err != nil {
			return fmt.Errorf("open dead-letter channel: %w", err)
		}
		w.dl = ch
	}
	dcs := make([]*amqp.DeferredConfirmation, 0, len(dead))
	for _, x := range dead {
		msg := amqp.Publishing{
			Headers:      w.deathHeaders(x.d, x.reason),
			ContentType:  x.d.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    x.d.MessageId,
			Type:         x.d.Type,
			Timestamp:    x.d.Timestamp,
			Body:         x.d.Body,
		}
		dc, err := w.dl.PublishWithDeferredConfirmWithContext(context.Background(), w.route.DeadLetterExchange, w.route.DeadLetterQueue, false, false, msg)
		if err != nil {
			w.dl.Close()
			w.dl = nil
			return err
		}
		dcs = append(dcs, dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.t.cfg.ConfirmTimeout)
	defer cancel()
	if err := waitConfirms(ctx, dcs); err != nil {
		return err
	}
	w.t.stats.deadLettered.Add(int64(len(dead)))
	for _, x := range dead {
		w.t.logger.Warn("rabbitmq: message dead-lettered", "queue", w.route.Queue, "dlq", w.route.DeadLetterQueue,
			"message_id", x.d.MessageId, "reason", x.reason)
	}
	return nil
}

// deathHeaders keeps the message's headers (x-death included) and records
// this death: reason, where it died, how many times, since when.
func (w *worker) deathHeaders(d amqp.Delivery, reason string) amqp.Table {
	h := amqp.Table{}
	for k, v := range d.Headers {
		h[k] = v
	}
	h[chronicle.HeaderReason] = reason
	h[chronicle.HeaderOriginQueue] = w.route.Queue
	if _, ok := h[chronicle.HeaderOriginExchange]; !ok || d.Exchange != "" {
		h[chronicle.HeaderOriginExchange] = d.Exchange
		h[chronicle.HeaderOriginRoutingKey] = d.RoutingKey
	}
	n, _ := strconv.Atoi(str(h[chronicle.HeaderDeathCount]))
	h[chronicle.HeaderDeathCount] = strconv.Itoa(n + 1)
	if str(h[chronicle.HeaderFirstDeath]) == "" {
		h[chronicle.HeaderFirstDeath] = w.t.cfg.Now().UTC().Format(time.RFC3339Nano)
	}
	return h
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
