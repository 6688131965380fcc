package inproc

import (
	"context"
	"slices"

	"github.com/chronicle-audit/chronicle"
)

// DeadLetterQueues implements chronicle.DeadLetterChannel.
func (t *Transport) DeadLetterQueues(context.Context) ([]chronicle.QueueStatus, error) {
	out := make([]chronicle.QueueStatus, 0, len(t.heldQs))
	for _, q := range t.heldQs {
		out = append(out, q.status())
	}
	return out, nil
}

func (t *Transport) heldQueue(name string) (*queue, error) {
	if err := t.unready(); err != nil {
		return nil, err
	}
	q := t.queues[name]
	if q == nil || q.kind == chronicle.QueueRoute {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "no dead-letter queue named %s", name)
	}
	return q, nil
}

// PeekDeadLetters implements chronicle.DeadLetterChannel.
func (t *Transport) PeekDeadLetters(_ context.Context, name string, limit int) ([]chronicle.DeadLetter, error) {
	q, err := t.heldQueue(name)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.held)
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]chronicle.DeadLetter, n)
	for i, e := range q.held[:n] {
		out[i] = chronicle.DeadLetterOf(e.Message)
	}
	return out, nil
}

// take removes the selected entries from a held queue and returns them,
// in queue order.
func (q *queue) take(sel chronicle.Selection) []*chronicle.JournalEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*chronicle.JournalEntry
	switch {
	case len(sel.IDs) > 0:
		keep := q.held[:0:0]
		for _, e := range q.held {
			if slices.Contains(sel.IDs, e.Message.ID) {
				out = append(out, e)
			} else {
				keep = append(keep, e)
			}
		}
		q.held = keep
	default:
		n := len(q.held)
		if sel.Limit > 0 {
			n = min(n, sel.Limit)
		}
		out = slices.Clone(q.held[:n])
		q.held = slices.Clone(q.held[n:])
	}
	return out
}

// giveBack returns entries to the head of a held queue, in order, after
// an operation on them failed.
func (q *queue) giveBack(entries []*chronicle.JournalEntry) {
	q.mu.Lock()
	q.held = append(slices.Clone(entries), q.held...)
	q.mu.Unlock()
}

// ReplayDeadLetters implements chronicle.DeadLetterChannel. A dead letter
// goes back to the queue it died in (not through the exchange, so other
// routes get no second copy); an unrouted message is routed again, since
// the configuration may have gained a route for it. Each is removed from
// the dead-letter queue in the same journal step that queues it again.
func (t *Transport) ReplayDeadLetters(ctx context.Context, name string, sel chronicle.Selection) (int, error) {
	q, err := t.heldQueue(name)
	if err != nil {
		return 0, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return 0, chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	entries := q.take(sel)
	if len(entries) == 0 {
		return 0, nil
	}
	var moves, extra []*chronicle.JournalEntry
	var targets, extraTargets []*queue
	var stay []*chronicle.JournalEntry
	for _, e := range entries {
		var dests []*queue
		if q.kind == chronicle.QueueUnrouted {
			for _, r := range t.router.Routes(e.Message.Type) {
				dests = append(dests, t.queues[r.Queue])
			}
		} else if origin := t.queues[e.Message.Headers[chronicle.HeaderOriginQueue]]; origin != nil && origin.kind == chronicle.QueueRoute {
			dests = []*queue{origin}
		}
		if len(dests) == 0 {
			stay = append(stay, e)
			continue
		}
		for i, d := range dests {
			m := &chronicle.JournalEntry{Seq: e.Seq, Queue: d.name,
				Message: chronicle.Replayed(e.Message, d.name, sel.By, t.cfg.Process, t.cfg.Now())}
			if i == 0 {
				moves, targets = append(moves, m), append(targets, d)
			} else {
				extra, extraTargets = append(extra, m), append(extraTargets, d)
			}
		}
	}
	if len(stay) > 0 {
		q.giveBack(stay)
	}
	if len(moves) == 0 {
		return 0, nil
	}
	all := append(slices.Clone(targets), extraTargets...)
	if err := reserve(all); err != nil {
		q.giveBack(entriesOf(moves, entries))
		return 0, err
	}
	// Extra copies (an unrouted message now matching several routes) are
	// journaled first: a crash in between leaves a duplicate that the
	// idempotent store absorbs, never a loss.
	if err := t.journal.Append(ctx, extra); err != nil {
		release(all)
		q.giveBack(entriesOf(moves, entries))
		return 0, err
	}
	if err := t.journal.Settle(ctx, &chronicle.Settlement{Move: moves}); err != nil {
		release(all)
		q.giveBack(entriesOf(moves, entries))
		return 0, err
	}
	q.depth.Add(-int64(len(moves)))
	for i, m := range moves {
		targets[i].put(m)
	}
	for i, m := range extra {
		extraTargets[i].put(m)
	}
	return len(moves), nil
}

// entriesOf returns the original entries of moved copies, in order.
func entriesOf(moves, originals []*chronicle.JournalEntry) []*chronicle.JournalEntry {
	var out []*chronicle.JournalEntry
	for _, o := range originals {
		if slices.ContainsFunc(moves, func(m *chronicle.JournalEntry) bool { return m.Seq == o.Seq }) {
			out = append(out, o)
		}
	}
	return out
}

// PurgeDeadLetters implements chronicle.DeadLetterChannel.
func (t *Transport) PurgeDeadLetters(ctx context.Context, name string, sel chronicle.Selection) (int, error) {
	q, err := t.heldQueue(name)
	if err != nil {
		return 0, err
	}
	entries := q.take(sel)
	if len(entries) == 0 {
		return 0, nil
	}
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		seqs[i] = e.Seq
	}
	if err := t.journal.Settle(ctx, &chronicle.Settlement{Remove: seqs}); err != nil {
		q.giveBack(entries)
		return 0, err
	}
	q.depth.Add(-int64(len(entries)))
	return len(entries), nil
}
