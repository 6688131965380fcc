package chronicle

import (
	"context"
	"time"
)

// Outbound streams (package outbound): each sink of the routing file reads
// the verifiable log in seq order and delivers the events that match its
// pattern to a webhook or to files. Its place in the log, its cursor, is
// kept in the store and moved only after a batch was delivered, so
// delivery is at least once, in log order, and resumes where it stopped.

// SinkState is where a sink stands in the log.
type SinkState struct {
	Name string `json:"name"`
	// Cursor is the seq of the next event to deliver: every event before
	// it was delivered, or did not match the sink's pattern. 0 for a sink
	// that never delivered.
	Cursor int64 `json:"cursor"`
	// ReplayFrom and ReplayTo are a pending replay: the events with
	// ReplayFrom <= seq < ReplayTo are to be sent again. None when
	// ReplayFrom >= ReplayTo.
	ReplayFrom int64 `json:"replay_from"`
	ReplayTo   int64 `json:"replay_to"`
	// UpdatedAt is when the state last changed; zero for a sink with
	// none stored.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Replaying reports whether a replay is pending.
func (s SinkState) Replaying() bool { return s.ReplayFrom < s.ReplayTo }

// SinkStore keeps the sinks' cursors and decides which process delivers
// each sink. Implementations are safe for concurrent use.
type SinkStore interface {
	// SinkStates returns the stored state of every sink that has one, by
	// name.
	SinkStates(ctx context.Context) ([]SinkState, error)
	// ReplaySink records that the events of sink name with from <= seq <
	// to are to be sent again, replacing any replay pending. to is cut
	// at the sink's cursor: events after it are still to be delivered
	// anyway. The cursor does not move. It returns the sink's state.
	ReplaySink(ctx context.Context, name string, from, to int64) (SinkState, error)
	// LeaseSink makes this process the one that delivers sink name,
	// until the lease is released or its process ends. While another
	// process holds it, it returns ErrConflict.
	LeaseSink(ctx context.Context, name string) (SinkLease, error)
}

// SinkLease is the right to deliver one sink. Only its holder moves the
// sink's cursor and the progress of its replay; a lease whose hold was
// lost (its database session ended) fails every call, and its holder
// must stop delivering and lease again.
type SinkLease interface {
	// State returns the sink's stored state; a sink without one starts
	// at seq 0 with no replay.
	State(ctx context.Context) (SinkState, error)
	// Advance stores cursor as the sink's cursor.
	Advance(ctx context.Context, cursor int64) error
	// ReplayProgress records that the pending replay [from, to) has been
	// sent up to next (next >= to: done). It changes nothing when
	// another replay has replaced that one meanwhile.
	ReplayProgress(ctx context.Context, from, to, next int64) error
	// Release gives the sink up. It is safe to call twice.
	Release() error
}
