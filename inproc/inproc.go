// Package inproc is the in-process transport behind the Messaging Gateway:
// the exchange, its bindings, bounded route queues with competing consumer
// workers, dead-letter queues and the unrouted queue, all inside the
// process and built from the same routing configuration as RabbitMQ's.
//
// With a chronicle.Journal (the SQLite store) the queues are durable: a
// message is journaled before Publish returns, and a consumer removes it in
// the transaction that stores its event. Without one they live in memory.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/routing"
)

// Config configures a Transport.
type Config struct {
	// Routing is the topology. Required.
	Routing *routing.Config
	// Store receives the events consumers take. Required.
	Store chronicle.EventStore
	// Journal makes the queues durable. Defaults to nil: memory only.
	Journal chronicle.Journal
	// Capacity bounds each queue; a publish that would overflow one is
	// refused with ErrUnavailable. Defaults to 10000.
	Capacity int
	// BatchSize bounds how many messages a consumer settles in one store
	// transaction. Defaults to 256.
	BatchSize int
	// ConsumerCount, when positive, is the number of workers on every
	// queue; otherwise each queue gets its role's instances.
	ConsumerCount int
	// RetryMin and RetryMax bound the backoff between attempts to settle
	// a batch while the store fails. Default to 50ms and 5s.
	RetryMin, RetryMax time.Duration
	// Check decides whether a message is a storable event (the consumer's
	// Message Translator). Defaults to ingest.Check; messages published
	// by this process then skip decoding, as they were checked on the way
	// in.
	Check func(body []byte) (*chronicle.Event, string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock for dead-letter times. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() error {
	if c.Routing == nil {
		return errors.New("inproc: Routing is required")
	}
	if c.Store == nil {
		return errors.New("inproc: Store is required")
	}
	if c.Capacity <= 0 {
		c.Capacity = 10000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 50 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// check is the consumers' check, and whether they may trust a message's
// decoded Event instead of running it.
func (c *Config) check() (func([]byte) (*chronicle.Event, string), bool) {
	if c.Check != nil {
		return c.Check, false
	}
	return ingest.Check, true
}

// RetryAfter is what a refused publisher is told to wait.
const RetryAfter = time.Second

// Transport is the in-process chronicle.Gateway.
type Transport struct {
	cfg      Config
	router   *routing.Router
	exchange string
	journal  chronicle.Journal
	durable  bool

	queues   map[string]*queue
	routeQs  []*queue // in configuration order
	heldQs   []*queue // dead-letter queues, then the unrouted queue
	unrouted *queue

	// mu is held shared by every Publish and exclusively by Close, so
	// Close knows no publish is half done when it closes the queues.
	mu      sync.RWMutex
	closing bool
	started atomic.Bool
	workers sync.WaitGroup
	abort   chan struct{} // closed when Close gives up waiting
}

var (
	_ chronicle.Gateway           = (*Transport)(nil)
	_ chronicle.DeadLetterChannel = (*Transport)(nil)
)

// queue is one channel. Route queues hand messages to consumer workers
// through ch; dead-letter and unrouted queues hold them for inspection.
type queue struct {
	name  string
	kind  chronicle.QueueKind
	route *routing.Route
	dlq   *queue // a route queue's dead-letter queue, or nil

	capacity int
	// depth counts the messages reserved, queued or being settled. A
	// publish reserves before journaling, so ch never blocks a sender.
	depth     atomic.Int64
	ch        chan *chronicle.JournalEntry
	consumers atomic.Int32

	mu   sync.Mutex // guards held
	held []*chronicle.JournalEntry
}

// New builds the topology and, with a journal, refills the queues with
// what it still holds: messages accepted before a crash or stop.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		router:   routing.NewRouter(cfg.Routing),
		exchange: cfg.Routing.PublishExchange().Name,
		journal:  cfg.Journal,
		durable:  cfg.Journal != nil,
		queues:   map[string]*queue{},
		abort:    make(chan struct{}),
	}
	if t.journal == nil {
		t.journal = &memoryJournal{store: cfg.Store}
	}
	var pending []*chronicle.JournalEntry
	if t.durable {
		var err error
		if pending, err = t.journal.Pending(ctx); err != nil {
			return nil, fmt.Errorf("inproc: read journal: %w", err)
		}
	}
	backlog := map[string]int{}
	for _, e := range pending {
		backlog[e.Queue]++
	}
	for _, r := range cfg.Routing.Routes {
		q := &queue{name: r.Queue, kind: chronicle.QueueRoute, route: r, capacity: cfg.Capacity}
		q.ch = make(chan *chronicle.JournalEntry, cfg.Capacity+backlog[r.Queue])
		if r.DeadLetterQueue != "" {
			q.dlq = &queue{name: r.DeadLetterQueue, kind: chronicle.QueueDeadLetter, route: r, capacity: cfg.Capacity}
			t.queues[q.dlq.name] = q.dlq
			t.heldQs = append(t.heldQs, q.dlq)
		}
		t.queues[q.name] = q
		t.routeQs = append(t.routeQs, q)
	}
	t.unrouted = &queue{name: routing.UnroutedQueue, kind: chronicle.QueueUnrouted, capacity: cfg.Capacity}
	t.queues[t.unrouted.name] = t.unrouted
	t.heldQs = append(t.heldQs, t.unrouted)
	return t, t.recover(ctx, pending)
}

// recover puts journaled messages back on their queues, in order. A
// message whose queue is no longer configured is moved to the unrouted
// queue rather than lost.
func (t *Transport) recover(ctx context.Context, pending []*chronicle.JournalEntry) error {
	var orphans []*chronicle.JournalEntry
	for _, e := range pending {
		q := t.queues[e.Queue]
		if q == nil {
			e.Message.Headers = withHeader(e.Message.Headers, chronicle.HeaderReason,
				fmt.Sprintf("queue %s is no longer configured", e.Queue))
			e.Message.Headers[chronicle.HeaderOriginQueue] = e.Queue
			e.Queue = t.unrouted.name
			orphans = append(orphans, e)
			q = t.unrouted
		}
		q.depth.Add(1)
		if q.kind == chronicle.QueueRoute {
			q.ch <- e
		} else {
			q.held = append(q.held, e)
		}
	}
	if len(orphans) > 0 {
		t.cfg.Logger.Warn("inproc: journaled messages of queues no longer configured moved to the unrouted queue", "count", len(orphans))
		if err := t.journal.Settle(ctx, &chronicle.Settlement{Move: orphans}); err != nil {
			return fmt.Errorf("inproc: move orphaned messages: %w", err)
		}
	}
	if len(pending) > 0 {
		t.cfg.Logger.Info("inproc: recovered journaled messages", "count", len(pending))
	}
	return nil
}

// Name implements chronicle.Gateway.
func (t *Transport) Name() string { return "inproc" }

// Durable reports whether the queues are journaled.
func (t *Transport) Durable() bool { return t.durable }

// Ping implements chronicle.Gateway.
func (t *Transport) Ping(context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	return nil
}

// Publish implements chronicle.Gateway. Each event goes to every route
// whose binding matches its event_type (Publish-Subscribe), or to the
// unrouted queue. Space is reserved on every target queue first, so a full
// queue refuses the whole call before anything is journaled.
func (t *Transport) Publish(ctx context.Context, events []*chronicle.Event) error {
	msgs := make([]chronicle.Message, len(events))
	for i, e := range events {
		body, err := e.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		msgs[i] = chronicle.Message{ID: e.ID, Type: e.EventType, Body: body, Event: e}
	}
	return t.publish(ctx, msgs)
}

// PublishMessage routes a message as it is, the way a foreign producer
// publishing straight to the exchange would: consumers decode and check
// its body, and dead-letter it if it is not a storable event.
func (t *Transport) PublishMessage(ctx context.Context, m chronicle.Message) error {
	m.Event = nil
	return t.publish(ctx, []chronicle.Message{m})
}

func (t *Transport) publish(ctx context.Context, msgs []chronicle.Message) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	entries := make([]*chronicle.JournalEntry, 0, len(msgs)*2)
	targets := make([]*queue, 0, len(msgs)*2)
	for _, msg := range msgs {
		routes := t.router.Routes(msg.Type)
		if len(routes) == 0 {
			msg.Headers = withHeader(msg.Headers, chronicle.HeaderReason, "unroutable: no route matches "+msg.Type)
			msg.Headers[chronicle.HeaderOriginExchange] = t.exchange
			msg.Headers[chronicle.HeaderOriginRoutingKey] = msg.Type
			msg.Headers[chronicle.HeaderDeathCount] = "1"
			msg.Headers[chronicle.HeaderFirstDeath] = t.cfg.Now().UTC().Format(time.RFC3339Nano)
			msg.Event = nil
			entries = append(entries, &chronicle.JournalEntry{Queue: t.unrouted.name, Message: msg})
			targets = append(targets, t.unrouted)
			continue
		}
		for _, r := range routes {
			entries = append(entries, &chronicle.JournalEntry{Queue: r.Queue, Message: msg})
			targets = append(targets, t.queues[r.Queue])
		}
	}
	if err := reserve(targets); err != nil {
		return err
	}
	if err := t.journal.Append(ctx, entries); err != nil {
		release(targets)
		if errors.Is(err, chronicle.ErrUnavailable) {
			return err
		}
		return chronicle.Unavailable(RetryAfter, "journal: %v", err)
	}
	for i, e := range entries {
		targets[i].put(e)
	}
	return nil
}

// Congested returns ErrUnavailable when a queue that receives every event
// (bound with "#") is full: then every publish would be refused, and the
// API can say so before reading and decoding a request, so that under
// overload the CPU goes to draining the queues, not to parsing requests
// that cannot be taken.
func (t *Transport) Congested() error {
	for _, q := range t.routeQs {
		if q.route.RoutingKey == "#" && q.depth.Load() >= int64(q.capacity) {
			return chronicle.Unavailable(RetryAfter, "queue %s is full (%d messages)", q.name, q.capacity)
		}
	}
	return nil
}

// reserve takes one slot per target, or none.
func reserve(targets []*queue) error {
	for i, q := range targets {
		if q.depth.Add(1) > int64(q.capacity) {
			release(targets[:i+1])
			return chronicle.Unavailable(RetryAfter, "queue %s is full (%d messages)", q.name, q.capacity)
		}
	}
	return nil
}

func release(targets []*queue) {
	for _, q := range targets {
		q.depth.Add(-1)
	}
}

// put hands an entry whose slot is reserved to the queue.
func (q *queue) put(e *chronicle.JournalEntry) {
	if q.kind == chronicle.QueueRoute {
		q.ch <- e // never blocks: depth ≤ cap(ch)
		return
	}
	q.mu.Lock()
	q.held = append(q.held, e)
	q.mu.Unlock()
}

// StartConsumers implements chronicle.Gateway. In process every route is
// consumed, whatever the role, since nothing else could consume it; the
// role decides the worker counts (SPEC §10).
func (t *Transport) StartConsumers(_ context.Context, role string) error {
	plan, err := t.cfg.Routing.PlanAll(role, t.cfg.ConsumerCount)
	if err != nil {
		return err
	}
	if !t.started.CompareAndSwap(false, true) {
		return errors.New("inproc: consumers already started")
	}
	for _, a := range plan {
		q := t.queues[a.Route.Queue]
		for w := range a.Workers {
			q.consumers.Add(1)
			t.workers.Go(func() {
				defer q.consumers.Add(-1)
				(&consumer{t: t, q: q, id: w}).run()
			})
		}
	}
	return nil
}

// Plan returns what StartConsumers runs for role, for start-up logs.
func (t *Transport) Plan(role string) ([]routing.Assignment, error) {
	return t.cfg.Routing.PlanAll(role, t.cfg.ConsumerCount)
}

// Queues implements chronicle.Gateway.
func (t *Transport) Queues(context.Context) ([]chronicle.QueueStatus, error) {
	out := make([]chronicle.QueueStatus, 0, len(t.queues))
	for _, q := range t.routeQs {
		out = append(out, q.status())
		if q.dlq != nil {
			out = append(out, q.dlq.status())
		}
	}
	return append(out, t.unrouted.status()), nil
}

func (q *queue) status() chronicle.QueueStatus {
	s := chronicle.QueueStatus{Name: q.name, Kind: q.kind, Depth: int(q.depth.Load()), Consumers: int(q.consumers.Load())}
	if q.route != nil {
		s.Route = q.route.Name
	}
	return s
}

// Close implements chronicle.Gateway: intake stops, then the workers drain
// every route queue into the store. If ctx ends first, what is still
// queued stays in the journal (when there is one) for the next start.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	t.mu.Unlock()
	for _, q := range t.routeQs {
		close(q.ch)
	}
	if !t.started.Load() {
		return t.leftover("no consumers were running")
	}
	done := make(chan struct{})
	go func() { t.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		close(t.abort)
		<-done
		return t.leftover("shutdown timed out")
	}
}

// leftover reports messages that Close could not drain.
func (t *Transport) leftover(why string) error {
	n := int64(0)
	for _, q := range t.routeQs {
		n += q.depth.Load()
	}
	if n == 0 {
		return nil
	}
	if t.durable {
		t.cfg.Logger.Warn("inproc: messages left in the journal for the next start", "count", n, "why", why)
		return nil
	}
	return fmt.Errorf("inproc: %s: %d queued messages were not stored (memory queues)", why, n)
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(h)+1)
	for hk, hv := range h {
		out[hk] = hv
	}
	out[k] = v
	return out
}
