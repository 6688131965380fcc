package chronicle

import (
	"context"
	"encoding/json"
	"time"
)

// The verifiable log (package integrity): every stored event takes the
// next place in a Merkle tree, its seq, and keeps it forever; signed
// checkpoints commit to the tree's size and root, so anyone holding one
// can prove that no event before it was changed, removed or reordered.

// Hash is a SHA-256 hash of the log's Merkle tree.
type Hash [32]byte

// Log is what a store keeps of the verifiable log: the hashes of its tree
// in tlog's storage order (each record's hashes with the record), its
// signed checkpoints and the keys that signed them. Package integrity
// computes the hashes and signs; the store only keeps them. Every store
// adds the events it stores to the log in the order it stores them, none
// twice and with no gap, also across processes and crashes.
type Log interface {
	// LogSize returns how many events the log holds: its tree size.
	LogSize(ctx context.Context) (int64, error)
	// LogHashes returns the tree's stored hashes at indexes.
	LogHashes(ctx context.Context, indexes []int64) ([]Hash, error)
	// EventsInLog returns the events with from <= seq < to, in seq order,
	// at most limit of them.
	EventsInLog(ctx context.Context, from, to int64, limit int) ([]*Event, error)
	// EventsInLogMatching returns the events with from <= seq < to that
	// match f (its After and Limit play no part), in seq order, at most
	// limit of them, and next: every event with from <= seq < next has
	// been looked at, so a reader goes on at next, and next == to when
	// the range is done. A call may look at a window of the range only,
	// and return fewer than limit events, even none, with next < to:
	// each call's work is bounded, and a sparse filter costs one pass
	// over the range in all, never a scan per page. to is at most the
	// log's size (LogSize): a place beyond it holds no event yet, and
	// one may come.
	EventsInLogMatching(ctx context.Context, f EventFilter, from, to int64, limit int) (events []*Event, next int64, err error)
	// SaveCheckpoint keeps a signed checkpoint of the tree at size. A
	// store keeps one per size: a second for a size it has is ignored.
	SaveCheckpoint(ctx context.Context, c *Checkpoint) error
	// Checkpoint returns the checkpoint of the tree at size, the latest
	// when size < 0, or ErrNotFound.
	Checkpoint(ctx context.Context, size int64) (*Checkpoint, error)
	// Checkpoints returns up to limit checkpoints of sizes >= from, by
	// size.
	Checkpoints(ctx context.Context, from int64, limit int) ([]*Checkpoint, error)
	// TrustKey records verifier (a note verifier key) as the log's key
	// when the log has none, or when rotate and it has another (which it
	// keeps as a former key), and returns the key the log has.
	TrustKey(ctx context.Context, verifier string, rotate bool) (string, error)
	// Redact replaces the content of the event id with a tombstone (its
	// place and leaf hash in the log stay) and stores record, the event
	// that says who redacted it, in the same transaction. An event already
	// redacted gives ErrConflict; an unknown one ErrNotFound.
	Redact(ctx context.Context, id string, r Redaction, record *Event) error
}

// Checkpoint is a signed checkpoint: a C2SP tlog-checkpoint signed note
// committing to the log's first Size events.
type Checkpoint struct {
	Size      int64
	Note      []byte
	CreatedAt time.Time
}

// Redaction is what remains of a redacted event's content: who erased it,
// when, why, and the id of the event that records it.
type Redaction struct {
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason,omitempty"`
	RecordID string    `json:"record_id"`
}

// MarshalJSON writes At with TimestampLayout, like every time the API
// writes.
func (r Redaction) MarshalJSON() ([]byte, error) {
	type plain Redaction // no methods: avoids recursion
	return json.Marshal(struct {
		plain
		At string `json:"at"`
	}{plain: plain(r), At: r.At.UTC().Format(TimestampLayout)})
}

// EventTypeRedaction is the event type of the event that records a
// redaction; its resource is the redacted event (resource_type "event").
const EventTypeRedaction = "chronicle.redaction"

// Redact erases e's content, leaving a tombstone: its id, received time,
// event type and place in the log, and who erased the rest. Its leaf hash
// stays in the log, so proofs still verify.
func (e *Event) Redact(r Redaction) {
	*e = Event{ID: e.ID, Timestamp: e.Timestamp, EventType: e.EventType, Seq: e.Seq, Redacted: &r}
}

// LogScanWindow is how many places of the log one EventsInLogMatching
// call looks at, at most: what bounds a call whose filter matches little.
const LogScanWindow = 10_000
