package memory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// sinks holds the sinks' states and which of them are leased: one
// process, so a lease is a name in a set.
type sinks struct {
	mu     sync.Mutex
	states map[string]chronicle.SinkState
	leased map[string]bool
}

func (s *Store) sinkTable() *sinks {
	s.sinkOnce.Do(func() {
		s.sinks = &sinks{states: map[string]chronicle.SinkState{}, leased: map[string]bool{}}
	})
	return s.sinks
}

var _ chronicle.SinkStore = (*Store)(nil)

// SinkStates implements chronicle.SinkStore.
func (s *Store) SinkStates(context.Context) ([]chronicle.SinkState, error) {
	t := s.sinkTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]chronicle.SinkState, 0, len(t.states))
	for _, st := range t.states {
		out = append(out, st)
	}
	sortStates(out)
	return out, nil
}

func sortStates(out []chronicle.SinkState) {
	slices.SortFunc(out, func(a, b chronicle.SinkState) int { return strings.Compare(a.Name, b.Name) })
}

// ReplaySink implements chronicle.SinkStore.
func (s *Store) ReplaySink(_ context.Context, name string, from, to int64) (chronicle.SinkState, error) {
	t := s.sinkTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.states[name]
	st.Name = name
	st.ReplayFrom, st.ReplayTo = from, min(to, st.Cursor)
	st.UpdatedAt = time.Now().UTC()
	t.states[name] = st
	return st, nil
}

// LeaseSink implements chronicle.SinkStore.
func (s *Store) LeaseSink(_ context.Context, name string) (chronicle.SinkLease, error) {
	t := s.sinkTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leased[name] {
		return nil, chronicle.Errorf(chronicle.ErrConflict, "sink %q is delivered by another holder", name)
	}
	t.leased[name] = true
	return &lease{t: t, name: name}, nil
}

type lease struct {
	t        *sinks
	name     string
	released bool // guarded by t.mu
}

func (l *lease) held() error {
	if l.released {
		return chronicle.Errorf(chronicle.ErrClosed, "the lease of sink %q was released", l.name)
	}
	return nil
}

func (l *lease) State(context.Context) (chronicle.SinkState, error) {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	st := l.t.states[l.name]
	st.Name = l.name
	return st, l.held()
}

func (l *lease) Advance(_ context.Context, cursor int64) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if err := l.held(); err != nil {
		return err
	}
	st := l.t.states[l.name]
	st.Name, st.Cursor, st.UpdatedAt = l.name, cursor, time.Now().UTC()
	l.t.states[l.name] = st
	return nil
}

func (l *lease) ReplayProgress(_ context.Context, from, to, next int64) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if err := l.held(); err != nil {
		return err
	}
	st, ok := l.t.states[l.name]
	if !ok || st.ReplayFrom != from || st.ReplayTo != to {
		return nil
	}
	st.ReplayFrom, st.UpdatedAt = min(next, to), time.Now().UTC()
	l.t.states[l.name] = st
	return nil
}

func (l *lease) Release() error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if !l.released {
		l.released = true
		delete(l.t.leased, l.name)
	}
	return nil
}
