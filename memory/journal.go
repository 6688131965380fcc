package memory

import (
	"cmp"
	"context"
	"slices"

	"github.com/chronicle-audit/chronicle"
)

// The memory journal holds the in-process transport's entries until they
// are settled, so a transport that is closed and built again on the same
// Store (as in tests) finds what its predecessor left, as it would on
// SQLite; nothing survives the process.

// Durable implements chronicle.Journal: memory is not.
func (s *Store) Durable() bool { return false }

// Append implements chronicle.Journal.
func (s *Store) Append(_ context.Context, entries []*chronicle.JournalEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		s.seq++
		e.Seq = s.seq
		s.journal[e.Seq] = detach(e)
	}
	return nil
}

// Pending implements chronicle.Journal.
func (s *Store) Pending(context.Context) ([]*chronicle.JournalEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*chronicle.JournalEntry, 0, len(s.journal))
	for _, e := range s.journal {
		c := *e
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *chronicle.JournalEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Settle implements chronicle.Journal: the events are stored and the
// entries removed or moved at once, under one lock.
func (s *Store) Settle(_ context.Context, st *chronicle.Settlement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.storeEvents(st.Events); err != nil {
		return err
	}
	for _, seq := range st.Remove {
		delete(s.journal, seq)
	}
	for _, e := range st.Move {
		s.journal[e.Seq] = detach(e)
	}
	return nil
}

// detach copies an entry as a durable journal would hold it: the message's
// body and headers, not the publisher's decoded event.
func detach(e *chronicle.JournalEntry) *chronicle.JournalEntry {
	c := *e
	c.Message.Event = nil
	return &c
}
