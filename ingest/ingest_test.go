package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chronicle-audit/chronicle"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantErr string
	}{
		{"OK", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`, ""},
		{"OKEmptyResourceID", `{"actor":"a","action":"b","resource_type":"c","resource_id":""}`, ""},
		{"OKUnknownFieldsIgnored", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","id":"x","timestamp":5,"extra":[1]}`, ""},
		{"OKNullMetadata", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":null}`, ""},
		{"ErrEmpty", ``, "request body is empty"},
		{"ErrNotJSON", `not json`, "invalid JSON at byte"},
		{"ErrTruncated", `{"actor":"a"`, "invalid JSON"},
		{"ErrTrailing", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"} x`, "invalid JSON"},
		{"ErrArrayOfNumbers", `[1,2]`, "must be a JSON object"},
		{"ErrString", `"hello"`, "must be a JSON object"},
		{"ErrMissingActor", `{"action":"b","resource_type":"c","resource_id":"d"}`, `missing required field "actor"`},
		{"ErrNullActor", `{"actor":null,"action":"b","resource_type":"c","resource_id":"d"}`, `missing required field "actor"`},
		{"ErrMissingResourceID", `{"actor":"a","action":"b","resource_type":"c"}`, `missing required field "resource_id"`},
		{"ErrActorNumber", `{"actor":1,"action":"b","resource_type":"c","resource_id":"d"}`, `field "actor" must be a string, not number`},
		{"ErrActionObject", `{"actor":"a","action":{},"resource_type":"c","resource_id":"d"}`, `field "action" must be a string, not object`},
		{"ErrMetadataValue", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":1}}`, `field "metadata.k" must be a string`},
		{"ErrMetadataArray", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":[]}`, `field "metadata" must be an object of strings`},
		{"ErrMetadataNull", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"a":"x","k":null}}`, `field "metadata.k" must be a string, not null`},
		{"ErrMetadataBool", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":true}}`, `field "metadata.k" must be a string, not bool`},
		{"ErrMetadataObject", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":{}}}`, `field "metadata.k" must be a string`},
		{"ErrActorNotUTF8", "{\"actor\":\"al\xff\xfeice\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\"}", `field "actor" is not valid UTF-8`},
		{"ErrMetadataValueNotUTF8", "{\"actor\":\"a\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\",\"metadata\":{\"ip\":\"\xc3\x28\"}}", `field "metadata.ip" is not valid UTF-8`},
		{"ErrMetadataKeyNotUTF8", "{\"actor\":\"a\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\",\"metadata\":{\"\xff\":\"v\"}}", `a key of "metadata" is not valid UTF-8`},
		{"ErrLoneSurrogate", `{"actor":"a\ud800b","action":"b","resource_type":"c","resource_id":"d"}`, `field "actor" escapes an unpaired surrogate (\ud800)`},
		{"ErrLoneLowSurrogate", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"\uDC00"}}`, `field "metadata.k" escapes an unpaired surrogate`},
		{"OKSurrogatePair", `{"actor":"a\ud83d\ude00","action":"b","resource_type":"c","resource_id":"d"}`, ""},
		{"OKEscapedBackslashU", `{"actor":"a\\ud800","action":"b","resource_type":"c","resource_id":"d"}`, ""},
		{"ErrNULInActor", `{"actor":"a\u0000b","action":"b","resource_type":"c","resource_id":"d"}`, `field "actor" holds the control character U+0000`},
		{"ErrNULInMetadata", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"x\u0000"}}`, `field "metadata.k" holds the control character U+0000`},
		{"ErrControlInMetadataKey", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k\u0001":"x"}}`, `a key of "metadata" holds the control character U+0001`},
		{"ErrDELInResourceID", "{\"actor\":\"a\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\x7f\"}", `field "resource_id" holds the control character U+007F`},
		{"ErrNewlineInActor", `{"actor":"a\nb","action":"b","resource_type":"c","resource_id":"d"}`, `field "actor" holds the control character U+000A`},
		{"OKNewlineAndTabInMetadataValue", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"note":"line 1\n\tline 2\r\n"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil || e == nil {
					t.Fatalf("Decode = %v, %v", e, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, chronicle.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

// Text is stored exactly as sent: what decodes is what was sent.
func TestDecodeKeepsText(t *testing.T) {
	t.Parallel()
	e, err := Decode([]byte(`{"actor":"Zoë 😀 \u00e9","action":"b","resource_type":"c","resource_id":"","metadata":{"note":"a\tb\nc"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Actor != "Zoë 😀 é" || e.Metadata["note"] != "a\tb\nc" {
		t.Fatalf("decoded %q, %q", e.Actor, e.Metadata["note"])
	}
}

// A consumer dead-letters what ingestion refuses, with a reason.
func TestCheckBodyRefusesText(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"NotUTF8": "{\"id\":\"0195f0a4-0000-7000-8000-000000000001\",\"timestamp\":\"2026-01-02T03:04:05Z\",\"actor\":\"\xff\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\",\"event_type\":\"c.b\"}",
		"NUL":     `{"id":"0195f0a4-0000-7000-8000-000000000001","timestamp":"2026-01-02T03:04:05Z","actor":"a\u0000","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`,
		"Null":    `{"id":"0195f0a4-0000-7000-8000-000000000001","timestamp":"2026-01-02T03:04:05Z","actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b","metadata":{"k":null}}`,
	} {
		if e, reason := CheckBody([]byte(body)); e != nil || reason == "" {
			t.Errorf("%s: CheckBody accepted %q", name, body)
		} else {
			t.Logf("%s: %s", name, reason)
		}
	}
}

func fixedStamper() Stamper {
	return Stamper{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC) }}
}

func process(t *testing.T, body string) (*chronicle.Event, error) {
	t.Helper()
	e, err := Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return e, DefaultPipeline(fixedStamper(), TimeBounds{}).Process(e)
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	e, err := process(t, `{"actor":"  Alice@ACME.com ","action":" Login ","resource_type":"Security","resource_id":" s-1 ","entity_key":" org:acme ","metadata":{"ip":"1.2.3.4"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if e.Actor != "alice@acme.com" || e.Action != "Login" || e.ResourceType != "Security" || e.ResourceID != "s-1" || e.EntityKey != "org:acme" {
		t.Errorf("not normalised: %+v", e)
	}
	if e.EventType != "security.login" {
		t.Errorf("event_type = %q", e.EventType)
	}
	if len(e.CorrelationID) != 36 {
		t.Errorf("correlation_id = %q", e.CorrelationID)
	}
	if len(e.ID) != 36 || e.ID[14] != '7' {
		t.Errorf("id %q is not a UUIDv7", e.ID)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC); !e.Timestamp.Equal(want) {
		t.Errorf("timestamp = %v, want %v (microseconds)", e.Timestamp, want)
	}
}

func TestPipelineEventType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want, wantErr string
	}{
		{"Derived", `"resource_type":"User","action":"Created"`, "user.created", ""},
		{"DerivedOddChars", `"resource_type":"Auth.Session","action":"log in/out"`, "auth_session.log_in_out", ""},
		{"DerivedUnicode", `"resource_type":"Doküment","action":"view"`, "dok_ment.view", ""},
		{"Explicit", `"resource_type":"auth","action":"login","event_type":"Security.Login"`, "security.login", ""},
		{"ExplicitKeepsWords", `"resource_type":"auth","action":"login","event_type":"a-b.c_d.0"`, "a-b.c_d.0", ""},
		{"ErrExplicitEmptyWord", `"resource_type":"auth","action":"login","event_type":"security..login"`, "", "event_type must be"},
		{"ErrExplicitWildcard", `"resource_type":"auth","action":"login","event_type":"security.*"`, "", "event_type must be"},
		{"ErrExplicitTrailingDot", `"resource_type":"auth","action":"login","event_type":"security."`, "", "event_type must be"},
		{"ErrExplicitSpace", `"resource_type":"auth","action":"login","event_type":"security login"`, "", "event_type must be"},
		{"ErrDerivedTooLong", `"resource_type":"` + strings.Repeat("r", 200) + `","action":"` + strings.Repeat("a", 200) + `"`, "", "event_type is longer than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := process(t, `{"actor":"a","resource_id":"r",`+tt.body+`}`)
			if tt.wantErr != "" {
				var ve *chronicle.ValidationError
				if !errors.As(err, &ve) || !strings.Contains(ve.Reason, tt.wantErr) || ve.Field != "event_type" {
					t.Fatalf("error = %v, want validation error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || e.EventType != tt.want {
				t.Fatalf("event_type = %q, %v; want %q", e.EventType, err, tt.want)
			}
		})
	}
}

func TestPipelineValidation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 256)
	tests := []struct {
		name, body, field, reason string
	}{
		{"ErrActorRequired", `{"actor":"  ","action":"b","resource_type":"c","resource_id":"d"}`, "actor", "actor is required"},
		{"ErrActionRequired", `{"actor":"a","action":"","resource_type":"c","resource_id":"d"}`, "action", "action is required"},
		{"ErrResourceTypeRequired", `{"actor":"a","action":"b","resource_type":" ","resource_id":"d"}`, "resource_type", "resource_type is required"},
		{"ErrActorTooLong", `{"actor":"` + long + `","action":"b","resource_type":"c","resource_id":"d"}`, "actor", "actor is longer than 255 characters"},
		{"ErrResourceIDTooLong", `{"actor":"a","action":"b","resource_type":"c","resource_id":"` + long + `"}`, "resource_id", "resource_id is longer than 255 characters"},
		{"ErrCorrelationTooLong", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","correlation_id":"` + long + `"}`, "correlation_id", "correlation_id is longer than 255"},
		{"ErrEntityKeyTooLong", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","entity_key":"` + long + `"}`, "entity_key", "entity_key is longer than 255"},
		{"ErrMetadataValueTooLong", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"` + strings.Repeat("v", 4097) + `"}}`, "metadata", `metadata value of "k" is longer than 4096`},
		{"ErrMetadataKeyTooLong", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"` + long + `":"v"}}`, "metadata", "is longer than 255"},
		{"ErrMetadataEmptyKey", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"":"v"}}`, "metadata", "metadata keys must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := process(t, tt.body)
			var ve *chronicle.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error = %v, want *ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Reason, tt.reason) {
				t.Fatalf("got %s: %q; want %s: %q", ve.Field, ve.Reason, tt.field, tt.reason)
			}
		})
	}
}

func TestPipelineLimitsAreCharacters(t *testing.T) {
	t.Parallel()
	// 255 three-byte characters are 765 bytes but within the limit.
	_, err := process(t, `{"actor":"`+strings.Repeat("é", 255)+`","action":"b","resource_type":"c","resource_id":"d"}`)
	if err != nil {
		t.Fatalf("255 characters rejected: %v", err)
	}
	many := `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{`
	for i := range 65 {
		if i > 0 {
			many += ","
		}
		many += `"k` + strings.Repeat("x", i) + `":"v"`
	}
	if _, err := process(t, many+`}}`); err == nil || !strings.Contains(err.Error(), "more than 64") {
		t.Fatalf("65 metadata keys: %v", err)
	}
}

func TestPipelineIsData(t *testing.T) {
	t.Parallel()
	deny := func(e *chronicle.Event) error {
		if e.Actor == "mallory" {
			return &chronicle.ValidationError{Field: "actor", Reason: "actor is banned"}
		}
		return nil
	}
	p := append(DefaultPipeline(fixedStamper(), TimeBounds{}), deny)
	e, _ := Decode([]byte(`{"actor":"Mallory","action":"b","resource_type":"c","resource_id":"d"}`))
	if err := p.Process(e); err == nil || !strings.Contains(err.Error(), "banned") {
		t.Fatalf("added filter did not run: %v", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	e, _ := process(t, `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"v"}}`)
	body, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, reason := CheckBody(body)
	if reason != "" {
		t.Fatalf("Check(valid) = %q", reason)
	}
	if got.ID != e.ID || !got.Timestamp.Equal(e.Timestamp) || got.EventType != e.EventType || got.Metadata["k"] != "v" {
		t.Errorf("round trip: %+v, want %+v", got, e)
	}

	tests := []struct{ name, body, reason string }{
		{"ErrParse", `not json`, "parse error: invalid JSON"},
		{"ErrMissingActor", `{"id":"` + e.ID + `","timestamp":"2026-01-01T00:00:00Z","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `missing field: "actor"`},
		{"ErrEmptyActor", `{"id":"` + e.ID + `","timestamp":"2026-01-01T00:00:00Z","actor":"","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `invalid field: actor is required`},
		{"ErrMissingID", `{"timestamp":"2026-01-01T00:00:00Z","actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `missing field: "id"`},
		{"ErrBadID", `{"id":"x","timestamp":"2026-01-01T00:00:00Z","actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `"id" is not a UUID`},
		{"ErrMissingTimestamp", `{"id":"` + e.ID + `","actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `missing field: "timestamp"`},
		{"ErrBadEventType", `{"id":"` + e.ID + `","timestamp":"2026-01-01T00:00:00Z","actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"C..B"}`, `event_type must be`},
		{"ErrActorNotNormalised", `{"id":"` + e.ID + `","timestamp":"2026-01-01T00:00:00Z","actor":"Alice","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b"}`, `actor is not normalised`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, reason := CheckBody([]byte(tt.body)); !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason = %q, want %q", reason, tt.reason)
			}
		})
	}
}

func FuzzIngest(f *testing.F) {
	f.Add([]byte(`{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`))
	f.Add([]byte(`{"actor":" A ","action":"Log In","resource_type":"Sé.c","resource_id":"","event_type":"x.Y","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"actor":1}`))
	f.Add([]byte(`[{"actor":"a"}]`))
	p := DefaultPipeline(Stamper{}, TimeBounds{})
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := Decode(body)
		if err != nil {
			if !errors.Is(err, chronicle.ErrInvalid) {
				t.Fatalf("Decode error %v is not ErrInvalid", err)
			}
			return
		}
		if err := p.Process(e); err != nil {
			var ve *chronicle.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("pipeline error %v is not a ValidationError", err)
			}
			return
		}
		// What the pipeline accepts, a consumer must accept too.
		out, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, reason := CheckBody(out); reason != "" {
			t.Fatalf("accepted event rejected by Check: %s\n%s", reason, out)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPipeline(b *testing.B) {
	body := []byte(`{"actor":"Alice@Example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`)
	p := DefaultPipeline(Stamper{}, TimeBounds{})
	for b.Loop() {
		e, err := Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Process(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	e, _ := Decode([]byte(`{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`))
	_ = DefaultPipeline(Stamper{}, TimeBounds{}).Process(e)
	body, _ := e.MarshalJSON()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, r := CheckBody(body); r != "" {
			b.Fatal(r)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e, _ := Decode([]byte(`{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123","metadata":{"ip":"10.0.0.1"}}`))
	_ = DefaultPipeline(Stamper{}, TimeBounds{}).Process(e)
	for b.Loop() {
		if _, err := e.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCheckUTF8: JSON that CheckUTF8 lets through decodes to exactly what
// was sent: the decoder never had to replace anything with U+FFFD. And it
// never panics on anything.
func FuzzCheckUTF8(f *testing.F) {
	f.Add([]byte(`{"actor":"a\ud800","metadata":{"k":"v"}}`))
	f.Add([]byte("{\"actor\":\"\xff\",\"x\":[\"\xc3\"]}"))
	f.Add([]byte(`["\ud83d\ude00", {"\udc00": 1}]`))
	f.Add([]byte(`{"a":"\\ud800"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckUTF8(data)
		if err != nil {
			if !errors.Is(err, chronicle.ErrInvalid) {
				t.Fatalf("CheckUTF8 error %v is not ErrInvalid", err)
			}
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		sent := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		if !sent && hasReplacement(v) {
			t.Fatalf("CheckUTF8 passed %q, which decodes with U+FFFD in it", data)
		}
	})
}

func hasReplacement(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, utf8.RuneError)
	case []any:
		for _, x := range v {
			if hasReplacement(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, utf8.RuneError) || hasReplacement(x) {
				return true
			}
		}
	}
	return false
}

func TestCheckUTF8Deep(t *testing.T) {
	t.Parallel()
	deep := append(bytes.Repeat([]byte("["), 1<<20), "\"\xff\""...)
	if err := CheckUTF8(deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("CheckUTF8(a million [) = %v", err)
	}
}

// occurred_at: any offset, kept in UTC to the microsecond; a bad format is
// a 400 naming the field, a time outside the bounds around the receipt a
// 422 naming it.
func TestOccurredAt(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	p := DefaultPipeline(Stamper{Now: func() time.Time { return received }}, TimeBounds{MaxFuture: 5 * time.Minute, MaxPast: 48 * time.Hour})
	body := func(at string) string {
		return `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":` + at + `}`
	}
	for _, tt := range []struct {
		name, at string
		want     time.Time
		err      string
	}{
		{"UTC", `"2026-01-02T03:00:00Z"`, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), ""},
		{"Offset", `"2026-01-02T04:00:00.1234567+01:00"`, time.Date(2026, 1, 2, 3, 0, 0, 123456000, time.UTC), ""},
		{"NegativeOffset", `"2026-01-01T22:04:05-05:00"`, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ""},
		{"Null", `null`, time.Time{}, ""},
		{"SlightlyAhead", `"2026-01-02T03:08:05Z"`, time.Date(2026, 1, 2, 3, 8, 5, 0, time.UTC), ""},
		{"ErrFormat", `"yesterday"`, time.Time{}, `field "occurred_at" must be an RFC 3339 time`},
		{"ErrNoOffset", `"2026-01-02T03:00:00"`, time.Time{}, `field "occurred_at" must be an RFC 3339 time`},
		{"ErrNumber", `1767322800`, time.Time{}, `field "occurred_at" must be a string`},
		{"ErrFuture", `"2026-01-02T03:10:06Z"`, time.Time{}, "occurred_at is 6m1s after the time the event was received; at most 5m0s is allowed"},
		{"ErrPast", `"2025-12-31T03:00:00Z"`, time.Time{}, "occurred_at is 2.0 days before the time the event was received; at most 2.0 days is allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(body(tt.at)))
			if err == nil {
				err = p.Process(e)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				var ve *chronicle.ValidationError
				if strings.Contains(tt.err, "allowed") && (!errors.As(err, &ve) || ve.Field != "occurred_at") {
					t.Fatalf("out of bounds: %v is not a ValidationError of occurred_at", err)
				}
				return
			}
			if err != nil || !e.OccurredAt.Equal(tt.want) || (!e.OccurredAt.IsZero() && e.OccurredAt.Location() != time.UTC) {
				t.Fatalf("occurred_at = %v, %v; want %v", e.OccurredAt, err, tt.want)
			}
			out, _ := e.MarshalJSON()
			if got, reason := CheckBody(out); reason != "" || !got.OccurredAt.Equal(e.OccurredAt) {
				t.Fatalf("a consumer read occurred_at as %v (%s) from %s", got, reason, out)
			}
		})
	}
}
