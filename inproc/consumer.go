package inproc

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// consumer is one competing consumer worker of a route queue.
type consumer struct {
	t  *Transport
	q  *queue
	id int
}

// run takes whatever is queued (up to a batch), settles it, and repeats
// until the queue is closed and empty, or Close gives up waiting.
func (c *consumer) run() {
	batch := make([]*chronicle.JournalEntry, 0, c.t.cfg.BatchSize)
	for {
		select {
		case <-c.t.abort:
			return
		default:
		}
		e, ok := <-c.q.ch
		if !ok {
			return
		}
		batch = append(batch[:0], e)
	fill:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-c.q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if !c.process(batch) {
			return
		}
	}
}

// process stores the batch's events and settles its entries in one step:
// valid messages are removed, invalid ones moved to the dead-letter queue
// with their reason. A store failure is retried with backoff, never
// dead-lettered. It returns false if Close gave up while retrying.
func (c *consumer) process(batch []*chronicle.JournalEntry) bool {
	s := &chronicle.Settlement{Events: make([]*chronicle.Event, 0, len(batch))}
	var dead []*chronicle.JournalEntry
	check, trusted := c.t.cfg.check()
	for _, e := range batch {
		ev, reason := e.Message.Event, ""
		if ev == nil || !trusted {
			ev, reason = check(e.Message.Body)
		}
		if reason == "" {
			s.Events = append(s.Events, ev)
			s.Remove = append(s.Remove, e.Seq)
			continue
		}
		if c.q.dlq == nil {
			c.t.cfg.Logger.Error("inproc: dropping a message its route cannot process: the route has no dead-letter queue",
				"queue", c.q.name, "message_id", e.Message.ID, "reason", reason)
			s.Remove = append(s.Remove, e.Seq)
			continue
		}
		d := c.t.deadLetter(e, c.q, reason)
		s.Move = append(s.Move, d)
		dead = append(dead, d)
	}
	if !c.settle(s) {
		return false
	}
	c.q.depth.Add(-int64(len(batch)))
	for _, d := range dead {
		c.q.dlq.depth.Add(1)
		c.q.dlq.put(d)
		c.t.cfg.Logger.Warn("inproc: message dead-lettered", "queue", c.q.name, "dlq", c.q.dlq.name,
			"message_id", d.Message.ID, "reason", d.Message.Headers[chronicle.HeaderReason])
	}
	return true
}

// settle retries until the journal takes s or Close gives up.
func (c *consumer) settle(s *chronicle.Settlement) bool {
	wait := c.t.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := c.t.journal.Settle(context.Background(), s)
		if err == nil {
			if attempt > 1 {
				c.t.cfg.Logger.Info("inproc: store is back; batch settled", "queue", c.q.name, "attempts", attempt)
			}
			return true
		}
		c.t.cfg.Logger.Warn("inproc: cannot settle batch, retrying", "queue", c.q.name,
			"worker", c.id, "events", len(s.Events), "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-c.t.abort:
			return false
		}
		wait = min(wait*2, c.t.cfg.RetryMax)
	}
}

// deadLetter returns the entry as it will sit on q's dead-letter queue,
// with the story of its death in its headers (the in-process x-death).
func (t *Transport) deadLetter(e *chronicle.JournalEntry, q *queue, reason string) *chronicle.JournalEntry {
	h := withHeader(e.Message.Headers, chronicle.HeaderReason, reason)
	h[chronicle.HeaderOriginQueue] = q.name
	h[chronicle.HeaderOriginExchange] = t.exchange
	h[chronicle.HeaderOriginRoutingKey] = e.Message.Type
	n, _ := strconv.Atoi(h[chronicle.HeaderDeathCount])
	h[chronicle.HeaderDeathCount] = strconv.Itoa(n + 1)
	if h[chronicle.HeaderFirstDeath] == "" {
		h[chronicle.HeaderFirstDeath] = t.cfg.Now().UTC().Format(time.RFC3339Nano)
	}
	d := &chronicle.JournalEntry{Seq: e.Seq, Queue: q.dlq.name, Message: e.Message}
	d.Message.Headers = h
	d.Message.Event = nil
	return d
}

// memoryJournal stands in for a journal when queues live in memory: it
// numbers entries and passes events straight to the store.
type memoryJournal struct {
	store chronicle.EventStore
	seq   atomic.Int64
}

func (j *memoryJournal) Append(_ context.Context, entries []*chronicle.JournalEntry) error {
	for _, e := range entries {
		e.Seq = j.seq.Add(1)
	}
	return nil
}

func (j *memoryJournal) Pending(context.Context) ([]*chronicle.JournalEntry, error) { return nil, nil }

func (j *memoryJournal) Settle(ctx context.Context, s *chronicle.Settlement) error {
	return j.store.StoreEvents(ctx, s.Events)
}
