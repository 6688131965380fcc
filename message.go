package chronicle

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// Message is what travels on a channel: an event encoded as JSON, with the
// envelope a transport needs. Its ID is the event's ID and its Type the
// event_type, which is also the routing key it was published with.
//
// Most messages are Chronicle's: its Publisher sent them, and their body
// is an event the ingestion pipeline built. A foreign message (see
// Foreign) was published straight to the exchange by an application that
// speaks AMQP: its body is an event as a client POSTs it to /events, and
// its envelope carries the rest (ID, Timestamp, Type).
type Message struct {
	ID      string
	Type    string
	Body    []byte
	Headers map[string]string
	// Timestamp is when the producer says it published the message (the
	// AMQP timestamp property, whole seconds); zero when it did not say.
	// A foreign message's is its event's timestamp (received_at).
	Timestamp time.Time
	// Event is the decoded form when the publisher had it, so an in-process
	// consumer need not decode Body again. Consumers decode Body when nil.
	// It may be shared by the copies of the message on several queues:
	// consumers do not change it.
	Event *Event
	// Deliveries counts the times the message has been delivered from its
	// queue, this time included (1 the first time), where the transport
	// knows it.
	Deliveries int
	// History is the Message History the message carries (on RabbitMQ,
	// in the header HeaderHistory; in process, in the journal).
	History History
}

// Foreign reports whether m is a foreign message rather than one that
// Chronicle published. This is the one place that rule is written: a
// message is Chronicle's when it carries the event Chronicle's publisher
// built, or a Message History with the published hop that only
// Chronicle's transports add (the history travels with the message
// through dead-letter queues, replays, restarts and the journal). A
// foreign producer's message has neither, however often it is
// dead-lettered and replayed: consumers run it through the ingestion
// pipeline.
func (m *Message) Foreign() bool { return m.Event == nil && !m.History.Published() }

// ProducerID is the id m's producer gave it: its ID, unless Kill made that
// up because the producer gave none. A foreign message's ProducerID is
// its event's id; one made up for a dead letter never is, or each route's
// dead letter would be stored as an event of its own.
func (m *Message) ProducerID() string {
	if m.Headers[HeaderMadeUpID] != "" {
		return ""
	}
	return m.ID
}

// Header names that Chronicle sets on messages.
const (
	// HeaderReason says why a message was dead-lettered.
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
	// HeaderMadeUpID marks a dead letter whose ID Kill made up, its
	// producer having given none.
	HeaderMadeUpID = "x-chronicle-made-up-id"
)

// Death is one death of a message: why it could not be processed and
// where it was. Empty fields leave what an earlier death recorded: a
// replayed message that dies again keeps the exchange and routing key it
// was first published with.
type Death struct {
	Reason     string
	Queue      string
	Exchange   string
	RoutingKey string
	At         time.Time
	// History is the message's history up to its death (with the hop of
	// the consumer that gave up on it); nil: the history it carries.
	History History
	// Process is the process in which it died, for its history.
	Process string
}

// Kill returns m as it sits on a dead-letter queue: the death recorded in
// its headers (the reason and origin of this death, the count raised, the
// first death's time kept, a dead_lettered hop in its history) and an ID,
// made up (and marked so with HeaderMadeUpID) when the producer gave none,
// so that every dead letter can be named in a replay or a purge. m itself
// is not changed.
func Kill(m Message, d Death) Message {
	h := make(map[string]string, len(m.Headers)+7)
	maps.Copy(h, m.Headers)
	h[HeaderReason] = d.Reason
	for k, v := range map[string]string{HeaderOriginQueue: d.Queue, HeaderOriginExchange: d.Exchange, HeaderOriginRoutingKey: d.RoutingKey} {
		if v != "" {
			h[k] = v
		}
	}
	n, _ := strconv.Atoi(h[HeaderDeathCount])
	h[HeaderDeathCount] = strconv.Itoa(n + 1)
	if h[HeaderFirstDeath] == "" {
		h[HeaderFirstDeath] = d.At.UTC().Format(time.RFC3339Nano)
	}
	history := d.History
	if history == nil {
		history = m.History
	}
	m.History = history.Append(Hop{Hop: HopDeadLettered, At: d.At, Process: d.Process, Queue: d.Queue, Reason: d.Reason})
	m.Headers = h
	m.Event = nil
	if m.ID == "" {
		m.ID = NewMessageID()
		h[HeaderMadeUpID] = "true"
	}
	return m
}

// DeadLetterOf reads a dead letter's story from the headers Kill wrote.
func DeadLetterOf(m Message) DeadLetter {
	h := m.Headers
	d := DeadLetter{
		ID:         m.ID,
		Payload:    string(m.Body),
		Reason:     h[HeaderReason],
		Exchange:   h[HeaderOriginExchange],
		RoutingKey: h[HeaderOriginRoutingKey],
		Queue:      h[HeaderOriginQueue],
	}
	d.Count, _ = strconv.Atoi(h[HeaderDeathCount])
	d.FirstDeathAt, _ = time.Parse(time.RFC3339Nano, h[HeaderFirstDeath])
	return d
}

// NewMessageID returns a random UUID (version 4), for messages that
// arrived without an id.
func NewMessageID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

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

// MarshalJSON writes FirstDeathAt with TimestampLayout, like every time
// the API writes.
func (d DeadLetter) MarshalJSON() ([]byte, error) {
	type plain DeadLetter // no methods: avoids recursion
	return json.Marshal(struct {
		plain
		FirstDeathAt string `json:"first_death_at"`
	}{plain: plain(d), FirstDeathAt: d.FirstDeathAt.UTC().Format(TimestampLayout)})
}
