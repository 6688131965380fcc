package memory

import (
	"context"
	"slices"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// memLog is the verifiable log of a memory store: every event takes the
// next seq as it is stored, under the store's lock.
type memLog struct {
	appender    *integrity.Appender
	ids         []string // by seq
	hashes      [][]byte // each record's stored hashes, by seq
	checkpoints []*chronicle.Checkpoint
	key         string
}

// add gives e the next place in the log; s.mu is held.
func (l *memLog) add(e *chronicle.Event) error {
	if l.appender == nil {
		l.appender, _ = integrity.NewAppender(0, nil)
	}
	seq, stored, err := l.appender.Append(integrity.LeafHash(e))
	if err != nil {
		return err
	}
	e.Seq = &seq
	l.ids = append(l.ids, e.ID)
	l.hashes = append(l.hashes, stored)
	return nil
}

var _ chronicle.Log = (*Store)(nil)

// LogSize implements chronicle.Log.
func (s *Store) LogSize(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.log.ids)), nil
}

// LogHashes implements chronicle.Log.
func (s *Store) LogHashes(_ context.Context, indexes []int64) ([]chronicle.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]chronicle.Hash, len(indexes))
	for i, x := range indexes {
		seq, level := integrity.Locate(x)
		if seq >= int64(len(s.log.hashes)) {
			return nil, chronicle.Errorf(chronicle.ErrNotFound, "log hash %d: the log has %d records", x, len(s.log.hashes))
		}
		h, err := integrity.HashAt(s.log.hashes[seq], level)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// EventsInLog implements chronicle.Log.
func (s *Store) EventsInLog(_ context.Context, from, to int64, limit int) ([]*chronicle.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	to = min(to, int64(len(s.log.ids)))
	var out []*chronicle.Event
	for seq := max(from, 0); seq < to && len(out) < limit; seq++ {
		out = append(out, s.byID[s.log.ids[seq]].Clone())
	}
	return out, nil
}

// EventsInLogMatching implements chronicle.Log.
func (s *Store) EventsInLogMatching(_ context.Context, f chronicle.EventFilter, from, to int64, limit int) ([]*chronicle.Event, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	from = max(from, 0)
	end := min(to, int64(len(s.log.ids)), from+chronicle.LogScanWindow)
	var out []*chronicle.Event
	for seq := from; seq < end; seq++ {
		e := s.byID[s.log.ids[seq]]
		if (f.Since.IsZero() || !e.Timestamp.Before(f.Since)) && matches(e, &f) {
			out = append(out, e.Clone())
			if len(out) == limit {
				return out, seq + 1, nil
			}
		}
	}
	return out, max(end, from), nil
}

// SaveCheckpoint implements chronicle.Log.
func (s *Store) SaveCheckpoint(_ context.Context, c *chronicle.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearchFunc(s.log.checkpoints, c.Size, func(c *chronicle.Checkpoint, size int64) int {
		return int(c.Size - size)
	})
	if !found {
		cp := *c
		s.log.checkpoints = slices.Insert(s.log.checkpoints, i, &cp)
	}
	return nil
}

// Checkpoint implements chronicle.Log.
func (s *Store) Checkpoint(_ context.Context, size int64) (*chronicle.Checkpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cps := s.log.checkpoints
	for i := len(cps) - 1; i >= 0; i-- {
		if size < 0 || cps[i].Size == size {
			c := *cps[i]
			return &c, nil
		}
	}
	return nil, chronicle.Errorf(chronicle.ErrNotFound, "no checkpoint of size %d", size)
}

// Checkpoints implements chronicle.Log.
func (s *Store) Checkpoints(_ context.Context, from int64, limit int) ([]*chronicle.Checkpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*chronicle.Checkpoint
	for _, c := range s.log.checkpoints {
		if c.Size >= from && len(out) < limit {
			cp := *c
			out = append(out, &cp)
		}
	}
	return out, nil
}

// TrustKey implements chronicle.Log.
func (s *Store) TrustKey(_ context.Context, verifier string, rotate bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log.key == "" || rotate {
		s.log.key = verifier
	}
	return s.log.key, nil
}

// Redact implements chronicle.Log.
func (s *Store) Redact(_ context.Context, id string, r chronicle.Redaction, record *chronicle.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	switch {
	case !ok:
		return chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	case e.Redacted != nil:
		return chronicle.Errorf(chronicle.ErrConflict, "event %s was redacted already", id)
	}
	if err := s.storeEvents([]*chronicle.Event{record}); err != nil {
		return err
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	e.Redact(r)
	return nil
}
