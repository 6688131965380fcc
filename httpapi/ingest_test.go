package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/metrics"
)

func (b *bundle) send(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(data)}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	r := b.do(t, "POST", "/events", `[`+validEvent+`,{"actor":"","action":"a","resource_type":"b","resource_id":"c"},{"action":"x"},`+validEvent+`]`)
	expect(t, r, 202, `^\{"status":"accepted","accepted":2,"rejected":2,"results":\[\{"index":0,"id":"[^"]+"\},\{"index":1,"error":"validation_failed","reason":"actor is required"\},\{"index":2,"error":"invalid_event","reason":"missing required field \\"actor\\""\},\{"index":3,"id":"[^"]+"\}\]\}`)
	res := decode[struct {
		Results []struct{ ID string }
	}](t, r)
	waitStored(t, b, res.Results[0].ID, res.Results[3].ID)

	expect(t, b.do(t, "POST", "/events", `[{"actor":" ","action":"a","resource_type":"b","resource_id":"c"}]`), 422, `"status":"rejected","accepted":0,"rejected":1`)
	expect(t, b.do(t, "POST", "/events", `[]`), 400, `empty batch`)
	expect(t, b.do(t, "POST", "/events", `[{"actor":"a"},`), 400, `invalid JSON array`)
	many := "[" + strings.TrimSuffix(strings.Repeat(validEvent+",", 1001), ",") + "]"
	expect(t, b.do(t, "POST", "/events", many), 413, `at most 1000 events, this one 1001`)

	// NDJSON, blank lines ignored.
	nd := b.send(t, "POST", "/events", validEvent+"\n\n"+validEvent+"\n", "Content-Type", "application/x-ndjson")
	expect(t, nd, 202, `"accepted":2,"rejected":0`)
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	first := b.send(t, "POST", "/events", validEvent, "Idempotency-Key", "order-42")
	expect(t, first, 202, `"status":"accepted"`)
	again := b.send(t, "POST", "/events", validEvent, "Idempotency-Key", "order-42")
	expect(t, again, 202, `"status":"accepted"`)
	if first.body != again.body {
		t.Fatalf("retry answered %s, first %s", again.body, first.body)
	}
	id := decode[map[string]string](t, first)["id"]
	waitStored(t, b, id)
	if page, _ := b.store.Events(t.Context(), chronicle.EventFilter{Limit: 10}); len(page) != 1 {
		t.Fatalf("%d events stored for one idempotent event", len(page))
	}
	expect(t, b.send(t, "POST", "/events", strings.Replace(validEvent, "login", "logout", 1), "Idempotency-Key", "order-42"), 409, `Idempotency-Key \\"order-42\\" was already used with a different request body`)
	expect(t, b.send(t, "POST", "/events", validEvent, "Idempotency-Key", strings.Repeat("k", 256)), 400, `Idempotency-Key must be`)

	// Concurrent retries of one key: one event.
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			r := b.send(t, "POST", "/events", `[`+validEvent+`]`, "Idempotency-Key", "batch-7")
			ids <- r.body
		})
	}
	wg.Wait()
	close(ids)
	var bodies []string
	for body := range ids {
		bodies = append(bodies, body)
	}
	for _, body := range bodies[1:] {
		if body != bodies[0] {
			t.Fatalf("concurrent retries answered differently:\n%s\n%s", body, bodies[0])
		}
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const ingest, reader, admin = "ingest-0123456789abcdef", "reader-0123456789abcdef", "admin-0123456789abcdef"
	kr, err := auth.Parse(ingest + ":ingest," + reader + ":read," + admin + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Auth = auth.NewSource(kr) })
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	expect(t, b.do(t, "GET", "/health", ""), 200, `"auth":"on"`)
	r := b.do(t, "POST", "/events", validEvent)
	expect(t, r, 401, `^\{"error":"missing or unknown API key`)
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	expect(t, b.send(t, "POST", "/events", validEvent, bearer("not-a-key")...), 401, `unknown API key`)
	expect(t, b.send(t, "GET", "/events", "", bearer(ingest)...), 403, `needs the read scope`)
	expect(t, b.send(t, "POST", "/events", validEvent, bearer(reader)...), 403, `needs the ingest scope`)
	expect(t, b.send(t, "POST", "/events", validEvent, bearer(ingest)...), 202, `accepted`)
	expect(t, b.send(t, "GET", "/events", "", bearer(reader)...), 200, `^\[`)
	expect(t, b.send(t, "POST", "/entities", `{"key":"k","name":"n"}`, bearer(reader)...), 403, `needs the admin scope`)
	expect(t, b.send(t, "POST", "/entities", `{"key":"k","name":"n"}`, bearer(admin)...), 201, `created`)
	expect(t, b.send(t, "GET", "/dlq", "", bearer(reader)...), 403, `admin`)
	expect(t, b.send(t, "GET", "/dlq", "", bearer(admin)...), 200, `chronicle.all.dlq`)
	expect(t, b.send(t, "GET", "/queues", "", bearer(admin)...), 200, `chronicle.all`)
	expect(t, b.send(t, "GET", "/events", "", bearer(admin)...), 200, `^\[`)
	expect(t, b.do(t, "GET", "/nope", ""), 401, `API key`)
	expect(t, b.send(t, "GET", "/nope", "", bearer(reader)...), 404, `not found`)
	for _, r := range []response{b.do(t, "GET", "/events", ""), b.send(t, "GET", "/events", "", bearer("x"+admin)...)} {
		if strings.Contains(r.body, admin) {
			t.Fatal("an error shows a key")
		}
	}
}

func TestOverloadAndRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.MaxInflight = 1 })
	r := b.send(t, "POST", "/events", validEvent, httpapi.RequestIDHeader, "req-abc-123")
	expect(t, r, 202, `accepted`)
	if r.header.Get(httpapi.RequestIDHeader) != "req-abc-123" {
		t.Fatalf("request id = %q", r.header.Get(httpapi.RequestIDHeader))
	}
	id := decode[map[string]string](t, r)["id"]
	waitStored(t, b, id)
	if e, _ := b.store.Event(t.Context(), id); e.CorrelationID != "req-abc-123" {
		t.Fatalf("correlation_id = %q, want the request id", e.CorrelationID)
	}
	if r := b.do(t, "GET", "/health", ""); len(r.header.Get(httpapi.RequestIDHeader)) != 36 {
		t.Fatalf("generated request id = %q", r.header.Get(httpapi.RequestIDHeader))
	}
	// With one request allowed in flight and that one held up in the
	// transport, the next is shed at once with 429 and Retry-After.
	held := &blockingGateway{Gateway: b.tr, entered: make(chan struct{}), release: make(chan struct{})}
	b2 := setup(t, 0, true, func(c *httpapi.Config) { c.MaxInflight = 1; c.Publisher = held })
	first := make(chan response, 1)
	go func() { first <- b2.do(t, "POST", "/events", validEvent) }()
	<-held.entered
	r = b2.do(t, "POST", "/events", validEvent)
	expect(t, r, 429, `too many requests in flight`)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("429 Retry-After = %q", r.header.Get("Retry-After"))
	}
	close(held.release)
	expect(t, <-first, 202, `accepted`)
	expect(t, b2.do(t, "POST", "/events", validEvent), 202, `accepted`)
}

// blockingGateway holds the first Publish until released.
type blockingGateway struct {
	chronicle.Gateway
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *blockingGateway) Publish(ctx context.Context, events []*chronicle.Event) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Gateway.Publish(ctx, events)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Metrics = m })
	m.WatchQueues(b.tr)
	b.post(t, validEvent)
	b.do(t, "POST", "/events", `{"actor":""}`)
	r := b.do(t, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("/metrics = %d", r.status)
	}
	for _, want := range []string{
		`chronicle_events_accepted_total 1`,
		`chronicle_events_rejected_total{reason="invalid"} 1`,
		`chronicle_queue_depth{kind="dlq",queue="chronicle.all.dlq",route="all_events"}`,
		`chronicle_http_requests_total{code="202",route="POST /events"} 1`,
		`chronicle_publish_duration_seconds_count 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	open := setup(t, 0, true)
	expect(t, open.do(t, "GET", "/whoami", ""), 200, `^\{"scopes":\["ingest","read","admin"\]\}`)

	const ingest, reader, both, admin = "ingest-0123456789abcdef", "reader-0123456789abcdef", "both-0123456789abcdef", "admin-0123456789abcdef"
	kr, err := auth.Parse(ingest + ":ingest," + reader + ":read," + both + ":ingest+read," + admin + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Auth = auth.NewSource(kr) })
	for key, want := range map[string]string{
		ingest: `"scopes":\["ingest"\]`,
		reader: `"scopes":\["read"\]`,
		both:   `"scopes":\["ingest","read"\]`,
		admin:  `"scopes":\["ingest","read","admin"\]`,
	} {
		r := b.send(t, "GET", "/whoami", "", "Authorization", "Bearer "+key)
		expect(t, r, 200, `^\{"key":"sha256:[0-9a-f]{8}",`+want+`\}`)
		if strings.Contains(r.body, key) {
			t.Fatal("/whoami shows the key")
		}
	}
	expect(t, b.do(t, "GET", "/whoami", ""), 401, `missing or unknown API key`)
}
