package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
)

// Checker is the consumers' Message Translator: its Check is the
// chronicle.Check that decides whether a message taken off a channel is a
// storable event, and if not, why.
//
// A message Chronicle published (chronicle.Message.Foreign says which)
// carries an event this pipeline already built: it is taken as it is,
// decoded once when it travelled as bytes, and checked again without
// being changed. A foreign message, which an application published
// straight to the exchange, goes through Pipeline exactly as the body of
// POST /events does, its envelope standing in for the request:
//
//   - its id is the AMQP message_id, which must be a UUID, so that the
//     copies the exchange routes to several queues store one event;
//   - its timestamp (received_at) is the AMQP timestamp property when
//     present, else the time the first consumer to store it accepted it;
//   - its event_type is the routing key it was published with; an
//     event_type in the body must be the same;
//   - its correlation_id, when the body has none, is its id, as an HTTP
//     event's is the request's.
//
// The reason a message is refused for is what its dead letter carries in
// x-chronicle-reason: "parse error: …", "missing field: \"actor\"",
// "invalid field: actor is required", "missing message_id: …", and so on.
type Checker struct {
	// Pipeline is the ingestion pipeline foreign messages go through:
	// the HTTP API's. Defaults to DefaultPipeline(Stamper{Now: Now},
	// TimeBounds{MaxFuture: MaxFuture}).
	Pipeline Pipeline
	// MaxFuture is how far after this consumer's clock a foreign
	// message's AMQP timestamp may be: a producer's clock may run a
	// little ahead. Defaults to DefaultMaxFuture.
	MaxFuture time.Duration
	// Now is this consumer's clock. Defaults to time.Now.
	Now func() time.Time
}

// Check is Checker{}.Check: the default pipeline and bounds.
func Check(msg *chronicle.Message) (*chronicle.Event, string) {
	return Checker{}.Check(msg)
}

// Check implements chronicle.Check.
func (c Checker) Check(msg *chronicle.Message) (*chronicle.Event, string) {
	switch {
	case msg.Event != nil:
		return msg.Event, ""
	case msg.Foreign():
		return c.foreign(msg)
	}
	return CheckBody(msg.Body)
}

// CheckBody checks the body of a message Chronicle published: an event
// as the pipeline built it and the transport encoded it, with the id and
// timestamp the server assigned.
func CheckBody(body []byte) (*chronicle.Event, string) {
	var m message
	if kind, err := unmarshal(body, &m); err != nil {
		return nil, reason(kind, err)
	}
	if err := nullMetadata(body, m.Metadata); err != nil {
		return nil, reason(problemInvalid, err)
	}
	e, kind, err := m.event()
	if err != nil {
		return nil, reason(kind, err)
	}
	switch {
	case m.ID == nil || *m.ID == "":
		return nil, `missing field: "id"`
	case uuid.Validate(*m.ID) != nil:
		return nil, `invalid field: "id" is not a UUID`
	case m.Timestamp == nil:
		return nil, `missing field: "timestamp"`
	}
	ts, err := time.Parse(time.RFC3339Nano, *m.Timestamp)
	if err != nil {
		return nil, `invalid field: "timestamp" is not an RFC 3339 time`
	}
	e.ID, e.Timestamp = *m.ID, ts.UTC()
	if reason := Validate(e); reason != "" {
		return nil, reason
	}
	return e, ""
}

// Validate runs the checks of the pipeline that do not change an event,
// for events that come from a channel rather than a client. It returns the
// dead-letter reason, or "" when e is storable.
func Validate(e *chronicle.Event) string {
	if err := checkControl(e); err != nil {
		return reason(problemInvalid, err)
	}
	for _, f := range []Filter{Require, CheckLimits} {
		if err := f(e); err != nil {
			return reason(problemInvalid, err)
		}
	}
	if !ValidEventType(e.EventType) {
		return "invalid field: event_type must be lower-case words of a-z, 0-9, _ and - separated by single dots"
	}
	if strings.TrimSpace(e.Actor) != e.Actor || strings.ToLower(e.Actor) != e.Actor {
		return "invalid field: actor is not normalised (trimmed, lower-case)"
	}
	return ""
}

// foreign runs a foreign message through the pipeline, its envelope
// giving the id, the time and the event_type (see Checker). The first
// problem found is the reason: the body's, as HTTP would name it, then
// the envelope's, then the pipeline's.
func (c Checker) foreign(msg *chronicle.Message) (*chronicle.Event, string) {
	if len(msg.Body) > MaxBodyBytes {
		return nil, fmt.Sprintf("%s: the body is %d bytes; at most %d are allowed", problemTooLarge, len(msg.Body), MaxBodyBytes)
	}
	e, kind, err := decode(msg.Body)
	if err != nil {
		return nil, reason(kind, err)
	}
	id, why := eventID(msg.ProducerID())
	if why != "" {
		return nil, why
	}
	e.ID = id
	if !msg.Timestamp.IsZero() {
		now, maxFuture := time.Now, DefaultMaxFuture
		if c.Now != nil {
			now = c.Now
		}
		if c.MaxFuture > 0 {
			maxFuture = c.MaxFuture
		}
		ts := msg.Timestamp.UTC().Truncate(time.Microsecond)
		if ahead := ts.Sub(now()); ahead > maxFuture {
			return nil, fmt.Sprintf("invalid timestamp: the AMQP timestamp %s is %s after this consumer's clock; at most %s is allowed (it counts seconds since 1970, not milliseconds)",
				ts.Format(time.RFC3339), span(ahead), span(maxFuture))
		}
		e.Timestamp = ts
	}
	if e.CorrelationID == "" {
		// The same for every route's copy, as the request id is over HTTP.
		e.CorrelationID = e.ID
	}
	keyed := e.EventType == ""
	if keyed {
		e.EventType = msg.Type
	}
	p := c.Pipeline
	if p == nil {
		p = DefaultPipeline(Stamper{Now: c.Now}, TimeBounds{MaxFuture: c.MaxFuture})
	}
	if err := p.Process(e); err != nil {
		var ve *chronicle.ValidationError
		if keyed && errors.As(err, &ve) && ve.Field == "event_type" {
			return nil, routingKeyReason(msg.Type)
		}
		return nil, reason(problemInvalid, err)
	}
	// The exchange routed the message by its key: an event_type of
	// another type would sit in the wrong datatype channels.
	switch {
	case e.EventType == msg.Type:
		return e, ""
	case keyed:
		return nil, routingKeyReason(msg.Type)
	default:
		return nil, fmt.Sprintf("%s: event_type %q differs from the routing key %.64q it was published with; leave event_type out, or send the same", problemInvalid, e.EventType, msg.Type)
	}
}

// eventID reads a foreign message's id, its AMQP message_id: a UUID of
// any version in its usual 8-4-4-4-12 form, in either case, kept in lower
// case. The nil and max UUIDs are refused: a producer that sends one
// sends it for every event, and all but its first would be taken for
// copies.
func eventID(messageID string) (string, string) {
	if messageID == "" {
		return "", "missing message_id: AMQP message_id is required: it is the event's id, so that the copies routed to several queues store one event"
	}
	u, err := uuid.Parse(messageID)
	if err != nil || len(messageID) != 36 {
		return "", fmt.Sprintf("invalid message_id: AMQP message_id %.64q is not a UUID: it is the event's id, and event ids are UUIDs such as 0190c6d2-8a41-7c3e-9f1a-2b6d5e4f3a21", messageID)
	}
	if u == uuid.Nil || u == uuid.Max {
		return "", fmt.Sprintf("invalid message_id: AMQP message_id %s is not unique to an event: it is the event's id", messageID)
	}
	return u.String(), ""
}

func routingKeyReason(key string) string {
	if key == "" {
		return "invalid routing key: the message has no routing key to take its event_type from: publish it to the exchange with its event_type, such as security.login, as routing key"
	}
	return fmt.Sprintf("invalid routing key: the routing key %.64q is the event's event_type, which must be lower-case words of a-z, 0-9, _ and - separated by single dots", key)
}

// reason is a dead letter's reason for err, a problem of kind: the kind,
// then the words a client would read over HTTP.
func reason(kind string, err error) string {
	msg := chronicle.Public(err)
	if msg == "" {
		msg = err.Error()
	}
	if kind == problemMissing {
		msg = strings.TrimPrefix(msg, "missing required field ")
	}
	return kind + ": " + msg
}
