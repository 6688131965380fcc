// Package chronicle is the domain of the Chronicle audit-log service: the
// audit event and its Message History, the entity registry, messages and
// their death records, the errors the service speaks in, and the small
// interfaces (stores, the gateway's parts, the journal) that the transport
// and store packages implement. It imports nothing of the project's own.
package chronicle

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Event is one audit record: Actor did Action on ResourceType/ResourceID.
//
// The server assigns ID (a time-ordered UUIDv7) and Timestamp, the time it
// received the event (received_at; the field keeps the name it always had).
// OccurredAt is when the producer says it happened, optional. Times are UTC
// with microsecond precision. Optional fields that are unset are omitted
// from JSON.
type Event struct {
	ID            string            `json:"id"`
	Actor         string            `json:"actor"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type"`
	ResourceID    string            `json:"resource_id"`
	Timestamp     time.Time         `json:"timestamp"`
	OccurredAt    time.Time         `json:"occurred_at,omitzero"`
	EventType     string            `json:"event_type,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	EntityKey     string            `json:"entity_key,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// Seq is the event's place in the verifiable log, once it has one.
	Seq *int64 `json:"seq,omitempty"`
	// Redacted, on a redacted event, says who erased its content; what
	// remains is its id, times, type and place in the log.
	Redacted *Redaction `json:"redacted,omitempty"`
	// LeafHash, on a redacted event read from the log, is the leaf hash
	// its content had: what a verifier uses in place of the content.
	LeafHash []byte `json:"leaf_hash,omitempty"`
	// History is the event's Message History: the hops it took on its way
	// in. It travels beside the event, not in it: it is not part of the
	// event's JSON, and it grows after the event is stored (each route's
	// consumer adds its path).
	History History `json:"-"`
	// Queue is the queue this copy of the event was consumed from: a store
	// keeps one path of History per queue, so a redelivery adds none.
	Queue string `json:"-"`
}

// TimestampLayout is how timestamps are written: RFC 3339 with exactly six
// fractional digits, so every timestamp has microsecond precision and sorts
// as text.
const TimestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON writes the times with TimestampLayout.
func (e *Event) MarshalJSON() ([]byte, error) {
	type plain Event // no methods: avoids recursion
	out := struct {
		*plain
		Timestamp  string `json:"timestamp"`
		OccurredAt string `json:"occurred_at,omitempty"`
	}{plain: (*plain)(e), Timestamp: e.Timestamp.UTC().Format(TimestampLayout)}
	if !e.OccurredAt.IsZero() {
		out.OccurredAt = e.OccurredAt.UTC().Format(TimestampLayout)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes: stored copies (idempotency
// records) and the service's answers to its clients. Client input goes
// through package ingest, which checks every field.
func (e *Event) UnmarshalJSON(data []byte) error {
	type plain Event
	var aux struct {
		*plain
		Timestamp  string `json:"timestamp"`
		OccurredAt string `json:"occurred_at"`
	}
	aux.plain = (*plain)(e)
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	var err error
	if e.Timestamp, err = parseTime(aux.Timestamp); err != nil {
		return err
	}
	e.OccurredAt, err = parseTime(aux.OccurredAt)
	return err
}

// parseTime reads an RFC 3339 time as UTC; "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

// Clone returns a deep copy, so enrichment never changes a stored event.
func (e *Event) Clone() *Event {
	c := *e
	c.Metadata = maps.Clone(e.Metadata)
	c.History = slices.Clone(e.History)
	if e.Seq != nil {
		c.Seq = new(*e.Seq)
	}
	if e.Redacted != nil {
		c.Redacted = new(*e.Redacted)
	}
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
	// OccurredSince and OccurredUntil bound OccurredAt (inclusive,
	// exclusive); an event without OccurredAt never matches a bound.
	OccurredSince time.Time
	OccurredUntil time.Time
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
