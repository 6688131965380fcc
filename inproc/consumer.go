package inproc

import (
	"context"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
)

// worker is one competing consumer of a route queue.
type worker struct {
	t    *Transport
	q    *queue
	name string // for its hops: its number among the queue's workers
	proc *consumer.Processor
}

// run takes whatever is queued (up to a batch), has it processed, and
// repeats until the queue is closed and empty, or Close gives up waiting.
func (w *worker) run() {
	ctx := w.t.consuming
	batch := make([]*chronicle.JournalEntry, 0, w.t.cfg.BatchSize)
	msgs := make([]*chronicle.Message, 0, w.t.cfg.BatchSize)
	for {
		if ctx.Err() != nil {
			return
		}
		e, ok := <-w.q.ch
		if !ok {
			return
		}
		batch = append(batch[:0], e)
	fill:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-w.q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		msgs = msgs[:0]
		for _, e := range batch {
			msgs = append(msgs, &e.Message)
		}
		if w.proc.Process(ctx, w.name, msgs, settler{w: w, batch: batch}) != nil {
			return // Close gave up: the batch stays in the journal
		}
	}
}

// settler settles items of a worker's batch in one journal step: events
// stored and their entries removed, dead letters moved to the route's
// dead-letter queue with the story of their death.
type settler struct {
	w     *worker
	batch []*chronicle.JournalEntry
}

func (s settler) Settle(ctx context.Context, items []*consumer.Item) error {
	t, q := s.w.t, s.w.q
	st := &chronicle.Settlement{}
	var dead []*chronicle.JournalEntry
	for _, it := range items {
		e := s.batch[it.Index]
		switch {
		case it.Event != nil:
			st.Events = append(st.Events, it.Event)
			st.Remove = append(st.Remove, e.Seq)
		case q.dlq == nil:
			t.cfg.Logger.Error("inproc: dropping a message its route cannot process: the route has no dead-letter queue",
				"queue", q.name, "message_id", e.Message.ID, "reason", it.Reason)
			st.Remove = append(st.Remove, e.Seq)
		default:
			d := &chronicle.JournalEntry{Seq: e.Seq, Queue: q.dlq.name, Message: chronicle.Kill(e.Message, chronicle.Death{
				Reason:     it.Reason,
				Queue:      q.name,
				Exchange:   t.exchange,
				RoutingKey: e.Message.Type,
				At:         t.cfg.Now(),
				History:    it.History,
				Process:    t.cfg.Process,
			})}
			st.Move = append(st.Move, d)
			dead = append(dead, d)
		}
	}
	if err := t.journal.Settle(ctx, st); err != nil {
		return err
	}
	q.depth.Add(-int64(len(items)))
	for _, d := range dead {
		q.dlq.depth.Add(1)
		q.dlq.put(d)
	}
	return nil
}
