package e2e

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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The API keys of the contract test, one per scope.
const (
	adminKey  = "contract-admin-0123456789"
	readKey   = "contract-read-0123456789a"
	ingestKey = "contract-ingest-012345678"
)

// The contract test: the OpenAPI document the service serves
// (httpapi/openapi.json) against the real binary. An endpoint is added in
// three places, and the tests name whichever is missing: httpapi's
// routeTable (what the server registers), the document (TestOpenAPI-
// DocumentsEveryRoute in httpapi checks the two agree, scopes included),
// and contractCalls below (TestOpenAPIContract fails naming every
// documented operation no call got a success from). A media type the
// validator cannot read (NDJSON here) gets a decoder in newContract.

// apiCall is one request of the contract test and the status it must get.
// Paths and bodies may name what earlier calls saved as {{name}}.
type apiCall struct {
	name   string
	method string
	path   string
	// stream: the answer does not end (Server-Sent Events); its first
	// message is read, then the test hangs up.
	stream bool
	// key is the API key sent as a Bearer token; "" sends none.
	key    string
	header map[string]string
	body   string
	status int
	// refused says the document itself refuses the request (bad input it
	// describes): the validator must reject it too. Every other request
	// must be valid by the document.
	refused bool
	// before runs first: waits for what the call needs.
	before func(t *testing.T, c *contract)
	// then checks more of the answer or saves what later calls use.
	then func(t *testing.T, c *contract, r response)
}

// contractCalls drives every documented operation of a Chronicle that
// runs a routing file whose only route is security.#, so that other
// events go to the unrouted queue (a dead-letter queue to inspect).
func contractCalls() []apiCall {
	event := func(actor, typ string) string {
		return `{"actor":"` + actor + `","action":"login","resource_type":"security","resource_id":"s-1","event_type":"` + typ + `"}`
	}
	saveID := func(name string) func(*testing.T, *contract, response) {
		return func(t *testing.T, c *contract, r response) {
			var a struct{ ID string }
			r.json(t, &a)
			c.vars[name] = a.ID
		}
	}
	ndjson := map[string]string{"Content-Type": "application/x-ndjson"}
	batch1001 := "[" + strings.TrimSuffix(strings.Repeat(event("bulk@example.com", "security.login")+",", 1001), ",") + "]"
	padded := event("big@example.com", "security.login") + strings.Repeat(" ", 1<<20)
	now := time.Now()
	occurred := now.Add(-time.Hour).In(time.FixedZone("", 3600)).Format(time.RFC3339Nano)
	rfc3339 := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	return []apiCall{
		// POST /events: single, batches, idempotency, every refusal.
		{name: "one event", method: "POST", path: "/events", key: ingestKey, header: map[string]string{"X-Request-Id": "contract-1"},
			body: event("Alice@Example.com", "security.login"), status: 202, then: func(t *testing.T, c *contract, r response) {
				saveID("event")(t, c, r)
				if got := r.Header.Get("X-Request-Id"); got != "contract-1" {
					t.Errorf("X-Request-Id %q, want the client's", got)
				}
			}},
		{name: "an event to redact", method: "POST", path: "/events", key: adminKey, body: event("bob@example.com", "security.logout"), status: 202, then: saveID("doomed")},
		{name: "an unrouted event", method: "POST", path: "/events", key: ingestKey, body: event("carol@example.com", "user.created"), status: 202, then: saveID("unrouted")},
		{name: "an enriched event", method: "POST", path: "/events", key: ingestKey,
			body:   `{"actor":"dan@example.com","action":"login","resource_type":"security","resource_id":"","entity_key":"acme","occurred_at":"` + occurred + `","metadata":{"ip":"192.0.2.7"}}`,
			status: 202},
		{name: "idempotent first", method: "POST", path: "/events", key: ingestKey, header: map[string]string{"Idempotency-Key": "contract-key-1"},
			body: event("erin@example.com", "security.login"), status: 202, then: saveID("idempotent")},
		{name: "idempotent retry", method: "POST", path: "/events", key: ingestKey, header: map[string]string{"Idempotency-Key": "contract-key-1"},
			body: event("erin@example.com", "security.login"), status: 202, then: func(t *testing.T, c *contract, r response) {
				if !strings.Contains(string(r.Body), c.vars["idempotent"]) {
					t.Errorf("retry got %s, not the first answer's id %s", r.Body, c.vars["idempotent"])
				}
			}},
		{name: "idempotency key reused with another body", method: "POST", path: "/events", key: ingestKey,
			header: map[string]string{"Idempotency-Key": "contract-key-1"}, body: event("frank@example.com", "security.login"), status: 409},
		{name: "idempotency key too long", method: "POST", path: "/events", key: ingestKey,
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, body: event("frank@example.com", "security.login"), status: 400, refused: true},
		{name: "JSON array", method: "POST", path: "/events", key: ingestKey,
			body: "[" + event("gina@example.com", "security.login") + "," + event("hank@example.com", "security.login") + "]", status: 202},
		{name: "JSON array, one invalid", method: "POST", path: "/events", key: ingestKey,
			body: "[" + event("ivy@example.com", "security.login") + `,{"actor":"","action":"a","resource_type":"r","resource_id":"x"}]`, status: 202, refused: true},
		{name: "JSON array, all invalid", method: "POST", path: "/events", key: ingestKey,
			body: `[{"actor":"","action":"a","resource_type":"r","resource_id":"x"}]`, status: 422, refused: true},
		{name: "NDJSON", method: "POST", path: "/events", key: ingestKey, header: ndjson,
			body: event("jo@example.com", "security.login") + "\n\n" + event("kim@example.com", "security.login") + "\n", status: 202},
		{name: "JSON Lines", method: "POST", path: "/events", key: ingestKey, header: map[string]string{"Content-Type": "application/jsonl"},
			body: event("lee@example.com", "security.login") + "\n", status: 202},
		{name: "another Content-Type is read as JSON", method: "POST", path: "/events", key: ingestKey, header: map[string]string{"Content-Type": "text/plain"},
			body: event("max@example.com", "security.login"), status: 202, refused: true},
		{name: "malformed JSON", method: "POST", path: "/events", key: ingestKey, body: `{"actor":`, status: 400, refused: true},
		{name: "wrong type", method: "POST", path: "/events", key: ingestKey,
			body: `{"actor":5,"action":"a","resource_type":"r","resource_id":"x"}`, status: 400, refused: true},
		{name: "missing field", method: "POST", path: "/events", key: ingestKey, body: `{"actor":"a","action":"a","resource_type":"r"}`, status: 400, refused: true},
		{name: "blank actor", method: "POST", path: "/events", key: ingestKey, body: `{"actor":"  ","action":"a","resource_type":"r","resource_id":"x"}`, status: 422},
		{name: "occurred_at too far ahead", method: "POST", path: "/events", key: ingestKey,
			body: `{"actor":"a","action":"a","resource_type":"r","resource_id":"x","occurred_at":"2999-01-01T00:00:00Z"}`, status: 422},
		{name: "body over 1 MiB", method: "POST", path: "/events", key: ingestKey, body: padded, status: 413},
		{name: "batch over 1000", method: "POST", path: "/events", key: ingestKey, body: batch1001, status: 413, refused: true},
		{name: "no key", method: "POST", path: "/events", body: event("x@example.com", "security.login"), status: 401, refused: true},
		{name: "unknown key", method: "POST", path: "/events", key: "not-a-key-of-this-service", body: event("x@example.com", "security.login"), status: 401},
		{name: "read key may not send", method: "POST", path: "/events", key: readKey, body: event("x@example.com", "security.login"), status: 403},

		// Entities.
		{name: "register an entity", method: "POST", path: "/entities", key: adminKey, body: `{"key":"acme","name":"Acme Corp","attributes":{"tier":"gold"}}`, status: 201},
		{name: "entity with metadata", method: "POST", path: "/entities", key: adminKey, body: `{"key":"globex","name":"Globex","metadata":{"tier":"silver"}}`, status: 201},
		{name: "entity without name", method: "POST", path: "/entities", key: adminKey, body: `{"key":"acme"}`, status: 400, refused: true},
		{name: "entity name too long", method: "POST", path: "/entities", key: adminKey, body: `{"key":"acme","name":"` + strings.Repeat("n", 300) + `"}`, status: 422, refused: true},
		{name: "entity body over 1 MiB", method: "POST", path: "/entities", key: adminKey, body: `{"key":"acme","name":"Acme"}` + strings.Repeat(" ", 1<<20), status: 413},
		{name: "read key may not register", method: "POST", path: "/entities", key: readKey, body: `{"key":"acme","name":"Acme"}`, status: 403},
		{name: "entities", method: "GET", path: "/entities", key: readKey, status: 200},
		{name: "one entity", method: "GET", path: "/entities/acme", key: readKey, status: 200},
		{name: "unknown entity", method: "GET", path: "/entities/nobody", key: readKey, status: 404},
		{name: "delete unknown entity", method: "DELETE", path: "/entities/nobody", key: adminKey, status: 404},
		{name: "delete an entity", method: "DELETE", path: "/entities/globex", key: adminKey, status: 200},

		// Reading events.
		{name: "first page", method: "GET", path: "/events?limit=1", key: readKey, status: 200,
			before: func(t *testing.T, c *contract) {
				c.waitStored(t, c.vars["event"], c.vars["doomed"], c.vars["idempotent"])
			},
			then: func(t *testing.T, c *contract, r response) {
				link := r.Header.Get("Link")
				if link == "" {
					t.Fatal("a full page without Link")
				}
				c.vars["next"] = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}},
		{name: "next page", method: "GET", path: "{{next}}", key: readKey, status: 200},
		{name: "every filter", method: "GET", key: readKey, status: 200,
			path: "/events?actor=Alice@Example.com&action=login&event_type=security.login&resource_type=security&resource_id=s-1&correlation_id=contract-1" +
				"&entity_key=&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z&limit=1000"},
		{name: "occurred_at bounds", method: "GET", path: "/events?occurred_since=" + rfc3339(now.Add(-2*time.Hour)) + "&occurred_until=" + rfc3339(now), key: readKey, status: 200,
			then: func(t *testing.T, c *contract, r response) {
				if !strings.Contains(string(r.Body), `"entity_name":"Acme Corp"`) {
					t.Errorf("the event naming acme is not enriched: %s", r.Body)
				}
			}},
		{name: "limit out of range", method: "GET", path: "/events?limit=0", key: readKey, status: 400, refused: true},
		{name: "malformed since", method: "GET", path: "/events?since=yesterday", key: readKey, status: 400, refused: true},
		{name: "unknown filter", method: "GET", path: "/events?actr=alice", key: readKey, status: 400},
		{name: "invalid cursor", method: "GET", path: "/events?cursor=abc", key: readKey, status: 400},
		{name: "ingest key may not read", method: "GET", path: "/events", key: ingestKey, status: 403},
		{name: "count", method: "GET", path: "/events/count?event_type=security.login", key: readKey, status: 200},
		{name: "count with limit", method: "GET", path: "/events/count?limit=5", key: readKey, status: 400},
		{name: "count with malformed until", method: "GET", path: "/events/count?until=never", key: readKey, status: 400, refused: true},
		{name: "one event", method: "GET", path: "/events/{{event}}", key: readKey, status: 200},
		{name: "one event with history", method: "GET", path: "/events/{{event}}?include=history", key: readKey, status: 200},
		{name: "include what", method: "GET", path: "/events/{{event}}?include=everything", key: readKey, status: 400, refused: true},
		{name: "unknown event", method: "GET", path: "/events/0190a7a0-0000-7000-8000-000000000000", key: readKey, status: 404},

		// Who, health, metrics, this document.
		{name: "whoami", method: "GET", path: "/whoami", key: readKey, status: 200},
		{name: "whoami without a key", method: "GET", path: "/whoami", status: 401, refused: true},
		{name: "health", method: "GET", path: "/health", status: 200},
		{name: "metrics", method: "GET", path: "/metrics", status: 200},
		{name: "document", method: "GET", path: "/openapi.json", status: 200},
		{name: "queues", method: "GET", path: "/queues", key: adminKey, status: 200},
		{name: "read key may not see queues", method: "GET", path: "/queues", key: readKey, status: 403},

		// Dead letters.
		{name: "dead-letter queues", method: "GET", path: "/dlq", key: adminKey, status: 200,
			before: func(t *testing.T, c *contract) { c.waitDeadLetter(t, "chronicle.unrouted") }},
		{name: "peek", method: "GET", path: "/dlq/chronicle.unrouted?limit=10", key: adminKey, status: 200},
		{name: "peek limit out of range", method: "GET", path: "/dlq/chronicle.unrouted?limit=0", key: adminKey, status: 400, refused: true},
		{name: "peek unknown queue", method: "GET", path: "/dlq/chronicle.nothing", key: adminKey, status: 404},
		{name: "replay one", method: "POST", path: "/dlq/chronicle.unrouted/replay", key: adminKey, body: `{"ids":["{{unrouted}}"]}`, status: 200},
		{name: "replay limit out of range", method: "POST", path: "/dlq/chronicle.unrouted/replay", key: adminKey, body: `{"limit":0}`, status: 400, refused: true},
		{name: "replay unknown queue", method: "POST", path: "/dlq/chronicle.nothing/replay", key: adminKey, body: `{}`, status: 404},
		{name: "replay body over 1 MiB", method: "POST", path: "/dlq/chronicle.unrouted/replay", key: adminKey, body: `{}` + strings.Repeat(" ", 1<<20), status: 413},
		{name: "purge body over 1 MiB", method: "DELETE", path: "/dlq/chronicle.unrouted", key: adminKey, body: `{"all":true}` + strings.Repeat(" ", 1<<20), status: 413},
		{name: "purge needs a selection", method: "DELETE", path: "/dlq/chronicle.unrouted", key: adminKey, body: `{}`, status: 400},
		{name: "purge unknown queue", method: "DELETE", path: "/dlq/chronicle.nothing", key: adminKey, body: `{"all":true}`, status: 404},
		{name: "purge", method: "DELETE", path: "/dlq/chronicle.unrouted", key: adminKey, body: `{"all":true}`, status: 200,
			before: func(t *testing.T, c *contract) { c.waitDeadLetter(t, "chronicle.unrouted") }},
		{name: "read key may not purge", method: "DELETE", path: "/dlq/chronicle.unrouted", key: readKey, body: `{"all":true}`, status: 403},

		// The verifiable log.
		{name: "log key", method: "GET", path: "/log/key", key: readKey, status: 200,
			before: func(t *testing.T, c *contract) { c.waitProvable(t, c.vars["event"], c.vars["doomed"]) }},
		{name: "latest checkpoint", method: "GET", path: "/log/checkpoint", key: readKey, status: 200},
		{name: "latest checkpoint takes no parameter", method: "GET", path: "/log/checkpoint?size=1", key: readKey, status: 400},
		{name: "checkpoints", method: "GET", path: "/log/checkpoints?from=0&limit=5", key: readKey, status: 200},
		{name: "checkpoints from what", method: "GET", path: "/log/checkpoints?from=-1", key: readKey, status: 400, refused: true},
		{name: "consistency", method: "GET", path: "/log/consistency?from=1&to=2", key: readKey, status: 200},
		{name: "consistency backwards", method: "GET", path: "/log/consistency?from=2&to=1", key: readKey, status: 400},
		{name: "consistency beyond the log", method: "GET", path: "/log/consistency?from=1&to=1000000", key: readKey, status: 404},
		{name: "leaves", method: "GET", path: "/log/leaves?from=0&to=2", key: readKey, status: 200},
		{name: "leaves from what", method: "GET", path: "/log/leaves?from=x", key: readKey, status: 400, refused: true},
		{name: "leaves beyond the log", method: "GET", path: "/log/leaves?to=1000000", key: readKey, status: 404},
		{name: "proof", method: "GET", path: "/events/{{event}}/proof", key: readKey, status: 200},
		{name: "an event after the last checkpoint", method: "POST", path: "/events", key: ingestKey, body: event("nina@example.com", "security.login"), status: 202,
			before: func(t *testing.T, c *contract) {
				var cps struct{ Checkpoints []struct{ Size int64 } }
				c.raw(t, "GET", "/log/checkpoints", readKey).json(t, &cps)
				if len(cps.Checkpoints) == 0 {
					t.Fatal("no checkpoint")
				}
				// The log holds at least that many events: the next one is beyond.
				c.vars["size"] = strconv.FormatInt(cps.Checkpoints[len(cps.Checkpoints)-1].Size, 10)
			},
			then: saveID("late")},
		{name: "proof against a tree without it", method: "GET", path: "/events/{{late}}/proof?size={{size}}", key: readKey, status: 409,
			before: func(t *testing.T, c *contract) { c.waitStored(t, c.vars["late"]) }},
		{name: "proof of an unknown event", method: "GET", path: "/events/0190a7a0-0000-7000-8000-000000000000/proof", key: readKey, status: 404},
		{name: "proof size what", method: "GET", path: "/events/{{event}}/proof?size=-1", key: readKey, status: 400, refused: true},
		{name: "receipt", method: "GET", path: "/events/{{event}}/receipt", key: readKey, status: 200},
		{name: "receipt against a tree without it", method: "GET", path: "/events/{{late}}/receipt?size={{size}}", key: readKey, status: 409},
		{name: "receipt size what", method: "GET", path: "/events/{{event}}/receipt?size=x", key: readKey, status: 400, refused: true},
		{name: "receipt of an unknown event", method: "GET", path: "/events/0190a7a0-0000-7000-8000-000000000000/receipt", key: readKey, status: 404},
		{name: "redact", method: "POST", path: "/events/{{doomed}}/redact", key: adminKey, body: `{"reason":"erasure request"}`, status: 200,
			then: func(t *testing.T, c *contract, r response) {
				var e struct {
					Redacted struct {
						RecordID string `json:"record_id"`
					}
				}
				r.json(t, &e)
				c.vars["record"] = e.Redacted.RecordID
			}},
		{name: "redacted event", method: "GET", path: "/events/{{doomed}}", key: readKey, status: 200},
		{name: "redact a redaction's record", method: "POST", path: "/events/{{record}}/redact", key: adminKey, status: 409,
			before: func(t *testing.T, c *contract) { c.waitStored(t, c.vars["record"]) }},
		{name: "redact an unknown event", method: "POST", path: "/events/0190a7a0-0000-7000-8000-000000000000/redact", key: adminKey, body: `{}`, status: 404},
		{name: "redact with a bad body", method: "POST", path: "/events/{{event}}/redact", key: adminKey, body: `{"reason":5}`, status: 400, refused: true},
		{name: "read key may not redact", method: "POST", path: "/events/{{event}}/redact", key: readKey, body: `{}`, status: 403},
		{name: "export", method: "GET", path: "/events/export?format=ndjson&from_seq=0", key: readKey, status: 200,
			then: func(t *testing.T, c *contract, r response) {
				if !bytes.Contains(r.Body, []byte(`"leaf_hash"`)) || !bytes.Contains(r.Body, []byte(`{"trailer":`)) {
					t.Errorf("export without the redacted event's leaf hash or the trailer:\n%s", r.Body)
				}
			}},
		{name: "export a range", method: "GET", path: "/events/export?from_seq=1&to_seq=2", key: readKey, status: 200},
		{name: "export in what format", method: "GET", path: "/events/export?format=xml", key: readKey, status: 400, refused: true},
		{name: "export from what", method: "GET", path: "/events/export?from_seq=abc", key: readKey, status: 400, refused: true},
		{name: "export as CSV, filtered", method: "GET", path: "/events/export?format=csv&event_type=security.login", key: readKey, status: 200,
			then: func(t *testing.T, c *contract, r response) {
				if !bytes.HasPrefix(r.Body, []byte("seq,id,")) || !bytes.Contains(r.Body, []byte("\r\ntrailer,")) {
					t.Errorf("CSV export without its header or trailer row:\n%s", r.Body)
				}
			}},

		// The live tail: the first event, then the test hangs up.
		{name: "stream from the start", method: "GET", path: "/events/stream?from_seq=0&event_type=security.login", key: readKey, status: 200, stream: true,
			then: func(t *testing.T, c *contract, r response) {
				if !bytes.Contains(r.Body, []byte("\ndata: {")) {
					t.Errorf("no event in the stream:\n%s", r.Body)
				}
			}},
		{name: "stream from what", method: "GET", path: "/events/stream?from_seq=abc", key: readKey, status: 400, refused: true},

		// Sinks (a file sink, so nothing leaves the machine).
		{name: "sinks", method: "GET", path: "/sinks", key: adminKey, status: 200,
			then: func(t *testing.T, c *contract, r response) {
				if !bytes.Contains(r.Body, []byte(`"name":"archive"`)) {
					t.Errorf("GET /sinks without the archive sink: %s", r.Body)
				}
			}},
		{name: "replay a sink", method: "POST", path: "/sinks/archive/replay", key: adminKey, body: `{"from":0}`, status: 200},
		{name: "replay an unknown sink", method: "POST", path: "/sinks/nowhere/replay", key: adminKey, body: `{"from":0}`, status: 404},
		{name: "replay from nowhere", method: "POST", path: "/sinks/archive/replay", key: adminKey, body: `{}`, status: 400, refused: true},

		// The console.
		{name: "console", method: "GET", path: "/", status: 200, then: func(t *testing.T, c *contract, r response) { c.vars["etag"] = r.Header.Get("ETag") }},
		{name: "console unchanged", method: "GET", path: "/", header: map[string]string{"If-None-Match": "{{etag}}"}, status: 304},
		{name: "console asset", method: "GET", path: "/console/console.css", status: 200},
		{name: "console icon", method: "GET", path: "/console/favicon.svg", status: 200},
		{name: "console asset unchanged", method: "GET", path: "/console/console.css", header: map[string]string{"If-None-Match": "{{etag}}"}, status: 304,
			before: func(t *testing.T, c *contract) {
				c.vars["etag"] = c.do(t, apiCall{method: "GET", path: "/console/console.css"}).Header.Get("ETag")
			}},
		{name: "no such asset", method: "GET", path: "/console/nothing.js", status: 404},
	}
}

// TestOpenAPIContract drives every operation of the document the real
// service serves, with API keys on and the default SQLite store, and
// validates each request and each answer (status, headers, body) against
// it; then checks that every documented operation succeeded at least
// once.
func TestOpenAPIContract(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	routes := filepath.Join(dir, "security-only.toml")
	writeFile(t, routes, `
[exchanges.audit_events]
type = "topic"
durable = true
[exchanges.dead_letter]
type = "direct"
durable = true
[[routes]]
name = "security_events"
exchange = "audit_events"
queue = "chronicle.security"
routing_key = "security.#"
dead_letter_exchange = "dead_letter"
dead_letter_queue = "chronicle.security.dlq"
[[consumers]]
name = "default"
routes = ["security_events"]
[[sinks]]
name = "archive"
type = "file"
path = "`+filepath.Join(dir, "archive")+`"
`, 0o644)
	p := serve(t, map[string]string{
		"CHRONICLE_CONFIG":              routes,
		"CHRONICLE_API_KEYS":            adminKey + ":admin," + readKey + ":read," + ingestKey + ":ingest",
		"CHRONICLE_CHECKPOINT_INTERVAL": "200ms",
		// The smallest budget: one held upload spends it (503), and one
		// request in flight at a time (429).
		"CHRONICLE_MAX_BUFFERED_BYTES": strconv.Itoa(1 << 20),
		"CHRONICLE_MAX_INFLIGHT":       "1",
	})
	c := newContract(t, p)
	for _, call := range contractCalls() {
		if call.before != nil {
			call.before(t, c)
		}
		r := c.check(t, call)
		if call.then != nil && r.Status == call.status {
			call.then(t, c, r)
		}
	}
	c.keysChecked(t)
	c.budgetSpent(t)
	c.overloaded(t)
	c.outsideTheDocument(t)
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if !c.exercised[method+" "+path] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("documented operations no call got a 2xx or 304 from: %s", strings.Join(missing, ", "))
	}
	var seen []string
	for k, n := range c.statuses {
		seen = append(seen, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(seen)
	t.Logf("%d operations, %d calls validated; statuses seen: %s", len(c.exercised), c.calls, strings.Join(seen, ", "))
	var unseen []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if c.statuses[method+" "+path+" "+code] == 0 {
					unseen = append(unseen, method+" "+path+" "+code)
				}
			}
		}
	}
	slices.Sort(unseen)
	t.Logf("documented answers not provoked here: %s", strings.Join(unseen, ", "))
}

// contract validates calls against the document a service serves.
type contract struct {
	p         *proc
	doc       *openapi3.T
	router    routers.Router
	vars      map[string]string
	exercised map[string]bool
	statuses  map[string]int
	calls     int
}

var registerDecoders sync.Once

func newContract(t *testing.T, p *proc) *contract {
	t.Helper()
	registerDecoders.Do(func() {
		// NDJSON bodies are described as arrays of their lines.
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)
		openapi3filter.RegisterBodyDecoder("application/jsonl", ndjsonDecoder)
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	})
	r := p.do("GET", "/openapi.json", "")
	if r.Status != 200 {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Body)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(r.Body)
	if err != nil {
		t.Fatalf("load the served document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the served document is not valid: %v", err)
	}
	// The service under test is at the address it listens on, whatever
	// the document's default server says.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{p: p, doc: doc, router: router, vars: map[string]string{}, exercised: map[string]bool{}, statuses: map[string]int{}}
}

func ndjsonDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	lines := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", len(lines)+1, err)
		}
		lines = append(lines, v)
	}
	return lines, sc.Err()
}

// bearer is the document's security scheme as the validator checks it: a
// request must carry a Bearer token (whether the key is known and allows
// the call is the server's to say: 401, 403).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no Bearer token")
	}
	return nil
}

func (c *contract) expand(s string) string {
	for k, v := range c.vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

func (c *contract) request(t *testing.T, call apiCall) *http.Request {
	t.Helper()
	req, err := http.NewRequest(call.method, c.p.url+c.expand(call.path), strings.NewReader(c.expand(call.body)))
	if err != nil {
		t.Fatal(err)
	}
	if call.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range call.header {
		req.Header.Set(k, c.expand(v))
	}
	if call.key != "" {
		req.Header.Set("Authorization", "Bearer "+call.key)
	}
	return req
}

// check sends call and validates it and its answer.
func (c *contract) check(t *testing.T, call apiCall) response {
	t.Helper()
	req := c.request(t, call)
	ctx, cancel := context.WithTimeout(req.Context(), 20*time.Second)
	defer cancel()
	req = req.WithContext(ctx)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", call.name, call.method, call.path, err)
	}
	var body []byte
	if call.stream && resp.StatusCode == http.StatusOK {
		body, err = firstMessage(resp.Body)
	} else {
		body, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: read the answer: %v", call.name, err)
	}
	r := response{resp.StatusCode, resp.Header, body}
	if r.Status != call.status {
		t.Errorf("%s: %s %s: got %d %.300s; want %d", call.name, call.method, req.URL.RequestURI(), r.Status, r.Body, call.status)
	}
	c.validate(t, call, r)
	return r
}

// firstMessage reads a Server-Sent Events stream up to the end of its
// first message with data.
func firstMessage(r io.Reader) ([]byte, error) {
	var out []byte
	br := bufio.NewReader(r)
	data := false
	for {
		line, err := br.ReadBytes('\n')
		out = append(out, line...)
		if err != nil {
			return out, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("data:")):
			data = true
		case data && len(bytes.TrimSpace(line)) == 0:
			return out, nil
		}
	}
}

// validate checks call's request and its answer r against the document.
func (c *contract) validate(t *testing.T, call apiCall, r response) {
	t.Helper()
	c.validateAnswer(t, call, r, true)
}

func (c *contract) validateAnswer(t *testing.T, call apiCall, r response, request bool) {
	t.Helper()
	req := c.request(t, call) // a fresh body to read
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s: %s %s is not in the document: %v", call.name, call.method, call.path, err)
		return
	}
	op := call.method + " " + route.Path
	if r.Status < 400 {
		c.exercised[op] = true // an operation counts once it has succeeded
	}
	c.statuses[op+" "+strconv.Itoa(r.Status)]++
	c.calls++
	opts := &openapi3filter.Options{AuthenticationFunc: bearer, SkipSettingDefaults: true, MultiError: true,
		IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	err = nil
	if request {
		err = openapi3filter.ValidateRequest(context.Background(), in)
	}
	switch {
	case !request:
	case call.refused && err == nil:
		t.Errorf("%s: the document accepts %s %s %.200s, which the test says it refuses", call.name, call.method, call.path, call.body)
	case !call.refused && err != nil:
		t.Errorf("%s: request not valid by the document: %v", call.name, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.Status, Header: r.Header, Options: opts}
	out.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: %s %s answered %d, not as the document says: %v\nbody: %.500s", call.name, call.method, call.path, r.Status, err, r.Body)
	}
}

// raw sends a request with key outside the table, for waiting.
func (c *contract) raw(t *testing.T, method, path, key string) response {
	t.Helper()
	req, err := http.NewRequest(method, c.p.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, body}
}

func (c *contract) waitStored(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		eventually(t, 10*time.Second, "event "+id+" stored", func() bool { return c.raw(t, "GET", "/events/"+id, readKey).Status == 200 })
	}
}

func (c *contract) waitProvable(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		eventually(t, 15*time.Second, "event "+id+" provable", func() bool { return c.raw(t, "GET", "/events/"+id+"/proof", readKey).Status == 200 })
	}
}

func (c *contract) waitDeadLetter(t *testing.T, queue string) {
	t.Helper()
	eventually(t, 10*time.Second, "a dead letter on "+queue, func() bool {
		var qs []struct {
			Queue string
			Depth int
		}
		c.raw(t, "GET", "/dlq", adminKey).json(t, &qs)
		for _, q := range qs {
			if q.Queue == queue && q.Depth > 0 {
				return true
			}
		}
		return false
	})
}

// overloaded provokes 429: concurrent batches against one request slot
// (CHRONICLE_MAX_INFLIGHT=1), until one is refused; bounded in rounds and
// time.
func (c *contract) overloaded(t *testing.T) {
	t.Helper()
	var lines strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&lines, `{"actor":"load-%d@example.com","action":"login","resource_type":"security","resource_id":"s"}`+"\n", i)
	}
	call := apiCall{name: "too many in flight", method: "POST", path: "/events", key: ingestKey,
		header: map[string]string{"Content-Type": "application/x-ndjson"}, body: lines.String(), status: 429}
	deadline := time.Now().Add(30 * time.Second)
	var (
		mu      sync.Mutex
		refused *response
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for round := 0; round < 50 && time.Now().Before(deadline); round++ {
				mu.Lock()
				done := refused != nil
				mu.Unlock()
				if done {
					return
				}
				resp, err := client.Do(c.request(t, call))
				if err != nil {
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 429 {
					mu.Lock()
					refused = &response{resp.StatusCode, resp.Header, body}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if refused == nil {
		t.Error("4 senders of 1000-event batches against one request slot: none refused with 429")
		return
	}
	c.validate(t, call, *refused)
}

// keysChecked sends every operation that needs a key without one (401)
// and, unless any key will do, with a key of another scope (403), and
// validates the answers.
func (c *contract) keysChecked(t *testing.T) {
	t.Helper()
	other := map[string]string{"ingest": readKey, "read": ingestKey, "admin": readKey}
	fill := strings.NewReplacer("{id}", "0190a7a0-0000-7000-8000-000000000000", "{key}", "acme", "{queue}", "chronicle.unrouted", "{name}", "archive")
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			scope, _ := op.Extensions["x-chronicle-scope"].(string)
			if scope == "none" {
				continue
			}
			call := apiCall{name: "no key", method: method, path: fill.Replace(path), status: 401}
			c.checkAnswer(t, call, c.do(t, call))
			if key, ok := other[scope]; ok {
				call = apiCall{name: "key of another scope", method: method, path: fill.Replace(path), key: key, status: 403}
				c.checkAnswer(t, call, c.do(t, call))
			}
		}
	}
}

// checkAnswer checks r's status and validates it, but not call's request
// (which may lack what the operation takes: it is refused first).
func (c *contract) checkAnswer(t *testing.T, call apiCall, r response) {
	t.Helper()
	if r.Status != call.status {
		t.Errorf("%s: %s %s: got %d %.300s; want %d", call.name, call.method, call.path, r.Status, r.Body, call.status)
	}
	c.validateAnswer(t, call, r, false)
}

// budgetSpent provokes 503: one upload that holds the whole body budget
// (CHRONICLE_MAX_BUFFERED_BYTES, 1 MiB) leaves none for the next request.
// The upload holds it only once the server has read it; until then other
// requests succeed, so they are sent until one is refused (bounded).
func (c *contract) budgetSpent(t *testing.T) {
	t.Helper()
	events := apiCall{name: "body budget spent", method: "POST", path: "/events", key: ingestKey,
		body: `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`, status: 503}
	entity := apiCall{name: "body budget spent", method: "POST", path: "/entities", key: adminKey, body: `{"key":"initech","name":"Initech"}`, status: 503}
	for hold := 0; hold < 5; hold++ {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(c.p.url, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ingestKey, 1<<20)
		conn.Write(bytes.Repeat([]byte(" "), 768<<10))
		time.Sleep(50 * time.Millisecond) // for the server to read it
		for try := 0; try < 50; try++ {
			r := c.do(t, events)
			if r.Status == 503 {
				c.validate(t, events, r)
				// The upload still holds the budget.
				c.check(t, entity)
				conn.Close()
				return
			}
			// The upload itself refused (another request's body still
			// held a part of the budget): hold again.
			conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if res, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				t.Logf("the held upload got %d; holding again", res.StatusCode)
				break
			}
		}
		conn.Close()
	}
	t.Error("an upload that holds the whole body budget: no request refused with 503")
}

// do sends call and returns the answer, unchecked.
func (c *contract) do(t *testing.T, call apiCall) response {
	t.Helper()
	resp, err := client.Do(c.request(t, call))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, body}
}

// outsideTheDocument checks the answers to what no operation is: a wrong
// method (405 with Allow) and an unknown path (404, 401 without a key),
// each with the document's error body and request id.
func (c *contract) outsideTheDocument(t *testing.T) {
	t.Helper()
	errSchema := c.doc.Components.Schemas["Error"].Value
	for _, call := range []apiCall{
		{name: "wrong method", method: "PUT", path: "/events", key: readKey, status: 405},
		{name: "unknown path", method: "GET", path: "/nothing/here", key: readKey, status: 404},
		{name: "unknown path without a key", method: "GET", path: "/nothing/here", status: 401},
	} {
		r := c.do(t, call)
		var body any
		err := json.Unmarshal(r.Body, &body)
		if err == nil {
			err = errSchema.VisitJSON(body, openapi3.EnableJSONSchema2020())
		}
		switch {
		case r.Status != call.status:
			t.Errorf("%s: got %d %s; want %d", call.name, r.Status, r.Body, call.status)
		case err != nil:
			t.Errorf("%s: body %s is not the document's Error: %v", call.name, r.Body, err)
		case r.Header.Get("X-Request-Id") == "":
			t.Errorf("%s: no X-Request-Id", call.name)
		case call.status == 405 && r.Header.Get("Allow") != "GET, HEAD, POST":
			t.Errorf("%s: Allow %q", call.name, r.Header.Get("Allow"))
		}
	}
}
