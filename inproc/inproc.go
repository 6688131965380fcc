// Package inproc is the in-process transport behind the Messaging Gateway:
// the exchange, its bindings, bounded route queues with competing consumer
// workers, dead-letter queues and the unrouted queue, all inside the
// process and built from the same routing configuration as RabbitMQ's.
//
// Every queue is journaled (chronicle.Journal): a message is appended
// before Publish returns, and a consumer removes it in the same step that
// stores its event. With the SQLite or PostgreSQL journal the queues are
// durable; with the memory store's, they live as long as the process.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
	"github.com/chronicle-audit/chronicle/routing"
)

// Defaults of Config.
const (
	DefaultCapacity  = 10000
	DefaultBatchSize = consumer.DefaultBatchSize
)

// Config configures a Transport.
type Config struct {
	// Routing is the topology. Required.
	Routing *routing.Config
	// Journal holds the queues' messages and settles consumer batches
	// (storing their events). Required.
	Journal chronicle.Journal
	// Check decides whether a message is a storable event (the consumers'
	// Message Translator). Required.
	Check chronicle.Check
	// Capacity bounds each queue; a publish that would overflow one is
	// refused with ErrUnavailable. Defaults to DefaultCapacity.
	Capacity int
	// BatchSize bounds how many messages a consumer settles in one store
	// transaction. Defaults to DefaultBatchSize.
	BatchSize int
	// ConsumerCount, when positive, is the number of workers on every
	// queue; otherwise each queue gets its role's instances.
	ConsumerCount int
	// RetryMin and RetryMax bound the backoff between attempts to settle
	// a batch while the store fails. Default to consumer.DefaultRetryMin
	// and consumer.DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Observer is told what consumers do. Optional.
	Observer consumer.Observer
	// Health records consumers that keep failing. Optional.
	Health *consumer.Health
	// Process names this process (host:pid) and StoreName the store in
	// the hops of each event's history. Optional.
	Process, StoreName string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock for dead-letter times. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.Routing == nil:
		return errors.New("inproc: Routing is required")
	case c.Journal == nil:
		return errors.New("inproc: Journal is required")
	case c.Check == nil:
		return errors.New("inproc: Check is required")
	}
	return nil
}

// RetryAfter is what a refused publisher is told to wait.
const RetryAfter = time.Second

// Transport is the in-process chronicle.Gateway.
type Transport struct {
	cfg      Config
	router   *routing.Router
	exchange string
	journal  chronicle.Journal

	queues   map[string]*queue
	routeQs  []*queue // in configuration order
	heldQs   []*queue // dead-letter queues, then the unrouted queue
	unrouted *queue

	// mu is held shared by every Publish and exclusively by Close, so
	// Close knows no publish is half done when it closes the queues.
	mu      sync.RWMutex
	closing bool
	// ready is set once the journal has been read and the queues refilled;
	// until then (the store cannot be reached at start-up) every publish
	// is refused and consumers wait. notReady says why.
	ready    atomic.Bool
	notReady atomic.Pointer[error]
	role     string // consumers asked for before ready; guarded by mu
	loading  sync.WaitGroup
	started  atomic.Bool
	workers  sync.WaitGroup
	// consuming is the consumers' context: cancelled when Close gives up
	// waiting, so that no store call outlives the shutdown deadline.
	consuming context.Context
	abort     context.CancelFunc
}

var _ chronicle.Gateway = (*Transport)(nil)

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

// New builds the topology and refills the queues with what the journal
// still holds: messages accepted before a crash or stop. When the journal
// cannot be read yet (its database is unreachable or locked), New does not
// fail: the transport refuses publishes with ErrUnavailable and keeps
// trying in the background, and consumers start once it succeeds.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		router:   routing.NewRouter(cfg.Routing),
		exchange: cfg.Routing.PublishExchange().Name,
		journal:  cfg.Journal,
		queues:   map[string]*queue{},
	}
	t.consuming, t.abort = context.WithCancel(context.Background())
	for _, r := range cfg.Routing.Routes {
		q := &queue{name: r.Queue, kind: chronicle.QueueRoute, route: r, capacity: cfg.Capacity}
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

	err := t.load(ctx)
	switch {
	case err == nil:
		return t, nil
	case !errors.Is(err, chronicle.ErrUnavailable) || ctx.Err() != nil:
		t.abort()
		return nil, err
	}
	t.cfg.Logger.Warn("inproc: cannot read the journal yet; refusing events and retrying in the background", "err", err)
	t.notReady.Store(&err)
	t.loading.Go(t.keepLoading)
	return t, nil
}

// load reads the journal, refills the queues and marks the transport
// ready, starting the consumers asked for meanwhile.
func (t *Transport) load(ctx context.Context) error {
	pending, err := t.journal.Pending(ctx)
	if err != nil {
		return fmt.Errorf("inproc: read journal: %w", err)
	}
	backlog := map[string]int{}
	for _, e := range pending {
		backlog[e.Queue]++
	}
	for _, q := range t.routeQs {
		q.ch = make(chan *chronicle.JournalEntry, t.cfg.Capacity+backlog[q.name])
	}
	if err := t.recover(ctx, pending); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready.Store(true)
	t.notReady.Store(nil)
	if t.role != "" && !t.closing {
		return t.startWorkers(t.role)
	}
	return nil
}

// recover puts journaled messages back on their queues, in order. A
// message whose queue is no longer configured is moved to the unrouted
// queue rather than lost.
func (t *Transport) recover(ctx context.Context, pending []*chronicle.JournalEntry) error {
	var orphans []*chronicle.JournalEntry
	for _, e := range pending {
		q := t.queues[e.Queue]
		if q == nil {
			e.Message = chronicle.Kill(e.Message, chronicle.Death{
				Reason: fmt.Sprintf("queue %s is no longer configured", e.Queue),
				Queue:  e.Queue,
				At:     t.cfg.Now(),
			})
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

// keepLoading retries load with capped exponential backoff until it
// succeeds or Close gives up on it.
func (t *Transport) keepLoading() {
	wait := max(t.cfg.RetryMin, consumer.DefaultRetryMin)
	maxWait := max(t.cfg.RetryMax, consumer.DefaultRetryMax)
	for {
		select {
		case <-time.After(wait):
		case <-t.consuming.Done():
			return
		}
		for _, q := range t.heldQs {
			q.mu.Lock()
			q.held = nil
			q.depth.Store(0)
			q.mu.Unlock()
		}
		for _, q := range t.routeQs {
			q.depth.Store(0)
		}
		err := t.load(t.consuming)
		if err == nil {
			t.cfg.Logger.Info("inproc: journal read; accepting events")
			return
		}
		if t.consuming.Err() != nil {
			return
		}
		t.cfg.Logger.Warn("inproc: still cannot read the journal; retrying", "retry_in", wait, "err", err)
		t.notReady.Store(&err)
		wait = min(wait*2, maxWait)
	}
}

// unready returns why the transport cannot take events yet, or nil.
func (t *Transport) unready() error {
	if t.ready.Load() {
		return nil
	}
	var cause error
	if p := t.notReady.Load(); p != nil {
		cause = *p
	}
	return chronicle.Unavailable(RetryAfter, "the in-process queues' journal cannot be read yet", cause)
}

// Name implements chronicle.Gateway.
func (t *Transport) Name() string { return "inproc" }

// Durable reports whether the queues survive the process.
func (t *Transport) Durable() bool { return t.journal.Durable() }

// Ping implements chronicle.Pinger.
func (t *Transport) Ping(context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	return t.unready()
}

// Publish implements chronicle.Publisher. Each event goes to every route
// whose binding matches its event_type (Publish-Subscribe), or to the
// unrouted queue. Space is reserved on every target queue first, so a full
// queue refuses the whole call before anything is journaled.
func (t *Transport) Publish(ctx context.Context, events []*chronicle.Event) error {
	msgs := make([]chronicle.Message, len(events))
	now := t.cfg.Now()
	for i, e := range events {
		body, err := e.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		h := e.History.Append(chronicle.Hop{Hop: chronicle.HopPublished, At: now, Transport: "inproc",
			Exchange: t.exchange, RoutingKey: e.EventType, Queues: t.router.Queues(e.EventType)})
		msgs[i] = chronicle.Message{ID: e.ID, Type: e.EventType, Body: body, Event: e, Deliveries: 1, History: h}
	}
	return t.publish(ctx, msgs)
}

// PublishMessage routes a message as it is, the way a foreign producer
// publishing straight to the exchange would: consumers decode and check
// its body, and dead-letter it if it is not a storable event.
func (t *Transport) PublishMessage(ctx context.Context, m chronicle.Message) error {
	m.Event, m.Deliveries = nil, 1
	return t.publish(ctx, []chronicle.Message{m})
}

func (t *Transport) publish(ctx context.Context, msgs []chronicle.Message) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	if err := t.unready(); err != nil {
		return err
	}
	entries := make([]*chronicle.JournalEntry, 0, len(msgs)*2)
	targets := make([]*queue, 0, len(msgs)*2)
	for _, msg := range msgs {
		routes := t.router.Routes(msg.Type)
		if len(routes) == 0 {
			msg = chronicle.Kill(msg, chronicle.Death{
				Reason:     "unroutable: no route matches " + msg.Type,
				Exchange:   t.exchange,
				RoutingKey: msg.Type,
				At:         t.cfg.Now(),
				Process:    t.cfg.Process,
			})
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
		return chronicle.Unavailable(RetryAfter, "the journal cannot take the events now", err)
	}
	for i, e := range entries {
		targets[i].put(e)
	}
	return nil
}

// Congested implements chronicle.Publisher: a queue that receives every
// event (bound with "#") is full, so every publish would be refused. The
// API says so before reading a request, so that under overload the CPU
// goes to draining the queues, not to parsing requests that cannot be
// taken.
func (t *Transport) Congested() error {
	if err := t.unready(); err != nil {
		return err
	}
	for _, q := range t.routeQs {
		if q.route.RoutingKey == "#" && q.depth.Load() >= int64(q.capacity) {
			return full(q)
		}
	}
	return nil
}

func full(q *queue) error {
	return chronicle.Unavailable(RetryAfter, fmt.Sprintf("queue %s is full (%d messages)", q.name, q.capacity), nil)
}

// reserve takes one slot per target, or none.
func reserve(targets []*queue) error {
	for i, q := range targets {
		if q.depth.Add(1) > int64(q.capacity) {
			release(targets[:i+1])
			return full(q)
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

// Plan returns what StartConsumers runs for role: in process every route
// is consumed, whatever the role, since nothing else could consume it; the
// role decides the worker counts.
func (t *Transport) Plan(role string) ([]routing.Assignment, error) {
	return t.cfg.Routing.PlanAll(role, t.cfg.ConsumerCount)
}

// StartConsumers implements chronicle.ConsumerGroup, running Plan(role).
// Before the journal could be read, the consumers start once it is.
func (t *Transport) StartConsumers(_ context.Context, role string) error {
	if _, err := t.Plan(role); err != nil {
		return err
	}
	if !t.started.CompareAndSwap(false, true) {
		return errors.New("inproc: consumers already started")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ready.Load() {
		t.role = role
		return nil
	}
	return t.startWorkers(role)
}

// startWorkers starts the workers of role's plan; t.mu is held.
func (t *Transport) startWorkers(role string) error {
	plan, err := t.Plan(role)
	if err != nil {
		return err
	}
	for _, a := range plan {
		q := t.queues[a.Route.Queue]
		proc, err := consumer.New(consumer.Config{
			Queue:    q.name,
			Check:    t.cfg.Check,
			RetryMin: t.cfg.RetryMin,
			RetryMax: t.cfg.RetryMax,
			Observer: t.cfg.Observer,
			Health:   t.cfg.Health,
			Process:  t.cfg.Process,
			Store:    t.cfg.StoreName,
			Logger:   t.cfg.Logger,
			Now:      t.cfg.Now,
		})
		if err != nil {
			return err
		}
		for w := range a.Workers {
			q.consumers.Add(1)
			t.workers.Go(func() {
				defer q.consumers.Add(-1)
				(&worker{t: t, q: q, name: strconv.Itoa(w), proc: proc}).run()
			})
		}
	}
	return nil
}

// Queues implements chronicle.QueueInspector.
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
// every route queue into the store. If ctx ends first, the workers stop
// and what is still queued stays in the journal for the next start.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	ready := t.ready.Load()
	t.mu.Unlock()
	defer t.abort()
	if !ready {
		t.abort() // stop trying to read the journal
		t.loading.Wait()
		if !t.ready.Load() {
			return nil // nothing was taken, nothing to drain
		}
	}
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
		t.abort()
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
	if t.journal.Durable() {
		t.cfg.Logger.Warn("inproc: messages left in the journal for the next start", "count", n, "why", why)
		return nil
	}
	return fmt.Errorf("inproc: %s: %d queued messages were not stored (memory queues)", why, n)
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(h)+1)
	maps.Copy(out, h)
	out[k] = v
	return out
}
