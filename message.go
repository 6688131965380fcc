package chronicle

import "time"

// Message is what travels on a channel: an event encoded as JSON, with the
// envelope a transport needs. Its ID is the event's ID and its Type the
// event_type, which is also the routing key.
type Message struct {
	ID      string
	Type    string
	Body    []byte
	Headers map[string]string
	// Event is the decoded form when the publisher had it, so an in-process
	// consumer need not decode Body again. Consumers decode Body when nil.
	Event *Event
}

// Header names that Chronicle sets on messages.
const (
	// HeaderReason says why a message was dead-lettered (SPEC §10).
	HeaderReason = "x-chronicle-reason"
	// HeaderOriginQueue, HeaderOriginExchange and HeaderOriginRoutingKey say
	// where a dead letter was when it died.
	HeaderOriginQueue      = "x-chronicle-queue"
	HeaderOriginExchange   = "x-chronicle-exchange"
	HeaderOriginRoutingKey = "x-chronicle-routing-key"
	// HeaderDeathCount counts how many times the message died;
	// HeaderFirstDeath is when it died first (RFC 3339).
	HeaderDeathCount = "x-chronicle-death-count"
	HeaderFirstDeath = "x-chronicle-first-death"
)

// QueueKind tells what a queue is for.
type QueueKind string

const (
	QueueRoute      QueueKind = "route"
	QueueDeadLetter QueueKind = "dlq"
	QueueUnrouted   QueueKind = "unrouted"
)

// QueueStatus is what an operator sees of one queue.
type QueueStatus struct {
	Name      string    `json:"queue"`
	Kind      QueueKind `json:"kind"`
	Route     string    `json:"route,omitempty"`
	Depth     int       `json:"depth"`
	Consumers int       `json:"consumers"`
}

// DeadLetter is a message on a dead-letter (or the unrouted) queue with the
// story of its death.
type DeadLetter struct {
	ID           string    `json:"id"`
	Payload      string    `json:"payload"`
	Reason       string    `json:"reason"`
	Exchange     string    `json:"exchange"`
	RoutingKey   string    `json:"routing_key"`
	Queue        string    `json:"queue"`
	Count        int       `json:"count"`
	FirstDeathAt time.Time `json:"first_death_at"`
}
