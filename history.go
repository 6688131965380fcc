package chronicle

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// Message History (the EIP pattern): every event carries the list of hops
// it took on its way into the store, appended as it travels, so an
// investigator can tell which process accepted it, which exchange and queue
// carried it, which consumer stored it, and whether it was dead-lettered and
// replayed on the way. An event routed to several queues is stored once,
// with each route's path.

// Hop kinds, in the order an event meets them.
const (
	HopAccepted     = "accepted"      // a producer process took it from a client
	HopPublished    = "published"     // the transport routed it to its queues
	HopConsumed     = "consumed"      // a consumer took it off a queue
	HopDeadLettered = "dead_lettered" // a consumer could not process it
	HopReplayed     = "replayed"      // an operator sent it back from a dead-letter queue
	HopStored       = "stored"        // a consumer stored it
)

// Hop is one step of an event's way in. Only the details of its kind are
// set; the others are omitted from its JSON, which is kept small.
type Hop struct {
	Hop string    `json:"hop"`
	At  time.Time `json:"at"`
	// Process names the process that took the step: host:pid.
	Process string `json:"process,omitempty"`
	// RequestID and APIKey (the key's label, never the key) of an accepted
	// event.
	RequestID string `json:"request_id,omitempty"`
	APIKey    string `json:"api_key,omitempty"`
	// Transport, Exchange, RoutingKey and the Queues a published event was
	// routed to.
	Transport  string   `json:"transport,omitempty"`
	Exchange   string   `json:"exchange,omitempty"`
	RoutingKey string   `json:"routing_key,omitempty"`
	Queues     []string `json:"queues,omitempty"`
	// Queue a hop happened on: consumed from, dead-lettered from, replayed
	// to, stored from.
	Queue string `json:"queue,omitempty"`
	// Worker is the consumer (process and worker) that consumed it, and
	// Delivery how many times it had been delivered from that queue.
	Worker   string `json:"worker,omitempty"`
	Delivery int    `json:"delivery,omitempty"`
	// Reason a message was dead-lettered.
	Reason string `json:"reason,omitempty"`
	// By is who replayed it.
	By string `json:"by,omitempty"`
	// Store it was stored in and how many events its batch held.
	Store string `json:"store,omitempty"`
	Batch int    `json:"batch,omitempty"`
}

// MarshalJSON writes At with TimestampLayout.
func (h Hop) MarshalJSON() ([]byte, error) {
	type plain Hop
	return json.Marshal(struct {
		plain
		At string `json:"at"`
	}{plain(h), h.At.UTC().Format(TimestampLayout)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *Hop) UnmarshalJSON(data []byte) error {
	type plain Hop
	var aux struct {
		*plain
		At string `json:"at"`
	}
	aux.plain = (*plain)(h)
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	var err error
	h.At, err = parseTime(aux.At)
	return err
}

// History is a Message History as a JSON array of hops. It travels as
// text (in a message header, in a column), so appending a hop never
// decodes the hops before it; Hops decodes them to show them.
type History []byte

// HeaderHistory is the message header that carries a History.
const HeaderHistory = "x-chronicle-history"

// Append returns h with hop added at the end. h itself is not changed.
func (h History) Append(hop Hop) History {
	b, err := hop.MarshalJSON()
	if err != nil {
		return h // a Hop always encodes
	}
	if len(h) < 2 || h[len(h)-1] != ']' {
		return History(append(append([]byte{'['}, b...), ']'))
	}
	out := make([]byte, 0, len(h)+len(b)+1)
	out = append(out, h[:len(h)-1]...)
	if len(h) > 2 {
		out = append(out, ',')
	}
	out = append(append(out, b...), ']')
	return out
}

// Concat returns h followed by the hops of more.
func (h History) Concat(more History) History {
	switch {
	case len(more) < 3:
		return h
	case len(h) < 3:
		return slices.Clone(more)
	}
	out := make([]byte, 0, len(h)+len(more))
	out = append(out, h[:len(h)-1]...)
	out = append(out, ',')
	return append(out, more[1:]...)
}

// Hops decodes the history. Hops that several paths share (an event routed
// to two queues was accepted and published once) appear once, and hops
// are in the order they happened.
func (h History) Hops() ([]Hop, error) {
	if len(h) == 0 {
		return []Hop{}, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(h, &raw); err != nil {
		return nil, err
	}
	out := make([]Hop, 0, len(raw))
	seen := map[string]bool{}
	for _, r := range raw {
		key := string(bytes.TrimSpace(r))
		if seen[key] {
			continue
		}
		seen[key] = true
		var hop Hop
		if err := json.Unmarshal(r, &hop); err != nil {
			return nil, err
		}
		out = append(out, hop)
	}
	slices.SortStableFunc(out, func(a, b Hop) int { return a.At.Compare(b.At) })
	return out, nil
}

// HistoryOf returns the history a message carries.
func HistoryOf(m *Message) History {
	if h := m.Headers[HeaderHistory]; h != "" {
		return History(h)
	}
	return nil
}
