// Package chronicle is the domain of the Chronicle audit-log service: the
// audit event, the entity registry, the errors the service speaks in, and the
// small interfaces (Store, Gateway, Journal) that the transport and store
// packages implement. It imports nothing of the project's own.
package chronicle

import (
	"encoding/json"
	"maps"
	"time"
)

// Event is one audit record: Actor did Action on ResourceType/ResourceID.
//
// The server assigns ID (a time-ordered UUIDv7) and Timestamp (receive time,
// UTC, microsecond precision). Optional fields that are unset are omitted
// from JSON.
type Event struct {
	ID            string            `json:"id"`
	Actor         string            `json:"actor"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type"`
	ResourceID    string            `json:"resource_id"`
	Timestamp     time.Time         `json:"timestamp"`
	EventType     string            `json:"event_type,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	EntityKey     string            `json:"entity_key,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// TimestampLayout is how timestamps are written: RFC 3339 with exactly six
// fractional digits, so every timestamp has microsecond precision and sorts
// as text.
const TimestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON writes the timestamp with TimestampLayout.
func (e *Event) MarshalJSON() ([]byte, error) {
	type plain Event // no methods: avoids recursion
	return json.Marshal(struct {
		*plain
		Timestamp string `json:"timestamp"`
	}{(*plain)(e), e.Timestamp.UTC().Format(TimestampLayout)})
}

// UnmarshalJSON reads what MarshalJSON writes: stored copies (idempotency
// records) and the service's answers to its clients. Client input goes
// through package ingest, which checks every field.
func (e *Event) UnmarshalJSON(data []byte) error {
	type plain Event
	var aux struct {
		*plain
		Timestamp string `json:"timestamp"`
	}
	aux.plain = (*plain)(e)
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	if aux.Timestamp == "" {
		e.Timestamp = time.Time{}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, aux.Timestamp)
	if err != nil {
		return err
	}
	e.Timestamp = t.UTC()
	return nil
}

// Clone returns a deep copy, so enrichment never changes a stored event.
func (e *Event) Clone() *Event {
	c := *e
	c.Metadata = maps.Clone(e.Metadata)
	return &c
}

// EventFilter selects events for a listing. Empty fields do not filter.
type EventFilter struct {
	Actor         string
	Action        string
	EventType     string
	ResourceType  string
	ResourceID    *string // nil: no filter; a resource_id may be empty
	CorrelationID string
	EntityKey     string
	Since         time.Time // inclusive; zero: no bound
	Until         time.Time // exclusive; zero: no bound
	// After continues a listing: only events strictly older than this
	// position in (timestamp, id) order. Nil starts at the newest event.
	After *Position
	// Limit is the page size, 1 to MaxLimit.
	Limit int
}

// Limits of a listing.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Position is a place in the (timestamp, id) order of events; listings run
// newest first and continue strictly below a position (keyset pagination).
type Position struct {
	Timestamp time.Time
	ID        string
}

// PositionOf returns the position of e.
func PositionOf(e *Event) Position { return Position{Timestamp: e.Timestamp, ID: e.ID} }
