package chronicle

import (
	"context"
	"time"
)

// The Messaging Gateway is the one door through which the HTTP API
// publishes events and through which consumers are started, whatever the
// transport behind it (in-process channels or RabbitMQ). Its parts are
// small interfaces, so each caller asks only for what it uses: the API
// publishes, an operator inspects, the process wiring starts and stops.
//
// Delivery is at least once; the store is idempotent on event ID, so every
// published event is stored exactly once.

// Publisher is the producer's side of the gateway.
type Publisher interface {
	// Publish routes events through the exchange to every matching route
	// queue (or to the unrouted queue when none matches). It returns nil
	// only once every event is durably held by the transport (journaled or
	// confirmed by the broker); only then may the client be told 202. It
	// returns an error wrapping ErrUnavailable when the transport cannot
	// take the events now, and ErrClosed after Close began. On error, some
	// of the events may still have been taken; they carry their own IDs,
	// so a retry never stores them twice.
	Publish(ctx context.Context, events []*Event) error
	// Congested returns an error wrapping ErrUnavailable when Publish
	// would refuse any event now (a full catch-all queue, a broker that
	// cannot be reached), so that a request can be refused before it is
	// read. nil promises nothing: Publish may still refuse.
	Congested() error
}

// ConsumerGroup runs the competing consumers of a consumer role.
type ConsumerGroup interface {
	// StartConsumers starts the consumers of the role's routes. They store
	// what they take into the store the gateway was built with and run
	// until Close. Unknown roles are an error.
	StartConsumers(ctx context.Context, role string) error
}

// QueueInspector reports the queues of the topology.
type QueueInspector interface {
	// Queues reports every configured queue (route, dead-letter and
	// unrouted) with its depth and consumers.
	Queues(ctx context.Context) ([]QueueStatus, error)
}

// Pinger is a dependency that can say whether it works now.
type Pinger interface {
	// Ping returns nil when the dependency can be used now, else an error
	// wrapping ErrUnavailable (or ErrClosed) whose Public message says
	// what is wrong without the dependency's own words.
	Ping(ctx context.Context) error
}

// Gateway is a whole transport: every part above, plus the Invalid Message
// Channel and a lifecycle.
type Gateway interface {
	// Name is the canonical transport name: "inproc" or "rabbitmq".
	Name() string
	Publisher
	ConsumerGroup
	QueueInspector
	DeadLetterChannel
	Pinger
	// Close stops intake (Publish then fails with ErrClosed), lets consumers
	// finish and settle the work in hand (draining in-process queues into
	// the store), and releases the transport. ctx bounds the wait: when it
	// ends, consumers stop, and what they held is left to be delivered
	// again (redelivered by the broker, or kept in the journal).
	Close(ctx context.Context) error
}

// DeadLetterChannel gives operators the Invalid Message Channel: the
// dead-letter queues (and the unrouted queue) can be listed, read without
// removing anything, replayed to the queue each message died in, and purged.
type DeadLetterChannel interface {
	// DeadLetterQueues lists the dead-letter and unrouted queues.
	DeadLetterQueues(ctx context.Context) ([]QueueStatus, error)
	// PeekDeadLetters returns up to limit messages from the head of queue,
	// in order, leaving them in place. ErrNotFound for an unknown queue.
	PeekDeadLetters(ctx context.Context, queue string, limit int) ([]DeadLetter, error)
	// ReplayDeadLetters republishes the selected messages to the queue each
	// died in, removing each only after it is safely there.
	ReplayDeadLetters(ctx context.Context, queue string, sel Selection) (int, error)
	// PurgeDeadLetters deletes the selected messages.
	PurgeDeadLetters(ctx context.Context, queue string, sel Selection) (int, error)
}

// Selection picks dead letters: by IDs when IDs is not empty, else the
// first Limit when Limit > 0, else all.
type Selection struct {
	IDs   []string
	Limit int
	// By names who asked (an API key's label), for the replayed hop of
	// each message's history.
	By string
}

// Replayed returns m as it goes back from a dead-letter queue to queue at
// at, asked for by by: a replayed hop added to its history. m itself is
// not changed.
func Replayed(m Message, queue, by, process string, at time.Time) Message {
	m.History = m.History.Append(Hop{Hop: HopReplayed, At: at, Process: process, Queue: queue, By: by})
	return m
}
