package chronicle

import "context"

// Journal makes in-process queues durable. The in-process transport appends
// every message to the journal before Publish returns, and its consumers
// settle what they took (store the events, remove or move the entries) in
// one atomic step, so a crash at any moment neither loses an accepted event
// nor stores one twice. Every store provides one: the SQLite and
// PostgreSQL journals share the events' database; the memory store's lives
// and dies with the process.
type Journal interface {
	// Append records entries and assigns their Seq. When it returns nil
	// on a durable journal, the entries survive a crash or power cut.
	Append(ctx context.Context, entries []*JournalEntry) error
	// Pending returns every entry still in the journal, in Seq order.
	Pending(ctx context.Context) ([]*JournalEntry, error)
	// Settle applies s atomically: stores its events (idempotently),
	// removes the entries in Remove and rewrites those in Move (a message
	// going to a dead-letter queue or being replayed). On error nothing
	// of s was applied.
	Settle(ctx context.Context, s *Settlement) error
	// Durable reports whether appended entries survive the process.
	Durable() bool
}

// JournalEntry is one message held by one queue.
type JournalEntry struct {
	Seq     int64
	Queue   string
	Message Message
}

// Settlement is the outcome of a consumer's batch.
type Settlement struct {
	Events []*Event
	Remove []int64
	Move   []*JournalEntry
}
