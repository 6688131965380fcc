package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/console"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"
)

type bundle struct {
	srv   *httptest.Server
	api   *httpapi.Server
	store *memory.Store
	tr    *inproc.Transport
}

func setup(t *testing.T, capacity int, startConsumers bool, opts ...func(*httpapi.Config)) *bundle {
	t.Helper()
	store := memory.New()
	tr, err := inproc.New(t.Context(), inproc.Config{Routing: routing.Default(), Journal: store, Check: ingest.Check, Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	if startConsumers {
		if err := tr.StartConsumers(t.Context(), "default"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := httpapi.Config{Publisher: tr, Store: store, Queues: tr, DeadLetters: tr, Health: []chronicle.Pinger{tr},
		Transport: tr.Name(), Logger: testlog.Warn(t)}
	for _, o := range opts {
		o(&cfg)
	}
	api := httpapi.New(cfg)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		tr.Close(context.Background())
	})
	return &bundle{srv: srv, api: api, store: store, tr: tr}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *bundle) do(t *testing.T, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); method != http.MethodHead && path != "/metrics" && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return response{resp.StatusCode, resp.Header, string(data)}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

func expect(t *testing.T, r response, status int, bodyRE string) {
	t.Helper()
	if r.status != status || !regexp.MustCompile(bodyRE).MatchString(r.body) {
		t.Fatalf("got %d %s; want %d matching %s", r.status, r.body, status, bodyRE)
	}
}

const validEvent = `{"actor":"Alice@Example.com","action":"login","resource_type":"security","resource_id":"session-123"}`

func (b *bundle) post(t *testing.T, body string) string {
	t.Helper()
	r := b.do(t, "POST", "/events", body)
	expect(t, r, 202, `"status":"accepted"`)
	return decode[map[string]string](t, r)["id"]
}

func waitStored(t *testing.T, b *bundle, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for {
			if _, err := b.store.Event(t.Context(), id); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("event %s not stored", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestCreateEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	id := b.post(t, validEvent)
	waitStored(t, b, id)
	r := b.do(t, "GET", "/events/"+id, "")
	expect(t, r, 200, `"actor":"alice@example.com"`)
	e := decode[map[string]any](t, r)
	if e["event_type"] != "security.login" || e["id"] != id {
		t.Fatalf("stored event = %v", e)
	}
	if ts := e["timestamp"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(ts) {
		t.Errorf("timestamp %q lacks microseconds", ts)
	}
	if _, ok := e["entity_key"]; ok {
		t.Errorf("unset entity_key is not omitted: %v", e)
	}
}

func TestCreateEventErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	long := strings.Repeat("x", 256)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"ErrInvalidJSON", `{"actor":`, 400, `"error":"invalid JSON`},
		{"ErrNotObject", `"hello"`, 400, `must be a JSON object`},
		{"ErrBatchOfJunk", `[1]`, 422, `"results":\[\{"index":0,"error":"invalid_event","reason":"request body must be a JSON object"\}\]`},
		{"ErrMissingActor", `{"action":"a","resource_type":"b","resource_id":"c"}`, 400, `missing required field \\"actor\\"`},
		{"ErrWrongType", `{"actor":"a","action":7,"resource_type":"b","resource_id":"c"}`, 400, `field \\"action\\" must be a string`},
		{"ErrMetadataType", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"n":1}}`, 400, `metadata.n`},
		{"ErrActorRequired", `{"actor":" ","action":"a","resource_type":"b","resource_id":"c"}`, 422, `^\{"error":"validation_failed","reason":"actor is required"\}`},
		{"ErrActionRequired", `{"actor":"a","action":"","resource_type":"b","resource_id":"c"}`, 422, `"reason":"action is required"`},
		{"ErrResourceTypeRequired", `{"actor":"a","action":"b","resource_type":"","resource_id":"c"}`, 422, `"reason":"resource_type is required"`},
		{"ErrTooLong", `{"actor":"` + long + `","action":"a","resource_type":"b","resource_id":"c"}`, 422, `actor is longer than 255 characters`},
		{"ErrEventType", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"a..b"}`, 422, `event_type must be`},
		{"ErrTooLarge", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"` + strings.Repeat("v", 1<<20) + `"}}`, 413, `larger than 1048576 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			expect(t, b.do(t, "POST", "/events", tt.body), tt.status, tt.want)
		})
	}
	// Nothing was published.
	qs, _ := b.tr.Queues(t.Context())
	for _, q := range qs {
		if q.Depth != 0 {
			t.Errorf("queue %s holds %d after only bad requests", q.Name, q.Depth)
		}
	}
	if page, _ := b.store.Events(t.Context(), chronicle.EventFilter{Limit: 10}); len(page) != 0 {
		t.Errorf("bad input stored %d events", len(page))
	}
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	b := setup(t, 2, false) // no consumers: queues fill up
	b.post(t, validEvent)
	b.post(t, validEvent)
	r := b.do(t, "POST", "/events", validEvent)
	expect(t, r, 503, `"error":"queue chronicle\.(all|security) is full`)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	var ids []string
	for i := range 7 {
		actor := "bob@example.com"
		if i%2 == 0 {
			actor = "Alice@Example.com"
		}
		ids = append(ids, b.post(t, `{"actor":"`+actor+`","action":"created","resource_type":"user","resource_id":"u-`+string(rune('0'+i))+`","correlation_id":"c-1"}`))
		time.Sleep(2 * time.Millisecond)
	}
	waitStored(t, b, ids...)

	r := b.do(t, "GET", "/events", "")
	expect(t, r, 200, `^\[`)
	all := decode[[]map[string]any](t, r)
	if len(all) != 7 || all[0]["id"] != ids[6] || all[6]["id"] != ids[0] {
		t.Fatalf("GET /events not newest first: %d events", len(all))
	}
	if r.header.Get("Link") != "" {
		t.Errorf("Link on the last page: %q", r.header.Get("Link"))
	}
	// The actor filter is compared lower-cased.
	alice := decode[[]map[string]any](t, b.do(t, "GET", "/events?actor=ALICE@example.com", ""))
	if len(alice) != 4 {
		t.Fatalf("actor filter: %d events", len(alice))
	}
	if got := decode[[]map[string]any](t, b.do(t, "GET", "/events?resource_id=u-3&event_type=user.created", "")); len(got) != 1 || got[0]["id"] != ids[3] {
		t.Fatalf("resource_id filter: %v", got)
	}

	// Pages of 3 follow the Link header to the end.
	var seen []string
	next := "/events?limit=3&correlation_id=c-1"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := b.do(t, "GET", next, "")
		expect(t, r, 200, `^\[`)
		for _, e := range decode[[]map[string]any](t, r) {
			seen = append(seen, e["id"].(string))
		}
		next = ""
		if link := r.header.Get("Link"); link != "" {
			m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link = %q", link)
			}
			next = m[1]
			if !strings.Contains(next, "correlation_id=c-1") || !strings.Contains(next, "limit=3") {
				t.Fatalf("Link drops the filters: %s", next)
			}
		}
	}
	if len(seen) != 7 || seen[0] != ids[6] || seen[6] != ids[0] {
		t.Fatalf("paged through %v", seen)
	}
}

func TestListEventsErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	for _, tt := range []struct{ query, want string }{
		{"limit=0", "limit must be an integer from 1 to 1000"},
		{"limit=1001", "limit must be"},
		{"limit=ten", "limit must be"},
		{"since=yesterday", "since must be an RFC 3339 time"},
		{"until=2026-13-01T00:00:00Z", "until must be"},
		{"cursor=bogus", "invalid cursor"},
		{"cursor=" + "MTIzfA", "invalid cursor"},
		{"actr=alice", `unknown query parameter \\"actr\\"`},
	} {
		expect(t, b.do(t, "GET", "/events?"+tt.query, ""), 400, tt.want)
	}
	expect(t, b.do(t, "GET", "/events/0190a5b8-0000-7000-8000-000000000000", ""), 404, `"error":"event not found`)
}

func TestEntitiesAndEnrichment(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	expect(t, b.do(t, "POST", "/entities", `{"key":"org:acme","name":"Acme Corp","metadata":{"tier":"enterprise","region":"us-west"}}`), 201, `^\{"key":"org:acme","status":"created"\}`)
	expect(t, b.do(t, "POST", "/entities", `{"key":"org:beta","name":"Beta","attributes":{"tier":"free"}}`), 201, `created`)
	expect(t, b.do(t, "POST", "/entities", `{"name":"x"}`), 400, `missing required field \\"key\\"`)
	expect(t, b.do(t, "POST", "/entities", `{"key":"k"}`), 400, `missing required field \\"name\\"`)
	expect(t, b.do(t, "POST", "/entities", `{"key":"k","name":"n","attributes":{"a":1}}`), 400, `wrong type`)
	expect(t, b.do(t, "GET", "/entities/org:acme", ""), 200, `"attributes":\{"region":"us-west","tier":"enterprise"\}`)
	expect(t, b.do(t, "GET", "/entities", ""), 200, `^\[\{"key":"org:acme".*\{"key":"org:beta"`)
	expect(t, b.do(t, "GET", "/entities/org:ghost", ""), 404, `^\{"error":"Entity not found: org:ghost"\}`)

	id := b.post(t, `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","entity_key":"org:acme","metadata":{"region":"eu-central"}}`)
	waitStored(t, b, id)
	e := decode[map[string]any](t, b.do(t, "GET", "/events/"+id, ""))
	md := e["metadata"].(map[string]any)
	if md["entity_name"] != "Acme Corp" || md["tier"] != "enterprise" || md["region"] != "eu-central" {
		t.Fatalf("enriched metadata = %v (the event's own region must win)", md)
	}
	listed := decode[[]map[string]any](t, b.do(t, "GET", "/events?entity_key=org:acme", ""))
	if len(listed) != 1 || listed[0]["metadata"].(map[string]any)["entity_name"] != "Acme Corp" {
		t.Fatalf("listing not enriched: %v", listed)
	}
	// Enrichment did not change what is stored.
	stored, _ := b.store.Event(t.Context(), id)
	if _, ok := stored.Metadata["entity_name"]; ok || len(stored.Metadata) != 1 {
		t.Fatalf("stored metadata changed: %v", stored.Metadata)
	}
	// Upsert replaces; delete removes; enrichment follows.
	expect(t, b.do(t, "POST", "/entities", `{"key":"org:acme","name":"Acme","attributes":{}}`), 201, `created`)
	md = decode[map[string]any](t, b.do(t, "GET", "/events/"+id, ""))["metadata"].(map[string]any)
	if md["entity_name"] != "Acme" || md["tier"] != nil {
		t.Fatalf("after upsert: %v", md)
	}
	expect(t, b.do(t, "DELETE", "/entities/org:acme", ""), 200, `^\{"key":"org:acme","status":"deleted"\}`)
	expect(t, b.do(t, "DELETE", "/entities/org:acme", ""), 404, `Entity not found: org:acme`)
	md = decode[map[string]any](t, b.do(t, "GET", "/events/"+id, ""))["metadata"].(map[string]any)
	if md["entity_name"] != nil {
		t.Fatalf("enriched from a deleted entity: %v", md)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	expect(t, b.do(t, "GET", "/nope", ""), 404, `^\{"error":"not found: /nope"\}`)
	expect(t, b.do(t, "GET", "/events/", ""), 404, `"error"`)
	r := b.do(t, "PUT", "/events", "")
	expect(t, r, 405, `"error":"method PUT is not allowed on /events"`)
	if allow := r.header.Get("Allow"); allow != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", allow)
	}
	r = b.do(t, "POST", "/entities/k", "")
	expect(t, r, 405, `"error"`)
	if allow := r.header.Get("Allow"); allow != "GET, HEAD, DELETE" {
		t.Errorf("Allow = %q", allow)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	expect(t, b.do(t, "POST", "/entities", `{"key":"k","name":"n"}`), 201, `created`)
	expect(t, b.do(t, "GET", "/health", ""), 200, `^\{"status":"healthy","transport":"inproc","store":"memory","entities":1,"auth":"off"\}`)
	b.api.Drain()
	r := b.do(t, "POST", "/events", validEvent)
	expect(t, r, 503, `shutting down`)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	expect(t, b.do(t, "GET", "/health", ""), 503, `"status":"draining"`)
}

func TestHealthVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Version = "v1.2.3" })
	expect(t, b.do(t, "GET", "/health", ""), 200, `"auth":"off","version":"v1.2.3"\}`)
}

// The console is served at / and under its asset prefix without a key;
// every other unknown path still answers as the API does.
func TestConsoleRoutes(t *testing.T) {
	t.Parallel()
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"console":"` + r.URL.Path + `"}`))
	})
	const reader = "reader-0123456789abcdef"
	kr, err := auth.Parse(reader + ":read")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 0, true, func(c *httpapi.Config) { c.Console, c.Auth = page, auth.NewSource(kr) })
	expect(t, b.do(t, "GET", "/", ""), 200, `^\{"console":"/"\}$`)
	expect(t, b.do(t, "GET", "/?actor=alice", ""), 200, `"console":"/"`)
	expect(t, b.do(t, "GET", console.AssetPrefix+"js/app.js", ""), 200, `"console":"/console/js/app.js"`)
	expect(t, b.do(t, "GET", "/nope", ""), 401, `API key`)
	expect(t, b.send(t, "GET", "/nope", "", "Authorization", "Bearer "+reader), 404, `^\{"error":"not found: /nope"\}`)
	expect(t, b.do(t, "POST", "/", ""), 401, `API key`)
	r := b.send(t, "POST", "/", "", "Authorization", "Bearer "+reader)
	expect(t, r, 405, `"error":"method POST is not allowed on /"`)
	if allow := r.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow = %q", allow)
	}
	expect(t, b.do(t, "GET", "/events", ""), 401, `API key`)

	// Without a console, / is an unknown path; a consumer serves none.
	expect(t, setup(t, 0, true).do(t, "GET", "/", ""), 404, `not found: /`)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Transport: "rabbitmq", Store: memory.New(), HealthOnly: true, Console: page}))
	defer srv.Close()
	expect(t, (&bundle{srv: srv}).do(t, "GET", "/", ""), 404, `not found`)
}

func TestHealthOnly(t *testing.T) {
	t.Parallel()
	store := memory.New()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Transport: "rabbitmq", Store: store, HealthOnly: true}))
	defer srv.Close()
	b := &bundle{srv: srv}
	expect(t, b.do(t, "GET", "/health", ""), 200, `"transport":"rabbitmq"`)
	expect(t, b.do(t, "POST", "/events", validEvent), 404, `not found`)
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, true)
	for i, id := range []string{"p-1", "p-2", "p-3"} {
		if err := b.tr.PublishMessage(t.Context(), chronicle.Message{ID: id, Type: "user.created", Body: []byte(`{"broken":` + string(rune('0'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		dl, _ := b.tr.PeekDeadLetters(t.Context(), "chronicle.users.dlq", 0)
		if len(dl) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %v", dl)
		}
		time.Sleep(5 * time.Millisecond)
	}
	expect(t, b.do(t, "GET", "/dlq", ""), 200, `{"queue":"chronicle.users.dlq","route":"user_events","depth":3}`)
	r := b.do(t, "GET", "/dlq/chronicle.users.dlq?limit=2", "")
	expect(t, r, 200, `"id":"p-1"`)
	got := decode[[]map[string]any](t, r)
	if len(got) != 2 || got[0]["queue"] != "chronicle.users" || got[0]["routing_key"] != "user.created" || got[0]["count"] != float64(1) || !strings.HasPrefix(got[0]["reason"].(string), "parse error") {
		t.Fatalf("peek = %v", got)
	}
	for _, k := range []string{"id", "payload", "reason", "exchange", "routing_key", "queue", "count", "first_death_at"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("dead letter lacks %q: %v", k, got[0])
		}
	}
	expect(t, b.do(t, "GET", "/dlq/chronicle.nope", ""), 404, `no dead-letter queue named chronicle.nope`)
	expect(t, b.do(t, "GET", "/dlq/chronicle.users.dlq?limit=0", ""), 400, `limit must be`)
	expect(t, b.do(t, "DELETE", "/dlq/chronicle.users.dlq", ""), 400, `say which dead letters to purge`)
	expect(t, b.do(t, "DELETE", "/dlq/chronicle.users.dlq", `{"ids":["p-2"]}`), 200, `{"purged":1}`)
	expect(t, b.do(t, "POST", "/dlq/chronicle.users.dlq/replay", `{"limit":0}`), 400, `limit must be at least 1`)
	expect(t, b.do(t, "POST", "/dlq/chronicle.users.dlq/replay", `{"limit":1}`), 200, `{"replayed":1}`)
	expect(t, b.do(t, "DELETE", "/dlq/chronicle.unrouted", `{"all":true}`), 200, `{"purged":0}`)
}
