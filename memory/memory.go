// Package memory is a chronicle.Store that keeps everything in process
// memory: for tests and demos (the original system's `ets` store). Nothing survives a
// restart.
package memory

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Store is an in-memory chronicle.Store. The zero value is not usable;
// call New.
type Store struct {
	mu       sync.RWMutex
	byID     map[string]*chronicle.Event
	paths    map[string]map[string]chronicle.History // event id → queue → path
	ordered  []*chronicle.Event                      // ascending (timestamp, id)
	entities map[string]*chronicle.Entity
	idem     map[string]*chronicle.IdempotencyRecord
	journal  map[int64]*chronicle.JournalEntry
	seq      int64
	log      memLog
	sinkOnce sync.Once
	sinks    *sinks
}

var _ chronicle.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:     map[string]*chronicle.Event{},
		paths:    map[string]map[string]chronicle.History{},
		entities: map[string]*chronicle.Entity{},
		journal:  map[int64]*chronicle.JournalEntry{},
	}
}

// Name implements chronicle.Store.
func (s *Store) Name() string { return "memory" }

// Ping implements chronicle.Store.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements chronicle.Store.
func (s *Store) Close() error { return nil }

func compare(a, b chronicle.Position) int {
	if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// StoreEvents implements chronicle.EventStore.
func (s *Store) StoreEvents(_ context.Context, events []*chronicle.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeEvents(events)
}

// storeEvents stores events, all or none; s.mu is held.
func (s *Store) storeEvents(events []*chronicle.Event) error {
	if slices.Contains(events, nil) {
		return chronicle.Errorf(chronicle.ErrInvalid, "nil event")
	}
	for _, e := range events {
		if len(e.History) > 0 {
			// The path joins the event's history, once per queue.
			paths := s.paths[e.ID]
			if paths == nil {
				paths = map[string]chronicle.History{}
				s.paths[e.ID] = paths
			}
			if _, ok := paths[e.Queue]; !ok {
				paths[e.Queue] = slices.Clone(e.History)
			}
		}
		if _, ok := s.byID[e.ID]; ok {
			continue
		}
		c := e.Clone()
		c.History, c.Queue, c.Redacted = nil, "", nil
		c.Timestamp, c.OccurredAt = c.Timestamp.UTC(), c.OccurredAt.UTC()
		if err := s.log.add(c); err != nil {
			return err
		}
		s.byID[c.ID] = c
		p := chronicle.PositionOf(c)
		// Events mostly arrive in order, so this is usually an append.
		i := len(s.ordered)
		if i > 0 && compare(chronicle.PositionOf(s.ordered[i-1]), p) > 0 {
			i, _ = slices.BinarySearchFunc(s.ordered, p, func(e *chronicle.Event, p chronicle.Position) int {
				return compare(chronicle.PositionOf(e), p)
			})
		}
		s.ordered = slices.Insert(s.ordered, i, c)
	}
	return nil
}

// Event implements chronicle.EventStore.
func (s *Store) Event(_ context.Context, id string) (*chronicle.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.byID[id]
	if !ok {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	c := e.Clone()
	for _, q := range slices.Sorted(maps.Keys(s.paths[id])) {
		c.History = c.History.Concat(s.paths[id][q])
	}
	return c, nil
}

// Events implements chronicle.EventStore.
func (s *Store) Events(_ context.Context, f chronicle.EventFilter) ([]*chronicle.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := len(s.ordered)
	if f.After != nil {
		end, _ = slices.BinarySearchFunc(s.ordered, *f.After, func(e *chronicle.Event, p chronicle.Position) int {
			return compare(chronicle.PositionOf(e), p)
		})
	}
	var out []*chronicle.Event
	for i := end - 1; i >= 0 && len(out) < f.Limit; i-- {
		e := s.ordered[i]
		if !f.Since.IsZero() && e.Timestamp.Before(f.Since) {
			break
		}
		if matches(e, &f) {
			out = append(out, e.Clone())
		}
	}
	return out, nil
}

// CountEvents implements chronicle.EventStore.
func (s *Store) CountEvents(_ context.Context, f chronicle.EventFilter) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, e := range s.ordered {
		if (f.Since.IsZero() || !e.Timestamp.Before(f.Since)) && matches(e, &f) {
			n++
		}
	}
	return n, nil
}

func matches(e *chronicle.Event, f *chronicle.EventFilter) bool {
	occurred := !e.OccurredAt.IsZero()
	if (!f.OccurredSince.IsZero() || !f.OccurredUntil.IsZero()) && !occurred {
		return false
	}
	if !f.OccurredSince.IsZero() && e.OccurredAt.Before(f.OccurredSince) || !f.OccurredUntil.IsZero() && !e.OccurredAt.Before(f.OccurredUntil) {
		return false
	}
	return (f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.EventType == "" || e.EventType == f.EventType) &&
		(f.ResourceType == "" || e.ResourceType == f.ResourceType) &&
		(f.ResourceID == nil || e.ResourceID == *f.ResourceID) &&
		(f.CorrelationID == "" || e.CorrelationID == f.CorrelationID) &&
		(f.EntityKey == "" || e.EntityKey == f.EntityKey) &&
		(f.Until.IsZero() || e.Timestamp.Before(f.Until))
}

func cloneEntity(e *chronicle.Entity) *chronicle.Entity {
	c := *e
	c.Attributes = maps.Clone(e.Attributes)
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	return &c
}

// PutEntity implements chronicle.EntityStore.
func (s *Store) PutEntity(_ context.Context, e *chronicle.Entity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entities[e.Key] = cloneEntity(e)
	return nil
}

// Entity implements chronicle.EntityStore.
func (s *Store) Entity(_ context.Context, key string) (*chronicle.Entity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entities[key]
	if !ok {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	return cloneEntity(e), nil
}

// Entities implements chronicle.EntityStore.
func (s *Store) Entities(context.Context) ([]*chronicle.Entity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*chronicle.Entity, 0, len(s.entities))
	for _, k := range slices.Sorted(maps.Keys(s.entities)) {
		out = append(out, cloneEntity(s.entities[k]))
	}
	return out, nil
}

// EntitiesByKey implements chronicle.EntityStore.
func (s *Store) EntitiesByKey(_ context.Context, keys []string) (map[string]*chronicle.Entity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]*chronicle.Entity, len(keys))
	for _, k := range keys {
		if e, ok := s.entities[k]; ok {
			out[k] = cloneEntity(e)
		}
	}
	return out, nil
}

// DeleteEntity implements chronicle.EntityStore.
func (s *Store) DeleteEntity(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entities[key]; !ok {
		return chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	delete(s.entities, key)
	return nil
}

// CountEntities implements chronicle.EntityStore.
func (s *Store) CountEntities(context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entities), nil
}

// ClaimIdempotencyKey implements chronicle.IdempotencyStore.
func (s *Store) ClaimIdempotencyKey(_ context.Context, rec *chronicle.IdempotencyRecord) (*chronicle.IdempotencyRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idem == nil {
		s.idem = map[string]*chronicle.IdempotencyRecord{}
	}
	k := rec.Scope + "\x00" + rec.Key
	if old, ok := s.idem[k]; ok {
		return old, false, nil
	}
	c := *rec
	s.idem[k] = &c
	return nil, true, nil
}

// ForgetIdempotencyKeys implements chronicle.IdempotencyStore.
func (s *Store) ForgetIdempotencyKeys(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.idem {
		if r.CreatedAt.Before(before) {
			delete(s.idem, k)
			n++
		}
	}
	return n, nil
}
