package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/memory"
)

// What an audit log must neither alter nor accept: text that is not
// UTF-8, unpaired surrogates, NUL and control characters in identifiers,
// null metadata. Each is a 400 naming the field, in single and batch
// requests and in every other JSON input.
func TestTextRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	notUTF8 := "{\"actor\":\"\xff\xfe\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\"}"
	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"EventNotUTF8", "/events", notUTF8, `field \\"actor\\" is not valid UTF-8`},
		{"EventSurrogate", "/events", `{"actor":"\ud800","action":"b","resource_type":"c","resource_id":"d"}`, `field \\"actor\\" escapes an unpaired surrogate`},
		{"EventNUL", "/events", `{"actor":"a\u0000","action":"b","resource_type":"c","resource_id":"d"}`, `field \\"actor\\" holds the control character U\+0000`},
		{"EventMetadataNull", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":null}}`, `field \\"metadata.k\\" must be a string, not null`},
		{"EntityNotUTF8", "/entities", "{\"key\":\"k\",\"name\":\"\xc3\"}", `field \\"name\\" is not valid UTF-8`},
		{"EntityAttributeNull", "/entities", `{"key":"k","name":"n","attributes":{"tier":null}}`, `field \\"attributes.tier\\" must be a string, not null`},
		{"EntityNUL", "/entities", `{"key":"k\u0000","name":"n"}`, `field \\"key\\" holds the control character`},
		{"ReplayNotUTF8", "/dlq/chronicle.all.dlq/replay", "{\"ids\":[\"\xff\"]}", `field \\"ids\[0\]\\" is not valid UTF-8`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, b.do(t, "POST", tt.path, tt.body), 400, tt.want)
		})
	}
	// In a batch, the element is refused and named; the others go on.
	r := b.do(t, "POST", "/events", "["+validEvent+","+notUTF8+"]")
	expect(t, r, 202, `"accepted":1,"rejected":1,.*\{"index":1,"error":"invalid_event","reason":"field \\"actor\\" is not valid UTF-8`)
	if n, _ := b.store.CountEntities(t.Context()); n != 0 {
		t.Fatalf("a refused entity was stored")
	}
}

// The body limit is decided by size first: a declared Content-Length over
// it is refused before the body is read, and a body that crosses it is
// 413 whatever it holds, for every kind of request.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	big := strings.Repeat("[", 5<<20)
	expect(t, b.do(t, "POST", "/events", big), 413, `larger than 1048576 bytes`)
	batch := "[" + strings.TrimSuffix(strings.Repeat(validEvent+",", 12000), ",") + "]"
	expect(t, b.do(t, "POST", "/events", batch), 413, `larger than 1048576 bytes`)
	expect(t, b.do(t, "POST", "/entities", `{"key":"k","name":"`+strings.Repeat("n", 2<<20)+`"}`), 413, `larger than`)

	// Chunked (no Content-Length): 413 once it crosses the limit.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", b.srv.URL+"/events", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked 5 MB body: %d, want 413", resp.StatusCode)
	}

	// Declared too large: answered before a byte of the body is sent.
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 2<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a declared 2 MiB body before it was sent: %v", err)
	}
	if got.StatusCode != 413 {
		t.Fatalf("declared 2 MiB body: %d, want 413", got.StatusCode)
	}
}

// Clients that send their bodies slowly hold no in-flight slot, so they
// cannot lock real requests out; the bytes all bodies hold are bounded.
func TestSlowUploads(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.MaxInflight = 2; c.MaxBufferedBytes = 256 << 10 })
	addr := strings.TrimPrefix(b.srv.URL, "http://")
	var slow []net.Conn
	for range 8 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		slow = append(slow, conn)
	}
	time.Sleep(100 * time.Millisecond) // the slow requests are reading
	for range 5 {
		expect(t, b.do(t, "POST", "/events", validEvent), 202, `accepted`)
	}
	// Bodies that together pass the budget: the one that would exceed it
	// is refused with 503, not buffered.
	conns := make([]net.Conn, 0, 3)
	for range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 1<<20)
		conn.Write(bytes.Repeat([]byte(" "), 100<<10))
		conns = append(conns, conn)
	}
	// Bodies within the budget get no answer yet (they wait for the
	// rest); the one over it is answered at once.
	var refused atomic.Int32
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Go(func() {
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			if r, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil && r.StatusCode == 503 {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("three 100 kB partial bodies on a 256 kB budget (with 8 slow ones held): none refused")
	}
	_ = slow
}

// A body that does not arrive within BodyTimeout is given up.
func TestBodyTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.BodyTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 400 || !strings.Contains(string(body), "did not arrive within 200ms") {
		t.Fatalf("stalled body: %d %s", r.StatusCode, body)
	}
}

// Idempotency keys belong to the API key that used them: another
// producer reusing one gets its own answer, never the first one's.
func TestIdempotencyScopedToKey(t *testing.T) {
	t.Parallel()
	const a, bk = "producer-a-0123456789", "producer-b-0123456789"
	kr, err := auth.Parse(a + ":ingest," + bk + ":ingest")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Auth = auth.NewSource(kr) })
	first := b.send(t, "POST", "/events", validEvent, "Authorization", "Bearer "+a, "Idempotency-Key", "k-1")
	other := b.send(t, "POST", "/events", validEvent, "Authorization", "Bearer "+bk, "Idempotency-Key", "k-1")
	expect(t, first, 202, `accepted`)
	expect(t, other, 202, `accepted`)
	if first.body == other.body {
		t.Fatalf("producer B got producer A's answer: %s", other.body)
	}
	changed := strings.Replace(validEvent, "login", "logout", 1)
	expect(t, b.send(t, "POST", "/events", changed, "Authorization", "bearer "+bk, "Idempotency-Key", "k-2"), 202, `accepted`)
	expect(t, b.send(t, "POST", "/events", validEvent, "Authorization", "Bearer "+a, "Idempotency-Key", "k-2"), 202, `accepted`)
	expect(t, b.send(t, "POST", "/events", changed, "Authorization", "Bearer "+a, "Idempotency-Key", "k-1"), 409, `already used`)
}

// Smaller ones: a malformed query string is a 400, not an unfiltered
// listing; the whole Idempotency-Key is checked.
func TestMalformedInputs(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	expect(t, b.do(t, "GET", "/events?actor=nobody%zz", ""), 400, `malformed query string`)
	expect(t, b.do(t, "GET", "/events/count?actor=%", ""), 400, `malformed query string`)
	expect(t, b.do(t, "GET", "/dlq/chronicle.all.dlq?limit=%", ""), 400, `malformed query string`)
	key := strings.Repeat("k", 200) + " x"
	expect(t, b.send(t, "POST", "/events", validEvent, "Idempotency-Key", key), 400, `Idempotency-Key must be`)
	expect(t, b.send(t, "POST", "/events", validEvent, "Idempotency-Key", ""), 400, `Idempotency-Key must be`)
}

// downStore is a store that cannot be reached, for what /health says.
type downStore struct{ *memory.Store }

func (downStore) Ping(context.Context) error {
	return chronicle.Unavailable(time.Second, "PostgreSQL is not available",
		errors.New("failed to connect to `user=admin database=audit`: 10.9.8.7:5432: connection refused"))
}

// The open /health says what is down in stable words; the dependency's
// own (addresses, users) go to the log only.
func TestHealthHidesDetail(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Store = downStore{memory.New()} })
	r := b.do(t, "GET", "/health", "")
	expect(t, r, 503, `"error":"PostgreSQL is not available"`)
	if strings.Contains(r.body, "10.9.8.7") || strings.Contains(r.body, "admin") || r.header.Get("Retry-After") == "" {
		t.Fatalf("/health = %d %v %s", r.status, r.header, r.body)
	}
}

// GET /events/{id}: every field, 404 JSON when unknown; ?include=history
// adds the event's path, from the request that brought it to the store.
func TestEventWithHistory(t *testing.T) {
	t.Parallel()
	const key = "reader-writer-0123456789"
	kr, _ := auth.Parse(key + ":admin")
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Auth = auth.NewSource(kr); c.Process = "api-host:1" })
	bearer := []string{"Authorization", "Bearer " + key}
	r := b.send(t, "POST", "/events", `{"actor":"a","action":"login","resource_type":"security","resource_id":"s","occurred_at":"`+time.Now().Add(-time.Minute).Format(time.RFC3339)+`"}`, append(bearer, httpapi.RequestIDHeader, "req-77")...)
	expect(t, r, 202, "accepted")
	id := decode[map[string]string](t, r)["id"]
	waitStored(t, b, id)
	expect(t, b.send(t, "GET", "/events/"+id, "", bearer...), 200, `"occurred_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"`)
	var got api.EventWithHistory
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = b.send(t, "GET", "/events/"+id+"?include=history", "", bearer...)
		expect(t, r, 200, `"history":\[`)
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.History) == 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var kinds []string
	for _, h := range got.History {
		kinds = append(kinds, h.Hop)
	}
	if len(kinds) != 6 || kinds[0] != "accepted" || kinds[1] != "published" {
		t.Fatalf("history = %v", kinds)
	}
	if a := got.History[0]; a.Process != "api-host:1" || a.RequestID != "req-77" || !strings.HasPrefix(a.APIKey, "sha256:") || strings.Contains(r.body, key) {
		t.Fatalf("accepted hop = %+v", a)
	}
	expect(t, b.send(t, "GET", "/events/"+id+"?include=everything", "", bearer...), 400, `include may only be history`)
	expect(t, b.send(t, "GET", "/events/"+id+"?x=1", "", bearer...), 400, `unknown query parameter`)
	expect(t, b.send(t, "GET", "/events/01a23fa7-8d56-7110-94cd-000000000000", "", bearer...), 404, `^\{"error":"event not found`)
}

// occurred_at: filters on GET /events, bounds (422) and format (400).
func TestOccurredAtAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	at := func(d time.Duration) string { return time.Now().Add(d).Format(time.RFC3339Nano) }
	old := b.post(t, `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":"`+at(-2*time.Hour)+`"}`)
	expect(t, b.do(t, "POST", "/events", `[{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":"`+at(-time.Minute)+`"}]`), 202, `"accepted":1`)
	none := b.post(t, validEvent)
	waitStored(t, b, old, none)
	r := b.do(t, "GET", "/events?occurred_until="+url.QueryEscape(at(-time.Hour)), "")
	expect(t, r, 200, old)
	if strings.Contains(r.body, none) {
		t.Fatalf("an event without occurred_at matched an occurred_at bound: %s", r.body)
	}
	expect(t, b.do(t, "GET", "/events?occurred_since=yesterday", ""), 400, `occurred_since must be an RFC 3339 time`)
	expect(t, b.do(t, "POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":"`+at(time.Hour)+`"}`), 422, `"reason":"occurred_at is 1h0m0s after the time the event was received`)
	expect(t, b.do(t, "POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","occurred_at":"2026-13-01"}`), 400, `field \\"occurred_at\\" must be an RFC 3339 time`)
}
