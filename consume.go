package chronicle

// Check is the consumer's Message Translator: it decides whether a message
// taken off a channel is a storable event. It returns the event, or the
// reason to dead-letter the message ("parse error: …", "missing field:
// …"), which the dead letter carries. The wiring injects it, so that
// transports stay ignorant of the ingestion rules.
type Check func(m *Message) (e *Event, reason string)

// Verdict is a consumer's decision on one message of a batch: store
// Event, or, when Event is nil, dead-letter the message for Reason.
type Verdict struct {
	Event  *Event
	Reason string
}

// Classify runs check on every message of a consumer's batch, in order.
func Classify(msgs []*Message, check Check) []Verdict {
	out := make([]Verdict, len(msgs))
	for i, m := range msgs {
		out[i].Event, out[i].Reason = check(m)
		if out[i].Event == nil && out[i].Reason == "" {
			out[i].Reason = "rejected by the consumer"
		}
	}
	return out
}
