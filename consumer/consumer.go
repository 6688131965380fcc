// Package consumer is the consuming end of a Messaging Endpoint, written
// once for every transport: it takes a batch of messages off a route
// queue, decides for each whether it is a storable event (chronicle.Check)
// or a dead letter, and has the transport settle the batch, retrying with
// backoff while the store or the broker is down. An event that the store
// refuses for good (data it cannot hold) is split out of its batch and
// dead-lettered with the store's reason, so that one poison event never
// stalls the events behind it.
//
// A transport supplies only its own mechanics, as a Settler: how events
// are stored and messages acknowledged or moved to a dead-letter queue.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Defaults of Config, and of the transports' consumers.
const (
	DefaultRetryMin = 50 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
	// DefaultBatchSize bounds the messages a consumer settles at once (one
	// store transaction, one ack).
	DefaultBatchSize = 256
)

// Item is one message of a batch with the consumer's verdict on it.
type Item struct {
	// Index is the message's position in the batch the transport took,
	// so the transport can find its own handle (a delivery tag, a journal
	// entry) for it.
	Index   int
	Message *chronicle.Message
	// Event is the event to store, or nil when the message is to be
	// dead-lettered for Reason. Its History is this route's path: the
	// message's history, this consumer's consumed hop and the stored hop
	// (after an accepted hop, for a foreign message).
	Event  *chronicle.Event
	Reason string
	// History is, for a message to dead-letter, its history with this
	// consumer's consumed hop: what it carries on (chronicle.Death.History).
	History chronicle.History
}

// Settler is a transport's part of consuming: settling items.
type Settler interface {
	// Settle stores the events of items (idempotently) and dead-letters the
	// other items with their reasons, then acknowledges them all. It
	// returns nil only when every item is settled. On error no item may be
	// acknowledged: they will be settled again, and storing an event twice
	// stores it once. An error wrapping chronicle.ErrInvalid means the
	// store refuses the data of some event for good: Process then narrows
	// it down and dead-letters that event.
	Settle(ctx context.Context, items []*Item) error
}

// Observer is told what consumers do, for metrics. Its methods must be
// cheap and safe for concurrent use.
type Observer interface {
	// Settled reports a settled batch: events stored and messages
	// dead-lettered, with the time the settling took.
	Settled(queue string, stored int, deadLettered []string, took time.Duration)
	// Failed reports a failed attempt to settle a batch (to be retried).
	Failed(queue string, err error)
}

// Config configures a Processor.
type Config struct {
	// Queue names the route queue, for logs, metrics and health. Required.
	Queue string
	// Check decides whether a message is a storable event. Required.
	Check chronicle.Check
	// RetryMin and RetryMax bound the backoff between attempts to settle
	// a batch while they fail. Default to DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Observer is told what happens. Optional.
	Observer Observer
	// Health records whether the queue's consumers keep failing. Optional.
	Health *Health
	// Process names this process in the hops consumers add (host:pid).
	// Optional.
	Process string
	// Store names the store in stored hops ("sqlite", …). Optional.
	Store string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the hops. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	switch {
	case c.Queue == "":
		return errors.New("consumer: Queue is required")
	case c.Check == nil:
		return errors.New("consumer: Check is required")
	}
	return nil
}

// Processor processes the batches of one route queue's consumers. It is
// safe for concurrent use by the queue's workers.
type Processor struct {
	cfg Config
}

// New returns a Processor for cfg.
func New(cfg Config) (*Processor, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Processor{cfg: cfg}, nil
}

// Process classifies msgs, taken by worker (named in their history), and
// has s settle them, retrying failures with capped exponential backoff
// until they succeed or ctx ends. It returns nil once every message is
// settled, or ctx's error: the transport then leaves the batch unsettled,
// to be delivered again.
func (p *Processor) Process(ctx context.Context, worker string, msgs []*chronicle.Message, s Settler) error {
	verdicts := chronicle.Classify(msgs, p.cfg.Check)
	events := 0
	for _, v := range verdicts {
		if v.Event != nil {
			events++
		}
	}
	now := p.cfg.Now()
	all := make([]Item, len(msgs))
	copies := make([]chronicle.Event, events)
	items := make([]*Item, len(msgs))
	for i, v := range verdicts {
		m := msgs[i]
		it := &all[i]
		*it = Item{Index: i, Message: m, Reason: v.Reason}
		consumed := chronicle.Hop{Hop: chronicle.HopConsumed, At: now,
			Process: p.cfg.Process, Queue: p.cfg.Queue, Worker: worker, Delivery: m.Deliveries}
		if v.Event == nil {
			it.History = m.History.Append(consumed)
		} else {
			// A copy: the event may be shared with other queues' messages.
			e := &copies[len(copies)-events]
			events--
			*e = *v.Event
			// The stored hop's process and queue are the consumed hop's:
			// History keeps them once.
			stored := chronicle.Hop{Hop: chronicle.HopStored, At: now, Store: p.cfg.Store, Batch: len(copies)}
			if m.Foreign() {
				e.History = m.History.AppendHops(accepted(e, m, p.cfg.Process), consumed, stored)
			} else {
				e.History = m.History.AppendHops(consumed, stored)
			}
			e.Queue = p.cfg.Queue
			it.Event = e
		}
		items[i] = it
	}
	return p.settle(ctx, s, items)
}

// accepted is the hop of a foreign message's event e, which no producer
// process accepted: this consumer did, straight from the broker, and the
// hop says whose clock set e's timestamp (a message without a timestamp
// of its own takes the consumer's; see chronicle.Message.Timestamp).
func accepted(e *chronicle.Event, m *chronicle.Message, process string) chronicle.Hop {
	clock := chronicle.ClockAMQP
	if m.Timestamp.IsZero() {
		clock = chronicle.ClockConsumer
	}
	return chronicle.Hop{Hop: chronicle.HopAccepted, At: e.Timestamp, Process: process, Clock: clock}
}

// settle settles items, retrying while it fails, and isolates an event
// the store refuses.
func (p *Processor) settle(ctx context.Context, s Settler, items []*Item) error {
	wait := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.Settle(ctx, items)
		if err == nil {
			p.settled(items, time.Since(start), attempt)
			return nil
		}
		if errors.Is(err, chronicle.ErrInvalid) && hasEvents(items) && ctx.Err() == nil {
			return p.isolate(ctx, s, items, err)
		}
		p.failed(err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.cfg.Logger.Warn("consumer: cannot settle batch; retrying", "queue", p.cfg.Queue,
			"messages", len(items), "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(wait*2, p.cfg.RetryMax)
	}
}

// isolate settles items that the store refused (err) in halves, until the
// event it refuses is alone; that one is dead-lettered with the store's
// reason, and the others are stored.
func (p *Processor) isolate(ctx context.Context, s Settler, items []*Item, err error) error {
	if len(items) > 1 {
		mid := len(items) / 2
		if err := p.settle(ctx, s, items[:mid]); err != nil {
			return err
		}
		return p.settle(ctx, s, items[mid:])
	}
	it := items[0]
	p.cfg.Logger.Warn("consumer: the store refuses an event for good; dead-lettering it",
		"queue", p.cfg.Queue, "message_id", it.Message.ID, "err", err)
	it.Event, it.Reason = nil, "store refused the event: "+err.Error()
	return p.settle(ctx, s, items)
}

func hasEvents(items []*Item) bool {
	for _, it := range items {
		if it.Event != nil {
			return true
		}
	}
	return false
}

func (p *Processor) settled(items []*Item, took time.Duration, attempts int) {
	stored := 0
	var dead []string
	for _, it := range items {
		if it.Event != nil {
			stored++
			continue
		}
		dead = append(dead, it.Reason)
		p.cfg.Logger.Warn("consumer: message dead-lettered", "queue", p.cfg.Queue,
			"message_id", it.Message.ID, "reason", it.Reason)
	}
	if attempts > 1 {
		p.cfg.Logger.Info("consumer: batch settled after retries", "queue", p.cfg.Queue, "attempts", attempts)
	}
	if p.cfg.Health != nil {
		p.cfg.Health.ok(p.cfg.Queue)
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.Settled(p.cfg.Queue, stored, dead, took)
	}
}

func (p *Processor) failed(err error) {
	if p.cfg.Health != nil {
		p.cfg.Health.fail(p.cfg.Queue, err)
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.Failed(p.cfg.Queue, err)
	}
}
