// Package api holds the JSON shapes of Chronicle's HTTP API, shared by the
// server (httpapi) and its clients (client, cli).
//
// Each type is written exactly as the service sends it, so the server
// encodes its answers with these types and a client decodes them with the
// same ones. The domain types that already carry JSON tags
// (chronicle.Event, chronicle.Entity, chronicle.DeadLetter,
// chronicle.QueueStatus) travel as they are and are not repeated here.
// The server's decoding of POST /events (package ingest) checks every
// field of the input itself; EventInput is what a client sends.
package api

import (
	"encoding/json"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Header names of the API.
const (
	// IdempotencyKeyHeader makes a POST /events safe to retry: a retry with
	// the same key and body gets the first answer and stores nothing new.
	IdempotencyKeyHeader = "Idempotency-Key"
	// RequestIDHeader carries the request id, in and out.
	RequestIDHeader = "X-Request-Id"
)

// EventInput is one event as POST /events takes it. The service assigns
// the id and the timestamp; it derives event_type from resource_type and
// action, and uses the request id as correlation_id, when they are not
// given.
type EventInput struct {
	Actor         string `json:"actor"`
	Action        string `json:"action"`
	ResourceType  string `json:"resource_type"`
	ResourceID    string `json:"resource_id"`
	EventType     string `json:"event_type,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	EntityKey     string `json:"entity_key,omitempty"`
	// OccurredAt is when the event happened, by the producer's clock.
	OccurredAt time.Time         `json:"occurred_at,omitzero"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

// Accepted is the answer (202) to a single event: {"status":"accepted","id":…}.
type Accepted struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// BatchResult is what became of one event of a batch: its ID when it was
// accepted, else the error and the reason.
type BatchResult struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// BatchResponse is the answer to a batch (a JSON array or NDJSON): 202
// when at least one event was accepted (Status "accepted"), 422 with the
// same body when none was (Status "rejected").
type BatchResponse struct {
	Status   string        `json:"status"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Results  []BatchResult `json:"results"`
}

// Health is GET /health's answer, 200 when Status is "healthy" and 503
// otherwise ("unhealthy", "draining"). Error says what is wrong. Auth is
// "on" or "off"; the service always sends it. Version is the build of
// the service, when it knows it.
type Health struct {
	Status    string `json:"status"`
	Transport string `json:"transport,omitempty"`
	Store     string `json:"store,omitempty"`
	Entities  *int   `json:"entities,omitempty"`
	Auth      string `json:"auth,omitempty"`
	Version   string `json:"version,omitempty"`
	Error     string `json:"error,omitempty"`
	// Sinks are the outbound streams and how they fare.
	Sinks []SinkHealth `json:"sinks,omitempty"`
}

// WhoAmI is GET /whoami's answer: the label of the API key that asked
// (never the key; empty when access control is off) and the scopes it
// may use, "ingest", "read" and "admin", each listed when allowed (an
// admin key lists all three; so does open access).
type WhoAmI struct {
	Key    string   `json:"key,omitempty"`
	Scopes []string `json:"scopes"`
}

// DeadLetterQueue is one queue of GET /dlq: a dead-letter queue (or the
// unrouted queue) with the route it serves and how many messages it holds.
type DeadLetterQueue struct {
	Queue string `json:"queue"`
	Route string `json:"route"`
	Depth int    `json:"depth"`
}

// Selection picks dead letters for POST /dlq/{queue}/replay and DELETE
// /dlq/{queue}: the messages with IDs, or the first Limit, or every
// message. Replay takes {} for every message; purge wants All said
// explicitly.
type Selection struct {
	IDs   []string `json:"ids,omitempty"`
	Limit *int     `json:"limit,omitempty"`
	All   bool     `json:"all,omitempty"`
}

// Replayed is the answer to a replay: how many messages went back to
// their queues.
type Replayed struct {
	Replayed int `json:"replayed"`
}

// Purged is the answer to a purge: how many messages were deleted.
type Purged struct {
	Purged int `json:"purged"`
}

// Count is GET /events/count's answer.
type Count struct {
	Count int64 `json:"count"`
}

// EntityResult is the answer to POST /entities (Status "created") and
// DELETE /entities/{key} (Status "deleted").
type EntityResult struct {
	Key    string `json:"key"`
	Status string `json:"status"`
}

// Error is the body of every answer outside 2xx. Reason, when set, is the
// detail of a validation failure (Error is then "validation_failed").
type Error struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

// EventWithHistory is GET /events/{id}?include=history: the event's fields
// and its Message History, in the order the hops happened.
type EventWithHistory struct {
	Event   *chronicle.Event
	History []chronicle.Hop
}

// MarshalJSON writes the event's own JSON with a "history" member added.
func (e EventWithHistory) MarshalJSON() ([]byte, error) {
	b, err := e.Event.MarshalJSON()
	if err != nil {
		return nil, err
	}
	h, err := json.Marshal(e.History)
	if err != nil {
		return nil, err
	}
	out := append(b[:len(b)-1:len(b)-1], `,"history":`...)
	return append(append(out, h...), '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *EventWithHistory) UnmarshalJSON(data []byte) error {
	var aux struct {
		History []chronicle.Hop `json:"history"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	e.Event = &chronicle.Event{}
	if err := e.Event.UnmarshalJSON(data); err != nil {
		return err
	}
	e.History = aux.History
	return nil
}
