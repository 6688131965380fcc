package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
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
	// ctx is the workers' context, cancelled when stop gives up waiting:
	// no store call or confirm wait outlives the shutdown deadline.
	ctx    context.Context
	abort  context.CancelFunc
	procs  map[string]*consumer.Processor // by queue
	active sync.WaitGroup
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
	if t.cfg.Store == nil || t.cfg.Check == nil {
		return errors.New("rabbitmq: a Store and a Check are required to consume")
	}
	c := &consumers{t: t, plan: plan, stopping: make(chan struct{}), procs: map[string]*consumer.Processor{}}
	c.ctx, c.abort = context.WithCancel(context.Background())
	for _, a := range plan {
		proc, err := consumer.New(consumer.Config{
			Queue:    a.Route.Queue,
			Check:    t.cfg.Check,
			RetryMin: t.cfg.RetryMin,
			RetryMax: t.cfg.RetryMax,
			Observer: t.cfg.Observer,
			Health:   t.cfg.Health,
			Process:  t.cfg.Process,
			Store:    t.cfg.StoreName,
			Logger:   t.logger,
			Now:      t.cfg.Now,
		})
		if err != nil {
			c.abort()
			return err
		}
		c.procs[a.Route.Queue] = proc
	}
	t.mu.Lock()
	if t.cons != nil {
		t.mu.Unlock()
		c.abort()
		return errors.New("rabbitmq: consumers already started")
	}
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
			w := &worker{c: c, t: c.t, route: a.Route, proc: c.procs[a.Route.Queue], number: strconv.Itoa(i),
				tag: fmt.Sprintf("%s-%s-%d", c.t.cfg.Name, a.Route.Name, i)}
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
	defer c.abort()
	done := make(chan struct{})
	go func() { c.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.abort()
		<-done
		return errors.New("consumers did not finish their batches before the shutdown timeout; the broker will redeliver them")
	}
}

// worker is one competing consumer of one route queue.
type worker struct {
	c     *consumers
	t     *Transport
	route *routing.Route
	proc  *consumer.Processor
	tag   string
	// number is the worker's among its queue's, for its hops.
	number string

	ch   *amqp.Channel
	dl   *amqp.Channel // confirm-mode channel for dead letters, opened on first use
	conn *amqp.Connection
	// ctx ends when the worker's channel closes or stop gives up: its
	// batch is then abandoned, and the broker redelivers it.
	ctx    context.Context
	cancel context.CancelFunc
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
	w.ctx, w.cancel = context.WithCancel(w.c.ctx)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		select {
		case <-closed:
		case <-w.ctx.Done():
		}
		w.cancel()
	}()
	return deliveries, nil
}

// run takes deliveries in batches (whatever is waiting, up to BatchSize)
// until the subscription ends: cancelled by stop, or its channel closed.
func (w *worker) run(deliveries <-chan amqp.Delivery) {
	defer func() {
		w.cancel()
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
		msgs := make([]*chronicle.Message, len(batch))
		for i := range batch {
			msgs[i] = message(&batch[i])
		}
		if w.proc.Process(w.ctx, w.number, msgs, settler{w: w, batch: batch}) != nil {
			return // the channel is gone or stop gave up: the broker redelivers
		}
	}
}

// message is a delivery as the domain sees it.
func message(d *amqp.Delivery) *chronicle.Message {
	m := &chronicle.Message{ID: d.MessageId, Type: d.RoutingKey, Body: d.Body, Headers: stringHeaders(d.Headers),
		Deliveries: deliveries(d)}
	if d.Exchange == "" {
		m.Type = publishedKey(d, m.Headers)
	}
	if d.Timestamp.Unix() != 0 {
		// Some clients send 0 for "no timestamp".
		m.Timestamp = d.Timestamp
	}
	switch h := d.Headers[chronicle.HeaderHistory].(type) {
	case []byte:
		m.History = chronicle.History(h)
	case string:
		m.History = chronicle.History(h)
	}
	return m
}

// publishedKey is the routing key a delivery that came through the
// default exchange (its routing key the queue's name) was first published
// with: a replayed dead letter's, from Chronicle's death record or the
// broker's; "" for a message published straight to the queue, which has
// none.
func publishedKey(d *amqp.Delivery, h map[string]string) string {
	if k := h[chronicle.HeaderOriginRoutingKey]; k != "" {
		return k
	}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if last, ok := deaths[0].(amqp.Table); ok {
			if keys, ok := last["routing-keys"].([]any); ok && len(keys) > 0 {
				return str(keys[0])
			}
		}
	}
	return ""
}

// deliveries is how many times d has been delivered, this time included:
// quorum queues count the earlier attempts in x-delivery-count; classic
// ones say only whether it was delivered before.
func deliveries(d *amqp.Delivery) int {
	switch n := d.Headers["x-delivery-count"].(type) {
	case int64:
		return int(n) + 1
	case int32:
		return int(n) + 1
	case int:
		return n + 1
	}
	if d.Redelivered {
		return 2
	}
	return 1
}

// settler settles items of a worker's batch: dead letters are published to
// the route's dead-letter exchange (confirmed), the events stored in one
// transaction, and only then is every item acked. Nothing is acked
// before it is safely somewhere else.
type settler struct {
	w     *worker
	batch []amqp.Delivery
}

func (s settler) Settle(ctx context.Context, items []*consumer.Item) error {
	w := s.w
	var events []*chronicle.Event
	var dead []*consumer.Item
	var drop []uint64
	for _, it := range items {
		switch {
		case it.Event != nil:
			events = append(events, it.Event)
		case w.route.DeadLetterQueue != "":
			dead = append(dead, it)
		default:
			d := s.batch[it.Index]
			w.t.logger.Error("rabbitmq: dropping a message its route cannot process: the route has no dead-letter queue",
				"queue", w.route.Queue, "message_id", d.MessageId, "reason", it.Reason)
			drop = append(drop, d.DeliveryTag)
		}
	}
	if err := w.deadLetter(ctx, s.batch, dead); err != nil {
		return err
	}
	if len(events) > 0 {
		if err := w.t.cfg.Store.StoreEvents(ctx, events); err != nil {
			return err
		}
	}
	w.t.stats.consumed.Add(int64(len(events)))
	w.t.stats.batches.Add(1)
	return s.ack(items, drop)
}

// ack acknowledges the settled items: the whole batch at once when it is
// all of it, else one by one.
func (s settler) ack(items []*consumer.Item, drop []uint64) error {
	ch := s.w.ch
	var err error
	if len(drop) == 0 && len(items) == len(s.batch) {
		err = ch.Ack(s.batch[len(s.batch)-1].DeliveryTag, true)
	} else {
		for _, it := range items {
			tag := s.batch[it.Index].DeliveryTag
			if slices.Contains(drop, tag) {
				err = errors.Join(err, ch.Nack(tag, false, false))
			} else {
				err = errors.Join(err, ch.Ack(tag, false))
			}
		}
	}
	if err != nil {
		// The channel is gone: the broker redelivers, the store ignores
		// the copies.
		s.w.cancel()
		return unavailable("ack", err)
	}
	return nil
}

// deadLetter publishes each item's message to the route's dead-letter
// exchange with the route's DLQ as routing key (so it reaches that DLQ
// only), with the story of its death in headers, and waits for the
// broker's confirms. A broker-side reject could not add the reason.
func (w *worker) deadLetter(ctx context.Context, batch []amqp.Delivery, dead []*consumer.Item) error {
	if len(dead) == 0 {
		return nil
	}
	if w.dl == nil {
		ch, err := w.conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err != nil {
			return unavailable("open dead-letter channel", err)
		}
		w.dl = ch
	}
	dcs := make([]*amqp.DeferredConfirmation, 0, len(dead))
	for _, it := range dead {
		d := &batch[it.Index]
		death := chronicle.Death{
			Reason:     it.Reason,
			Queue:      w.route.Queue,
			Exchange:   d.Exchange,
			RoutingKey: d.RoutingKey,
			At:         w.t.cfg.Now(),
			History:    it.History,
			Process:    w.t.cfg.Process,
		}
		if d.Exchange == "" {
			// Through the default exchange, its routing key is the
			// queue's name: keep where a replayed message was first
			// published, and record no key for one published straight
			// to the queue.
			death.RoutingKey = ""
		}
		m := chronicle.Kill(*it.Message, death)
		msg := amqp.Publishing{
			Headers:      headersOf(d.Headers, m),
			ContentType:  d.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    m.ID,
			Type:         d.Type,
			Timestamp:    d.Timestamp,
			Body:         d.Body,
		}
		dc, err := w.dl.PublishWithDeferredConfirmWithContext(ctx, w.route.DeadLetterExchange, w.route.DeadLetterQueue, false, false, msg)
		if err != nil {
			w.dl.Close()
			w.dl = nil
			return unavailable("dead-letter", err)
		}
		dcs = append(dcs, dc)
	}
	wctx, cancel := context.WithTimeout(ctx, w.t.cfg.ConfirmTimeout)
	defer cancel()
	return waitConfirms(wctx, dcs)
}

// stringHeaders returns the headers whose values are strings (Chronicle's
// own among them), for the domain's death-record codec.
func stringHeaders(t amqp.Table) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		if k == chronicle.HeaderHistory {
			continue // Message.History
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case []byte:
			out[k] = string(v)
		}
	}
	return out
}

// headersOf returns a copy of t (x-death and other typed headers kept)
// with m's headers and history set.
func headersOf(t amqp.Table, m chronicle.Message) amqp.Table {
	out := make(amqp.Table, len(t)+len(m.Headers)+1)
	for k, v := range t {
		out[k] = v
	}
	for k, v := range m.Headers {
		out[k] = v
	}
	if len(m.History) > 0 {
		out[chronicle.HeaderHistory] = []byte(m.History)
	}
	return out
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
