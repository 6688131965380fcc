package chronicle

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
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
// set; the others are omitted from its JSON.
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
	// Worker is the consumer worker (its number among the queue's workers
	// in its process) that consumed it, and Delivery how many times it had
	// been delivered from that queue.
	Worker   string `json:"worker,omitempty"`
	Delivery int    `json:"delivery,omitempty"`
	// Reason a message was dead-lettered.
	Reason string `json:"reason,omitempty"`
	// By is who replayed it.
	By string `json:"by,omitempty"`
	// Store it was stored in and how many events its batch held.
	Store string `json:"store,omitempty"`
	Batch int    `json:"batch,omitempty"`
	// Clock says, on the accepted hop of a message that a producer
	// published straight to the broker, whose clock set the event's
	// timestamp: ClockAMQP or ClockConsumer. Unset on events that came
	// through the HTTP API.
	Clock string `json:"clock,omitempty"`
}

// Values of Hop.Clock.
const (
	// ClockAMQP: the message's AMQP timestamp property, the producer's
	// clock.
	ClockAMQP = "amqp"
	// ClockConsumer: the message had no timestamp; the consumer that
	// accepted it (the hop's process) stamped it with its own clock.
	ClockConsumer = "consumer"
)

// hopJSON is Hop as the API writes it: hop and at first.
type hopJSON struct {
	Hop        string   `json:"hop"`
	At         string   `json:"at"`
	Process    string   `json:"process,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
	APIKey     string   `json:"api_key,omitempty"`
	Transport  string   `json:"transport,omitempty"`
	Exchange   string   `json:"exchange,omitempty"`
	RoutingKey string   `json:"routing_key,omitempty"`
	Queues     []string `json:"queues,omitempty"`
	Queue      string   `json:"queue,omitempty"`
	Worker     string   `json:"worker,omitempty"`
	Delivery   int      `json:"delivery,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	By         string   `json:"by,omitempty"`
	Store      string   `json:"store,omitempty"`
	Batch      int      `json:"batch,omitempty"`
	Clock      string   `json:"clock,omitempty"`
}

// MarshalJSON writes At with TimestampLayout and leaves out the details
// that are not set.
func (h Hop) MarshalJSON() ([]byte, error) {
	return json.Marshal(hopJSON{Hop: h.Hop, At: h.At.UTC().Format(TimestampLayout), Process: h.Process,
		RequestID: h.RequestID, APIKey: h.APIKey, Transport: h.Transport, Exchange: h.Exchange, RoutingKey: h.RoutingKey,
		Queues: h.Queues, Queue: h.Queue, Worker: h.Worker, Delivery: h.Delivery, Reason: h.Reason, By: h.By,
		Store: h.Store, Batch: h.Batch, Clock: h.Clock})
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

// History is a Message History as it travels and is stored: a compact JSON
// array, appended to as text (a hop is added without decoding the ones
// before it). Every event carries one on each message and each stored
// path, so its form is small: short keys (below), and times in
// microseconds, the first hop of each path absolute ("T", since the Unix
// epoch) and the others relative to it ("t"). Hops decodes it.
//
//	h hop kind: a accepted, p published, c consumed, d dead_lettered,
//	  r replayed, s stored
//	T, t time; pr process; rq request id; ak API key label; tr transport;
//	x exchange; rk routing key; qs queues; q queue; w worker; n delivery;
//	why reason; by who replayed; st store; b batch; ck clock
type History []byte

// HeaderHistory is the message header that carries a History where
// messages have headers (RabbitMQ).
const HeaderHistory = "x-chronicle-history"

var (
	hopCodes = map[string]string{HopAccepted: "a", HopPublished: "p", HopConsumed: "c",
		HopDeadLettered: "d", HopReplayed: "r", HopStored: "s"}
	hopKinds = map[string]string{"a": HopAccepted, "p": HopPublished, "c": HopConsumed,
		"d": HopDeadLettered, "r": HopReplayed, "s": HopStored}
)

// Append returns h with hop added at the end. h itself is not changed.
func (h History) Append(hop Hop) History { return h.AppendHops(hop) }

// AppendHops returns h with hops added at the end, in one allocation.
func (h History) AppendHops(hops ...Hop) History {
	out := make([]byte, 0, len(h)+96*len(hops))
	base, hasBase := h.base()
	if len(h) < 2 || h[len(h)-1] != ']' {
		out = append(out, '[')
	} else {
		out = append(out, h[:len(h)-1]...)
		if len(h) > 2 {
			out = append(out, ',')
		}
	}
	for i, hop := range hops {
		if i > 0 {
			out = append(out, ',')
		}
		at := hop.At.UnixMicro()
		if !hasBase {
			base, hasBase = at, true
			out = hop.appendCompact(out, "T", at)
		} else {
			out = hop.appendCompact(out, "t", at-base)
		}
	}
	return append(out, ']')
}

// publishedMark is how a published hop starts in History's form. A JSON
// string escapes its quotes, so no detail's text can hold it.
var publishedMark = []byte(`{"h":"p"`)

// Published reports whether h holds a published hop, which only
// Chronicle's transports add, without decoding it.
func (h History) Published() bool { return bytes.Contains(h, publishedMark) }

// base is the absolute time the last path of h started at.
func (h History) base() (int64, bool) {
	i := bytes.LastIndex(h, []byte(`"T":`))
	if i < 0 {
		return 0, false
	}
	rest := h[i+4:]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

// appendCompact writes hop in History's form, its time under key.
func (h Hop) appendCompact(b []byte, key string, at int64) []byte {
	b = append(b, `{"h":`...)
	b = appendString(b, hopCodes[h.Hop])
	b = strconv.AppendInt(append(append(append(b, ',', '"'), key...), '"', ':'), at, 10)
	for _, f := range [...]struct{ name, v string }{
		{"pr", h.Process}, {"rq", h.RequestID}, {"ak", h.APIKey},
		{"tr", h.Transport}, {"x", h.Exchange}, {"rk", h.RoutingKey},
	} {
		b = appendField(b, f.name, f.v)
	}
	if len(h.Queues) > 0 {
		b = append(b, `,"qs":[`...)
		for i, q := range h.Queues {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, q)
		}
		b = append(b, ']')
	}
	b = appendField(b, "q", h.Queue)
	b = appendField(b, "w", h.Worker)
	if h.Delivery != 0 {
		b = strconv.AppendInt(append(b, `,"n":`...), int64(h.Delivery), 10)
	}
	b = appendField(b, "why", h.Reason)
	b = appendField(b, "by", h.By)
	b = appendField(b, "st", h.Store)
	if h.Batch != 0 {
		b = strconv.AppendInt(append(b, `,"b":`...), int64(h.Batch), 10)
	}
	b = appendField(b, "ck", h.Clock)
	return append(b, '}')
}

func appendField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), name...), '"', ':')
	return appendString(b, v)
}

// appendString appends s as a JSON string: as it is when it needs no
// escape (the common case: names, ids, queues), else as encoding/json
// writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// compactHop is one element of a History as it is decoded.
type compactHop struct {
	H   string   `json:"h"`
	Abs *int64   `json:"T"`
	Rel int64    `json:"t"`
	Pr  string   `json:"pr"`
	Rq  string   `json:"rq"`
	Ak  string   `json:"ak"`
	Tr  string   `json:"tr"`
	X   string   `json:"x"`
	Rk  string   `json:"rk"`
	Qs  []string `json:"qs"`
	Q   string   `json:"q"`
	W   string   `json:"w"`
	N   int      `json:"n"`
	Why string   `json:"why"`
	By  string   `json:"by"`
	St  string   `json:"st"`
	B   int      `json:"b"`
	Ck  string   `json:"ck"`
}

// Concat returns h followed by the hops of more (another path).
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

// consumedMark is how a consumed hop starts in History's form.
var consumedMark = []byte(`{"h":"c"`)

// Branch returns the hops of h, a path, that follow the trunk it shares
// with first, the path stored with the event: every route's copy of an
// event was accepted and published once, so a second route's path
// repeats its first hops. A store keeps the first path whole and the
// others as branches, half their size; JoinPaths puts them back. h is
// returned whole when it shares no trunk with first.
func (h History) Branch(first History) History {
	trunk, branch := h.Split()
	if trunk == nil || !bytes.HasPrefix(first, trunk) {
		return h
	}
	return branch
}

// Split returns the trunk of h, a path (its text up to its first consumed
// hop), and the branch that follows it (see Branch); trunk is nil when h
// has none.
func (h History) Split() (trunk, branch History) {
	i := bytes.Index(h, consumedMark)
	if i <= 1 {
		return nil, h
	}
	branch = make([]byte, 0, len(h)-i+1)
	branch = append(branch, '[')
	return h[:i], append(branch, h[i:]...)
}

// JoinPaths returns the history of an event from the path stored with it
// and its others, whole paths or branches (see Branch). A branch's times
// count from first's start, so branches follow first directly.
func JoinPaths(first History, others []History) History {
	h := first
	for _, whole := range []bool{false, true} {
		for _, o := range others {
			if o.whole() == whole {
				h = h.Concat(o)
			}
		}
	}
	return h
}

// whole reports whether h starts with an absolute time, as every path
// does and a branch does not.
func (h History) whole() bool {
	end := bytes.IndexByte(h, '}')
	return end >= 0 && bytes.Contains(h[:end], []byte(`"T":`))
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
	var consumed Hop // the last consumed hop: a stored hop's process and queue
	var base int64
	for _, r := range raw {
		var c compactHop
		if err := json.Unmarshal(r, &c); err != nil {
			return nil, err
		}
		at := base + c.Rel
		if c.Abs != nil {
			base, at = *c.Abs, *c.Abs
		}
		hop := Hop{Hop: hopKinds[c.H], At: time.UnixMicro(at).UTC(), Process: c.Pr, RequestID: c.Rq, APIKey: c.Ak,
			Transport: c.Tr, Exchange: c.X, RoutingKey: c.Rk, Queues: c.Qs, Queue: c.Q, Worker: c.W, Delivery: c.N,
			Reason: c.Why, By: c.By, Store: c.St, Batch: c.B, Clock: c.Ck}
		switch hop.Hop {
		case HopConsumed:
			consumed = hop
		case HopStored:
			hop.Process = cmp.Or(hop.Process, consumed.Process)
			hop.Queue = cmp.Or(hop.Queue, consumed.Queue)
		}
		key, _ := hop.MarshalJSON()
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		out = append(out, hop)
	}
	slices.SortStableFunc(out, func(a, b Hop) int { return a.At.Compare(b.At) })
	return out, nil
}
