package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// The consumer's clock in these tests.
var consumerNow = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func foreignChecker() Checker {
	now := func() time.Time { return consumerNow }
	return Checker{Pipeline: DefaultPipeline(Stamper{Now: now}, TimeBounds{MaxFuture: 5 * time.Minute, MaxPast: 48 * time.Hour}),
		MaxFuture: 5 * time.Minute, Now: now}
}

const foreignID = "0190C6D2-8A41-7C3E-9F1A-2B6D5E4F3A21" // any case; kept in lower case

// A foreign message: the body a client POSTs, the id, time and event_type
// from the envelope, then the HTTP pipeline (trim, lower-case the actor,
// correlate).
func TestCheckForeign(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 1, 2, 4, 0, 0, 0, time.FixedZone("x", 3600)) // 03:00Z
	body := `{"actor":"  Alice@Example.com ","action":"login","resource_type":"auth","resource_id":"s-1","occurred_at":"2026-01-02T02:59:00Z","id":"ignored","timestamp":"ignored"}`
	for _, tt := range []struct {
		name      string
		msg       chronicle.Message
		timestamp time.Time
		clock     string
	}{
		{"OKAMQPTimestamp", chronicle.Message{ID: foreignID, Type: "security.login", Body: []byte(body), Timestamp: published}, published.UTC(), chronicle.ClockAMQP},
		{"OKConsumerClock", chronicle.Message{ID: foreignID, Type: "security.login", Body: []byte(body)}, consumerNow.Truncate(time.Microsecond), chronicle.ClockConsumer},
		{"OKSameEventType", chronicle.Message{ID: foreignID, Type: "security.login", Body: []byte(strings.Replace(body, `"action"`, `"event_type":" Security.Login ","action"`, 1))}, consumerNow.Truncate(time.Microsecond), chronicle.ClockConsumer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !tt.msg.Foreign() {
				t.Fatal("a message without Chronicle's history is not foreign")
			}
			e, reason := foreignChecker().Check(&tt.msg)
			if reason != "" {
				t.Fatalf("refused: %s", reason)
			}
			want := chronicle.Event{ID: strings.ToLower(foreignID), Actor: "alice@example.com", Action: "login", ResourceType: "auth",
				ResourceID: "s-1", Timestamp: tt.timestamp, OccurredAt: time.Date(2026, 1, 2, 2, 59, 0, 0, time.UTC),
				EventType: "security.login", CorrelationID: strings.ToLower(foreignID)}
			g, _ := e.MarshalJSON()
			w, _ := want.MarshalJSON()
			if string(g) != string(w) {
				t.Fatalf("event\n got %s\nwant %s", g, w)
			}
			// What a consumer accepted from outside is a Chronicle event
			// like any other.
			if _, reason := CheckBody(g); reason != "" {
				t.Fatalf("CheckBody refuses the event: %s", reason)
			}
		})
	}
}

// A foreign message is refused for the reason HTTP gives its body, or for
// what its envelope lacks; the reason starts with a few words that the
// metrics count by.
func TestCheckForeignRefused(t *testing.T) {
	t.Parallel()
	ok := `{"actor":"a","action":"login","resource_type":"auth","resource_id":"r"}`
	msg := func(id, key, body string) chronicle.Message {
		return chronicle.Message{ID: id, Type: key, Body: []byte(body)}
	}
	madeUp := chronicle.Kill(msg("", "security.login", ok), chronicle.Death{Reason: "missing message_id: …", Queue: "q", At: consumerNow})
	madeUp.History = nil
	for _, tt := range []struct {
		name   string
		msg    chronicle.Message
		reason string
	}{
		{"ErrParse", msg(foreignID, "security.login", `{"actor":`), "parse error: invalid JSON"},
		{"ErrEmpty", msg(foreignID, "security.login", ``), "parse error: request body is empty"},
		{"ErrNotObject", msg(foreignID, "security.login", `[1]`), "parse error: request body must be a JSON object"},
		{"ErrWrongType", msg(foreignID, "security.login", `{"actor":1,"action":"login","resource_type":"auth","resource_id":"r"}`), `parse error: field "actor" must be a string, not number`},
		{"ErrMissingActor", msg(foreignID, "security.login", `{"action":"login","resource_type":"auth","resource_id":"r"}`), `missing field: "actor"`},
		{"ErrEmptyActor", msg(foreignID, "security.login", strings.Replace(ok, `"a"`, `" "`, 1)), "invalid field: actor is required"},
		{"ErrNotUTF8", msg(foreignID, "security.login", strings.Replace(ok, `"a"`, "\"\xff\"", 1)), `invalid text: field "actor" is not valid UTF-8`},
		{"ErrControl", msg(foreignID, "security.login", strings.Replace(ok, `"a"`, `"a\u0000"`, 1)), `invalid field: field "actor" holds the control character U+0000`},
		{"ErrNullMetadata", msg(foreignID, "security.login", strings.Replace(ok, `}`, `,"metadata":{"k":null}}`, 1)), `invalid field: field "metadata.k" must be a string, not null`},
		{"ErrOccurredAtFormat", msg(foreignID, "security.login", strings.Replace(ok, `}`, `,"occurred_at":"yesterday"}`, 1)), `invalid field: field "occurred_at" must be an RFC 3339 time`},
		{"ErrOccurredAtFuture", msg(foreignID, "security.login", strings.Replace(ok, `}`, `,"occurred_at":"2026-01-02T04:00:00Z"}`, 1)), "invalid field: occurred_at is 55m55s after the time the event was received; at most 5m0s is allowed"},
		{"ErrTooLarge", msg(foreignID, "security.login", strings.Repeat(" ", MaxBodyBytes+1)), "too large: the body is 1048577 bytes; at most 1048576 are allowed"},
		{"ErrMissingMessageID", msg("", "security.login", ok), "missing message_id: AMQP message_id is required: it is the event's id"},
		{"ErrMadeUpMessageID", madeUp, "missing message_id: AMQP message_id is required"},
		{"ErrMessageIDNotUUID", msg("order-17", "security.login", ok), `invalid message_id: AMQP message_id "order-17" is not a UUID: it is the event's id`},
		{"ErrMessageIDBraces", msg("{"+foreignID+"}", "security.login", ok), `invalid message_id: AMQP message_id "{0190C6D2`},
		{"ErrNilMessageID", msg("00000000-0000-0000-0000-000000000000", "security.login", ok), "invalid message_id: AMQP message_id 00000000-0000-0000-0000-000000000000 is not unique to an event"},
		{"ErrRoutingKeyCase", msg(foreignID, "Security.Login", ok), `invalid routing key: the routing key "Security.Login" is the event's event_type, which must be lower-case words`},
		{"ErrRoutingKeyWildcard", msg(foreignID, "security.*", ok), `invalid routing key: the routing key "security.*"`},
		{"ErrNoRoutingKey", msg(foreignID, "", ok), "invalid routing key: the message has no routing key"},
		{"ErrEventTypeDiffers", msg(foreignID, "security.login", strings.Replace(ok, `}`, `,"event_type":"billing.charge"}`, 1)), `invalid field: event_type "billing.charge" differs from the routing key "security.login"`},
		{"ErrEventTypeInvalid", msg(foreignID, "security.login", strings.Replace(ok, `}`, `,"event_type":"security..login"}`, 1)), "invalid field: event_type must be lower-case words"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, reason := foreignChecker().Check(&tt.msg)
			if e != nil || !strings.HasPrefix(reason, tt.reason) {
				t.Fatalf("Check = %v, %q; want the reason %q", e, reason, tt.reason)
			}
		})
	}
}

// The AMQP timestamp is whole seconds since 1970: one that is far ahead of
// the consumer's clock (milliseconds, often) is refused, since it would
// sort first for ever; one a little ahead is a clock's skew.
func TestCheckForeignTimestamp(t *testing.T) {
	t.Parallel()
	body := []byte(`{"actor":"a","action":"login","resource_type":"auth","resource_id":"r"}`)
	for _, tt := range []struct {
		name   string
		at     time.Time
		reason string
	}{
		{"OKSkew", consumerNow.Add(4 * time.Minute), ""},
		{"OKOld", consumerNow.Add(-90 * 24 * time.Hour), ""},
		{"ErrAhead", consumerNow.Add(time.Hour), "invalid timestamp: the AMQP timestamp 2026-01-02T04:04:05Z is 1h0m0s after this consumer's clock; at most 5m0s is allowed"},
		{"ErrMilliseconds", time.Unix(consumerNow.UnixMilli(), 0), "invalid timestamp: the AMQP timestamp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := chronicle.Message{ID: foreignID, Type: "security.login", Body: body, Timestamp: tt.at}
			e, reason := foreignChecker().Check(&m)
			if !strings.HasPrefix(reason, tt.reason) || (tt.reason != "" && e != nil) {
				t.Fatalf("Check = %v, %q; want %q", e, reason, tt.reason)
			}
			if tt.reason == "" && !e.Timestamp.Equal(tt.at.Truncate(time.Microsecond)) {
				t.Fatalf("timestamp = %v, want %v", e.Timestamp, tt.at)
			}
		})
	}
}

// The rule that tells the two kinds apart: Chronicle's messages carry a
// history with the published hop, and their body is taken as the server
// wrote it (id and timestamp included); a foreign body's id and timestamp
// are ignored, as over HTTP.
func TestCheckTellsChronicleFromForeign(t *testing.T) {
	t.Parallel()
	e, err := process(t, `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := e.MarshalJSON()
	published := chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopPublished, At: e.Timestamp, Transport: "rabbitmq"})

	ours := chronicle.Message{ID: e.ID, Type: e.EventType, Body: body, History: published}
	if ours.Foreign() {
		t.Fatal("a message with a published hop is foreign")
	}
	if got, reason := foreignChecker().Check(&ours); reason != "" || got.ID != e.ID || !got.Timestamp.Equal(e.Timestamp) {
		t.Fatalf("Chronicle's message: %+v, %q", got, reason)
	}

	// Dead-lettered and replayed, a foreign message stays foreign.
	theirs := chronicle.Message{ID: foreignID, Type: e.EventType, Body: body}
	theirs = chronicle.Kill(theirs, chronicle.Death{Reason: "x", Queue: "q", At: consumerNow})
	theirs = chronicle.Replayed(theirs, "q", "ops", "h:1", consumerNow)
	if !theirs.Foreign() {
		t.Fatal("a replayed foreign message is taken for Chronicle's")
	}
	got, reason := foreignChecker().Check(&theirs)
	if reason != "" || got.ID != strings.ToLower(foreignID) || !got.Timestamp.Equal(consumerNow.Truncate(time.Microsecond)) {
		t.Fatalf("foreign message: %+v, %q", got, reason)
	}
}

// The pipeline is the HTTP API's, so a filter a deployment adds runs on
// foreign messages too.
func TestCheckForeignRunsThePipeline(t *testing.T) {
	t.Parallel()
	deny := func(e *chronicle.Event) error {
		if e.Actor == "mallory" {
			return &chronicle.ValidationError{Field: "actor", Reason: "actor is banned"}
		}
		return nil
	}
	c := foreignChecker()
	c.Pipeline = append(c.Pipeline, deny)
	m := chronicle.Message{ID: foreignID, Type: "auth.login", Body: []byte(`{"actor":"Mallory","action":"login","resource_type":"auth","resource_id":"r"}`)}
	if _, reason := c.Check(&m); reason != "invalid field: actor is banned" {
		t.Fatalf("reason = %q", reason)
	}
}

// Whatever the body, a foreign message is refused exactly when HTTP
// refuses it, for HTTP's words, or stored as HTTP would store it.
func FuzzCheckForeign(f *testing.F) {
	f.Add([]byte(`{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`))
	f.Add([]byte(`{"actor":" A ","action":"Log In","resource_type":"Sé.c","resource_id":"","event_type":"x.Y","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":"2026-01-02T03:00:00Z"}`))
	f.Add([]byte(`{"actor":1}`))
	f.Add([]byte("{\"actor\":\"\xff\"}"))
	c := foreignChecker()
	f.Fuzz(func(t *testing.T, body []byte) {
		want, err := Decode(body)
		if err == nil {
			err = c.Pipeline.Process(want)
		}
		key := "x.y"
		if err == nil {
			key = want.EventType
		}
		m := chronicle.Message{ID: foreignID, Type: key, Body: body}
		got, reason := c.Check(&m)
		if err != nil {
			var ve *chronicle.ValidationError
			if got != nil || !strings.HasSuffix(reason, ": "+strings.TrimPrefix(chronicle.Public(err), "missing required field ")) {
				if errors.As(err, &ve) && ve.Field == "event_type" {
					return // the routing key stands in for a missing event_type
				}
				t.Fatalf("HTTP refuses %q with %v; the consumer: %v, %q", body, err, got, reason)
			}
			return
		}
		if got == nil {
			t.Fatalf("HTTP accepts %q; the consumer refuses it: %s", body, reason)
		}
		want.ID, want.CorrelationID = got.ID, got.CorrelationID // the envelope's
		g, _ := got.MarshalJSON()
		w, _ := want.MarshalJSON()
		if string(g) != string(w) {
			t.Fatalf("body %q\nconsumer %s\nHTTP     %s", body, g, w)
		}
	})
}

// BenchmarkCheckMessage: a message Chronicle published pays CheckBody and
// a look at its history for the published hop, nothing of the foreign
// path; a foreign message pays the HTTP pipeline.
func BenchmarkCheckMessage(b *testing.B) {
	e, _ := Decode([]byte(`{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`))
	_ = DefaultPipeline(Stamper{}, TimeBounds{}).Process(e)
	body, _ := e.MarshalJSON()
	history := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopAccepted, At: e.Timestamp, Process: "vm:27131", RequestID: e.CorrelationID},
		chronicle.Hop{Hop: chronicle.HopPublished, At: e.Timestamp, Transport: "rabbitmq", Exchange: "audit_events",
			RoutingKey: e.EventType, Queues: []string{"chronicle.all", "chronicle.security"}})
	for _, bm := range []struct {
		name string
		msg  chronicle.Message
	}{
		{"published", chronicle.Message{ID: e.ID, Type: e.EventType, Body: body, History: history}},
		{"foreign", chronicle.Message{ID: e.ID, Type: e.EventType, Body: []byte(`{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`)}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.msg.Body)))
			for b.Loop() {
				if _, r := Check(&bm.msg); r != "" {
					b.Fatal(r)
				}
			}
		})
	}
}
