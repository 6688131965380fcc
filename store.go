package chronicle

import "context"

// EventStore keeps audit events. Implementations are safe for concurrent use.
type EventStore interface {
	// StoreEvents stores events in one transaction. An event whose ID is
	// already stored is skipped, so redelivered messages are never stored
	// twice; its History joins the stored one as a path, one per Queue.
	// On error nothing was stored.
	StoreEvents(ctx context.Context, events []*Event) error
	// Event returns the event with the given ID and its History (every
	// path), or ErrNotFound.
	Event(ctx context.Context, id string) (*Event, error)
	// Events returns the events that match f, newest first in
	// (timestamp, id) order, at most f.Limit of them.
	Events(ctx context.Context, f EventFilter) ([]*Event, error)
	// CountEvents returns how many events match f (After and Limit are
	// ignored).
	CountEvents(ctx context.Context, f EventFilter) (int64, error)
}

// EntityStore is the entity registry used for read-time enrichment.
type EntityStore interface {
	// PutEntity creates the entity or replaces the one with the same key.
	PutEntity(ctx context.Context, e *Entity) error
	// Entity returns the entity with the given key, or ErrNotFound.
	Entity(ctx context.Context, key string) (*Entity, error)
	// Entities returns every entity, ordered by key.
	Entities(ctx context.Context) ([]*Entity, error)
	// EntitiesByKey returns the entities among keys that exist, by key.
	EntitiesByKey(ctx context.Context, keys []string) (map[string]*Entity, error)
	// DeleteEntity removes the entity, or returns ErrNotFound.
	DeleteEntity(ctx context.Context, key string) error
	// CountEntities returns how many entities are registered.
	CountEntities(ctx context.Context) (int, error)
}

// Store is everything Chronicle keeps, in one place: events and their
// verifiable log, entities, idempotency keys, the in-process
// transport's journal and the outbound sinks' cursors.
type Store interface {
	EventStore
	Log
	EntityStore
	IdempotencyStore
	Journal
	SinkStore
	// Name is the canonical store name: "sqlite", "postgres" or "memory".
	Name() string
	// Ping reports whether the store can be reached now.
	Ping(ctx context.Context) error
	// Close releases the store. Pending writes are finished first.
	Close() error
}
