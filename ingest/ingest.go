// Package ingest turns what a client sends into an audit event, as a
// Pipes and Filters chain: the body is decoded (Decode), then each Filter
// of a Pipeline normalises or validates the event in turn. The pipeline is
// data, so a deployment can add its own filter. Consumers use a Checker
// to decide whether a message taken off a channel is a storable event; it
// runs the messages that applications publish straight to the exchange
// through the same pipeline as POST /events.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
)

// Limits of an event: the stores' column widths, and bounds on what one
// event may carry.
const (
	MaxFieldLen         = 255
	MaxMetadataKeys     = 64
	MaxMetadataKeyLen   = 255
	MaxMetadataValueLen = 4096
	// MaxBodyBytes is the largest request body accepted.
	MaxBodyBytes = 1 << 20
)

// input is the client's JSON. Pointers tell a missing key from an empty
// value. Unknown keys, and a client-sent id or timestamp, are ignored.
type input struct {
	Actor         *string           `json:"actor"`
	Action        *string           `json:"action"`
	ResourceType  *string           `json:"resource_type"`
	ResourceID    *string           `json:"resource_id"`
	EventType     *string           `json:"event_type"`
	CorrelationID *string           `json:"correlation_id"`
	EntityKey     *string           `json:"entity_key"`
	OccurredAt    *string           `json:"occurred_at"`
	Metadata      map[string]string `json:"metadata"`
}

// message is input plus the envelope the server assigned, as it travels
// on a channel.
type message struct {
	input
	ID        *string `json:"id"`
	Timestamp *string `json:"timestamp"`
}

// Decode parses one event as a client sent it. Errors wrap
// chronicle.ErrInvalid and name the field: a missing required key, a
// value of the wrong JSON type, or JSON that does not parse.
func Decode(data []byte) (*chronicle.Event, error) {
	e, _, err := decode(data)
	return e, err
}

// Kinds of problem a body can have: the words a dead letter's reason
// starts with, which its metrics label keeps.
const (
	problemText     = "invalid text"
	problemParse    = "parse error"
	problemMissing  = "missing field"
	problemInvalid  = "invalid field"
	problemTooLarge = "too large"
)

// decode is Decode, also saying which kind of problem it found.
func decode(data []byte) (*chronicle.Event, string, error) {
	var in input
	if kind, err := unmarshal(data, &in); err != nil {
		return nil, kind, err
	}
	if err := nullMetadata(data, in.Metadata); err != nil {
		return nil, problemInvalid, err
	}
	e, kind, err := in.event()
	if err != nil {
		return nil, kind, err
	}
	if err := checkControl(e); err != nil {
		return nil, problemInvalid, err
	}
	return e, "", nil
}

// event builds the event in holds, or says which kind of problem stops it.
func (in *input) event() (*chronicle.Event, string, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"actor", in.Actor}, {"action", in.Action}, {"resource_type", in.ResourceType}, {"resource_id", in.ResourceID}} {
		if f.v == nil {
			return nil, problemMissing, chronicle.Errorf(chronicle.ErrInvalid, "missing required field %q", f.name)
		}
	}
	occurred, err := occurredAt(in.OccurredAt)
	if err != nil {
		return nil, problemInvalid, err
	}
	return &chronicle.Event{
		OccurredAt:    occurred,
		Actor:         *in.Actor,
		Action:        *in.Action,
		ResourceType:  *in.ResourceType,
		ResourceID:    *in.ResourceID,
		EventType:     deref(in.EventType),
		CorrelationID: deref(in.CorrelationID),
		EntityKey:     deref(in.EntityKey),
		Metadata:      in.Metadata,
	}, "", nil
}

// occurredAt reads occurred_at: an RFC 3339 time with any offset, kept in
// UTC to the microsecond. Absent or null, it is unset.
func occurredAt(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*s))
	if err != nil {
		return time.Time{}, chronicle.Errorf(chronicle.ErrInvalid, "field %q must be an RFC 3339 time such as 2026-01-02T15:04:05.123456+01:00, not %q", "occurred_at", *s)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// nullMetadata refuses a null metadata value, which decoding into strings
// turns into "" without a word, like any other value that is not a
// string. Only a body that holds "null" at all is looked at again.
func nullMetadata(data []byte, md map[string]string) error {
	if len(md) == 0 || !bytes.Contains(data, []byte("null")) {
		return nil
	}
	var aux struct {
		Metadata map[string]*string `json:"metadata"`
	}
	if json.Unmarshal(data, &aux) != nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(aux.Metadata)) {
		if aux.Metadata[k] == nil {
			return chronicle.Errorf(chronicle.ErrInvalid, "field %q must be a string, not null: metadata values are strings", "metadata."+k)
		}
	}
	return nil
}

// unmarshal decodes data into v, naming the field at fault; on failure it
// also says which kind of problem it is: text that is not UTF-8, or JSON
// that does not parse into v.
func unmarshal(data []byte, v any) (string, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return problemParse, chronicle.Errorf(chronicle.ErrInvalid, "request body is empty: expected a JSON object")
	}
	if err := CheckUTF8(data); err != nil {
		return problemText, err
	}
	if data[0] != '{' {
		if json.Valid(data) {
			return problemParse, chronicle.Errorf(chronicle.ErrInvalid, "request body must be a JSON object")
		}
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return "", nil
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && strings.HasPrefix(typeErr.Field, "metadata."):
		err = chronicle.Errorf(chronicle.ErrInvalid, "field %q must be a string: metadata values are strings", typeErr.Field)
	case errors.As(err, &typeErr) && typeErr.Field == "metadata":
		err = metadataError(data)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		err = chronicle.Errorf(chronicle.ErrInvalid, "field %q must be a string, not %s", typeErr.Field, typeErr.Value)
	case errors.As(err, &typeErr):
		err = chronicle.Errorf(chronicle.ErrInvalid, "request body must be a JSON object")
	case errors.As(err, &syntaxErr):
		err = chronicle.Errorf(chronicle.ErrInvalid, "invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	default:
		err = chronicle.Errorf(chronicle.ErrInvalid, "invalid JSON: %v", err)
	}
	return problemParse, err
}

// metadataError names the metadata value that is not a string. It runs
// only on the error path: the fast path decodes straight into strings.
func metadataError(data []byte) error {
	var aux struct {
		Metadata any `json:"metadata"`
	}
	if json.Unmarshal(data, &aux) == nil {
		if m, ok := aux.Metadata.(map[string]any); ok {
			keys := slices.Sorted(maps.Keys(m))
			for _, k := range keys {
				if _, ok := m[k].(string); !ok {
					return chronicle.Errorf(chronicle.ErrInvalid, "field %q must be a string, not %s: metadata values are strings", "metadata."+k, jsonKind(m[k]))
				}
			}
		}
	}
	return chronicle.Errorf(chronicle.ErrInvalid, "field \"metadata\" must be an object of strings")
}

func jsonKind(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return "null"
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Filter is one stage of the ingestion pipeline. It normalises e in place
// or rejects it with a *chronicle.ValidationError.
type Filter func(e *chronicle.Event) error

// Pipeline is an ordered list of filters.
type Pipeline []Filter

// Process runs e through every filter, stopping at the first error.
func (p Pipeline) Process(e *chronicle.Event) error {
	for _, f := range p {
		if err := f(e); err != nil {
			return err
		}
	}
	return nil
}

// Stamper gives an event its identity: a time-ordered ID and the receive
// time. Tests replace the clock.
type Stamper struct {
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Stamp assigns e a UUIDv7 ID and the current time, truncated to the
// microsecond that is stored and shown. An ID or a time e already has is
// kept: Decode never sets them, but the envelope of a foreign AMQP
// message gives the ID, and may give the time (see Checker).
func (s Stamper) Stamp(e *chronicle.Event) error {
	if e.Timestamp.IsZero() {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		e.Timestamp = now().UTC().Truncate(time.Microsecond)
	}
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new event id: %w", err)
		}
		e.ID = id.String()
	}
	return nil
}

// DefaultPipeline is the ingestion pipeline, in order: stamp, trim, require
// actor/action/resource_type, check limits, check occurred_at against its
// bounds, lower-case the actor, derive or check event_type, add a
// correlation_id.
func DefaultPipeline(s Stamper, b TimeBounds) Pipeline {
	return Pipeline{s.Stamp, Trim, Require, CheckLimits, b.Check, LowerActor, EventType, CorrelationID}
}

// Defaults of TimeBounds.
const (
	DefaultMaxFuture = 5 * time.Minute
	DefaultMaxPast   = 30 * 24 * time.Hour
)

// TimeBounds bounds occurred_at around the time an event is received: a
// producer's clock may run a little ahead, and an event may arrive late,
// but not by days or years.
type TimeBounds struct {
	// MaxFuture is how far after its receipt an event may say it
	// occurred. Defaults to DefaultMaxFuture.
	MaxFuture time.Duration
	// MaxPast is how long before its receipt an event may say it
	// occurred. Defaults to DefaultMaxPast.
	MaxPast time.Duration
}

// Check refuses an occurred_at outside the bounds around e.Timestamp (the
// receive time, stamped before it runs).
func (b TimeBounds) Check(e *chronicle.Event) error {
	if e.OccurredAt.IsZero() {
		return nil
	}
	future, past := b.MaxFuture, b.MaxPast
	if future <= 0 {
		future = DefaultMaxFuture
	}
	if past <= 0 {
		past = DefaultMaxPast
	}
	switch d := e.OccurredAt.Sub(e.Timestamp); {
	case d > future:
		return invalid("occurred_at", fmt.Sprintf("occurred_at is %s after the time the event was received; at most %s is allowed", span(d), span(future)))
	case -d > past:
		return invalid("occurred_at", fmt.Sprintf("occurred_at is %s before the time the event was received; at most %s is allowed", span(-d), span(past)))
	}
	return nil
}

// span writes a duration for people: in days when it is days long.
func span(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}

// Trim removes surrounding white space from every string field.
func Trim(e *chronicle.Event) error {
	e.Actor = strings.TrimSpace(e.Actor)
	e.Action = strings.TrimSpace(e.Action)
	e.ResourceType = strings.TrimSpace(e.ResourceType)
	e.ResourceID = strings.TrimSpace(e.ResourceID)
	e.EventType = strings.TrimSpace(e.EventType)
	e.CorrelationID = strings.TrimSpace(e.CorrelationID)
	e.EntityKey = strings.TrimSpace(e.EntityKey)
	return nil
}

// Require rejects an empty actor, action or resource_type with the reasons
// the original system gave ("actor is required").
func Require(e *chronicle.Event) error {
	switch {
	case e.Actor == "":
		return invalid("actor", "actor is required")
	case e.Action == "":
		return invalid("action", "action is required")
	case e.ResourceType == "":
		return invalid("resource_type", "resource_type is required")
	}
	return nil
}

// CheckLimits rejects fields longer than the store keeps, and oversized
// metadata, naming the field.
func CheckLimits(e *chronicle.Event) error {
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"action", e.Action}, {"resource_type", e.ResourceType},
		{"resource_id", e.ResourceID}, {"event_type", e.EventType},
		{"correlation_id", e.CorrelationID}, {"entity_key", e.EntityKey},
	} {
		if len(f.v) > MaxFieldLen && utf8.RuneCountInString(f.v) > MaxFieldLen {
			return invalid(f.name, fmt.Sprintf("%s is longer than %d characters", f.name, MaxFieldLen))
		}
	}
	if len(e.Metadata) > MaxMetadataKeys {
		return invalid("metadata", fmt.Sprintf("metadata has %d keys, more than %d", len(e.Metadata), MaxMetadataKeys))
	}
	for k, v := range e.Metadata {
		if k == "" {
			return invalid("metadata", "metadata keys must not be empty")
		}
		if len(k) > MaxMetadataKeyLen && utf8.RuneCountInString(k) > MaxMetadataKeyLen {
			return invalid("metadata", fmt.Sprintf("metadata key %.40q… is longer than %d characters", k, MaxMetadataKeyLen))
		}
		if len(v) > MaxMetadataValueLen && utf8.RuneCountInString(v) > MaxMetadataValueLen {
			return invalid("metadata", fmt.Sprintf("metadata value of %q is longer than %d characters", k, MaxMetadataValueLen))
		}
	}
	return nil
}

// LowerActor lower-cases the actor, so alice@ACME.com and alice@acme.com
// are the same actor.
func LowerActor(e *chronicle.Event) error {
	e.Actor = strings.ToLower(e.Actor)
	return nil
}

// EventType derives event_type as resource_type.action, lower-cased, with
// characters outside [a-z0-9_-] replaced by "_", when the client sent
// none; an explicit one is lower-cased and must be a valid routing key:
// words of [a-z0-9_-] separated by single dots.
func EventType(e *chronicle.Event) error {
	if e.EventType == "" {
		e.EventType = keyWord(e.ResourceType) + "." + keyWord(e.Action)
	} else {
		e.EventType = strings.ToLower(e.EventType)
		if !ValidEventType(e.EventType) {
			return invalid("event_type", "event_type must be lower-case words of a-z, 0-9, _ and - separated by single dots")
		}
	}
	if utf8.RuneCountInString(e.EventType) > MaxFieldLen {
		return invalid("event_type", fmt.Sprintf("event_type is longer than %d characters", MaxFieldLen))
	}
	return nil
}

// CorrelationID adds a correlation_id when the client sent none. It is a
// time-ordered UUIDv7: the stores index correlation_id, and ordered keys
// append to the index instead of dirtying a random page per event.
func CorrelationID(e *chronicle.Event) error {
	if e.CorrelationID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new correlation id: %w", err)
		}
		e.CorrelationID = id.String()
	}
	return nil
}

// ValidEventType reports whether s is words of [a-z0-9_-] separated by
// single dots: a routing key every exchange type routes predictably.
func ValidEventType(s string) bool {
	if s == "" {
		return false
	}
	word := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if word == 0 {
				return false
			}
			word = 0
		case isKeyChar(c):
			word++
		default:
			return false
		}
	}
	return word > 0
}

func isKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// keyWord makes one routing-key word of s.
func keyWord(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < utf8.RuneSelf && isKeyChar(byte(r)) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func invalid(field, reason string) error {
	return &chronicle.ValidationError{Field: field, Reason: reason}
}
