package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const seedEvent = `{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123"}`

// The original system's end-to-end scenario, from its README.
func TestSeedScenario(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	p.do("GET", "/health", "").expect(t, 200, `"status":"healthy","transport":"inproc","store":"sqlite","entities":0`)

	var created struct{ Status, ID string }
	r := p.do("POST", "/events", seedEvent)
	r.expect(t, 202, `"status":"accepted"`)
	r.json(t, &created)
	eventually(t, 5*time.Second, "the event listed", func() bool {
		evs := p.allEvents("")
		return len(evs) == 1 && evs[0].ID == created.ID && evs[0].EventType == "security.login"
	})

	for i := range 5 {
		p.do("POST", "/events", fmt.Sprintf(`{"actor":"user%d@example.com","action":"created","resource_type":"user","resource_id":"u-%d"}`, i, i)).expect(t, 202, "accepted")
	}
	eventually(t, 5*time.Second, "six events listed", func() bool { return len(p.allEvents("")) == 6 })

	p.do("POST", "/events", `{not json`).expect(t, 400, `"error":"invalid JSON`)
	p.do("GET", "/nowhere", "").expect(t, 404, `"error":"not found: /nowhere"`)
	p.do("GET", fmt.Sprintf("/events/%s", created.ID), "").expect(t, 200, created.ID)
}

func TestEntitiesEnrichment(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	p.do("POST", "/entities", `{"key":"org:acme","name":"Acme Corp","metadata":{"tier":"enterprise","region":"us-west"}}`).expect(t, 201, `"status":"created"`)
	var created struct{ ID string }
	p.do("POST", "/events", `{"actor":"a@acme.com","action":"login","resource_type":"security","resource_id":"s","entity_key":"org:acme","metadata":{"region":"eu"}}`).json(t, &created)
	eventually(t, 5*time.Second, "the event stored", func() bool { return p.do("GET", "/events/"+created.ID, "").Status == 200 })
	var e event
	p.do("GET", "/events/"+created.ID, "").json(t, &e)
	if e.Metadata["entity_name"] != "Acme Corp" || e.Metadata["tier"] != "enterprise" || e.Metadata["region"] != "eu" {
		t.Fatalf("enriched metadata = %v", e.Metadata)
	}
	p.do("GET", "/health", "").expect(t, 200, `"entities":1`)
	p.do("GET", "/entities/org:nope", "").expect(t, 404, `{"error":"Entity not found: org:nope"}`)
	p.do("DELETE", "/entities/org:acme", "").expect(t, 200, `"status":"deleted"`)
}

func TestFiltersAndPagination(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	types := []string{"security", "user", "billing"}
	for i := range 30 {
		body := fmt.Sprintf(`{"actor":"Actor%d@Example.com","action":"act%d","resource_type":"%s","resource_id":"r-%d","correlation_id":"batch-%d"}`, i%3, i%2, types[i%3], i, i%5)
		p.do("POST", "/events", body).expect(t, 202, "accepted")
	}
	eventually(t, 5*time.Second, "30 events", func() bool { return len(p.allEvents("")) == 30 })
	for query, want := range map[string]int{
		"actor=actor1@example.com": 10, "actor=ACTOR1@example.com": 10, "event_type=billing.act1": 5,
		"resource_type=user": 10, "resource_id=r-7": 1, "correlation_id=batch-2": 6, "action=act0": 15,
	} {
		if got := len(p.allEvents(query)); got != want {
			t.Errorf("%s: %d events, want %d", query, got, want)
		}
	}
	// Pages of 7 add up to every event, newest first, no repeats.
	seen := map[string]bool{}
	next, pages, last := "/events?limit=7", 0, ""
	for next != "" {
		r := p.do("GET", next, "")
		var page []event
		r.json(t, &page)
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("event %s on two pages", e.ID)
			}
			seen[e.ID] = true
			if last != "" && e.Timestamp > last {
				t.Fatalf("not newest first: %s after %s", e.Timestamp, last)
			}
			last = e.Timestamp
		}
		pages++
		next = strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("Link"), "<"), `>; rel="next"`)
	}
	if len(seen) != 30 || pages != 5 {
		t.Fatalf("%d events over %d pages", len(seen), pages)
	}
	p.do("GET", "/events?limit=5000", "").expect(t, 400, "limit must be")
	p.do("GET", "/events?since=not-a-time", "").expect(t, 400, "since must be an RFC 3339 time")
	p.do("GET", "/events?cursor=garbage", "").expect(t, 400, "invalid cursor")
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	p.do("POST", "/events", `{"action":"a","resource_type":"b","resource_id":"c"}`).expect(t, 400, `missing required field \"actor\"`)
	p.do("POST", "/events", `{"actor":"","action":"a","resource_type":"b","resource_id":"c"}`).expect(t, 422, `{"error":"validation_failed","reason":"actor is required"}`)
	p.do("POST", "/events", `{"actor":"a","action":"  ","resource_type":"b","resource_id":"c"}`).expect(t, 422, `"reason":"action is required"`)
	p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"","resource_id":"c"}`).expect(t, 422, `"reason":"resource_type is required"`)
	p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"Not Valid"}`).expect(t, 422, `event_type must be`)
	p.do("POST", "/events", strings.Repeat(" ", 2<<20)).expect(t, 413, `larger than`)
	r := p.do("DELETE", "/events", "")
	r.expect(t, 405, `"error"`)
	if r.Header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	if evs := p.allEvents(""); len(evs) != 0 {
		t.Fatalf("bad input stored %d events", len(evs))
	}
}

func TestBadConfigurationRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CHRONICLE_PORT": "eighty"}, `CHRONICLE_PORT="eighty": must be an integer`},
		{map[string]string{"CHRONICLE_TRANSPORT": "carrier-pigeon"}, `CHRONICLE_TRANSPORT="carrier-pigeon"`},
		{map[string]string{"CHRONICLE_MODE": "producer"}, `needs a transport shared between processes`},
		{map[string]string{"CHRONICLE_CONSUMER_ROLE": "ghost"}, `CHRONICLE_CONSUMER_ROLE="ghost": is not a consumer role`},
		{map[string]string{"CHRONICLE_CONFIG": "/does/not/exist.toml"}, `CHRONICLE_CONFIG: read routing configuration`},
	} {
		p := run(t, tt.env, "serve")
		if code := p.wait(10 * time.Second); code != 2 {
			t.Errorf("%v: exit code %d, want 2", tt.env, code)
		}
		if !strings.Contains(p.stderr.String(), tt.want) {
			t.Errorf("%v: stderr %q does not say %q", tt.env, p.stderr.String(), tt.want)
		}
	}
	// A routing file with the original system's shared fanout dead-letter exchange.
	dir := t.TempDir()
	path := filepath.Join(dir, "fanout.toml")
	os.WriteFile(path, []byte(`
[exchanges.audit_events]
type = "topic"
durable = true
[exchanges.dead_letter]
type = "fanout"
durable = true
[[routes]]
name = "security_events"
exchange = "audit_events"
queue = "chronicle.security"
routing_key = "security.#"
dead_letter_exchange = "dead_letter"
dead_letter_queue = "chronicle.security.dlq"
[[routes]]
name = "user_events"
exchange = "audit_events"
queue = "chronicle.users"
routing_key = "user.#"
dead_letter_exchange = "dead_letter"
dead_letter_queue = "chronicle.users.dlq"
[[consumers]]
name = "default"
routes = ["security_events", "user_events"]
`), 0o644)
	p := run(t, map[string]string{"CHRONICLE_CONFIG": path}, "serve")
	if code := p.wait(10 * time.Second); code != 2 || !strings.Contains(p.stderr.String(), `dead_letter_exchange "dead_letter" is a fanout exchange shared by chronicle.security.dlq, chronicle.users.dlq`) {
		t.Fatalf("exit %d, stderr %s", code, p.stderr.String())
	}
}

// Events that got 202 survive a stop and a restart on the same file, exactly
// once: gracefully (SIGTERM drains the queues) and by kill -9 (the journal
// has them).
func TestRestartDurability(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "chronicle.db")
			env := map[string]string{"CHRONICLE_SQLITE_PATH": db}
			p := serve(t, env)
			accepted := postConcurrently(t, p, 16, 40)
			code := p.stop(sig, 60*time.Second)
			if sig == syscall.SIGTERM && code != 0 {
				t.Fatalf("SIGTERM: exit code %d, want 0\n%s", code, p.stderr.String())
			}
			q := serve(t, env)
			eventually(t, 30*time.Second, "every accepted event stored", func() bool {
				return len(q.allEvents("")) >= len(accepted)
			})
			got := q.allEvents("")
			ids := map[string]int{}
			for _, e := range got {
				ids[e.ID]++
			}
			for _, id := range accepted {
				if ids[id] != 1 {
					t.Fatalf("accepted event %s stored %d times", id, ids[id])
				}
			}
			if len(got) != len(accepted) {
				t.Fatalf("stored %d events, accepted %d", len(got), len(accepted))
			}
			t.Logf("%s: accepted %d, stored %d after restart", sig, len(accepted), len(got))
		})
	}
}

// postConcurrently posts workers×each events at once, waiting for every
// answer, and returns the accepted IDs.
func postConcurrently(t *testing.T, p *proc, workers, each int) []string {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r, err := p.try("POST", "/events", fmt.Sprintf(`{"actor":"w%d@example.com","action":"created","resource_type":"user","resource_id":"%d"}`, w, i))
				if err != nil || r.Status != 202 {
					t.Errorf("post: %v %d %s", err, r.Status, r.Body)
					return
				}
				var a struct{ ID string }
				r.json(t, &a)
				mu.Lock()
				ids = append(ids, a.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids
}

// kill -9 while requests are in flight: every event that got 202 is there
// after the restart, once.
func TestKillDuringFlood(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "chronicle.db")
	env := map[string]string{"CHRONICLE_SQLITE_PATH": db}
	p := serve(t, env)
	stop := make(chan struct{})
	var accepted []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := p.try("POST", "/events", fmt.Sprintf(`{"actor":"w%d@example.com","action":"login","resource_type":"security","resource_id":"%d"}`, w, i))
				if err != nil {
					return // the process is gone
				}
				if r.Status == 202 {
					var a struct{ ID string }
					r.json(t, &a)
					mu.Lock()
					accepted = append(accepted, a.ID)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	p.stop(syscall.SIGKILL, 10*time.Second)
	close(stop)
	wg.Wait()
	q := serve(t, env)
	eventually(t, 30*time.Second, "every accepted event stored", func() bool { return len(q.allEvents("")) >= len(accepted) })
	ids := map[string]int{}
	got := q.allEvents("")
	for _, e := range got {
		ids[e.ID]++
	}
	for _, id := range accepted {
		if ids[id] != 1 {
			t.Fatalf("accepted event %s stored %d times after kill -9", id, ids[id])
		}
	}
	// Requests cut off by the kill may have been journaled without their
	// 202 reaching the client: stored, never more than once.
	if len(got) > len(accepted)+16 {
		t.Fatalf("stored %d events for %d accepted and at most 16 in flight", len(got), len(accepted))
	}
	t.Logf("kill -9 mid-flood: accepted %d, stored %d", len(accepted), len(got))
}

// An Idempotency-Key holds across a restart: the retry gets the same id
// and nothing new is stored; another body with the key is a conflict.
func TestIdempotencyAcrossRestart(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db")}
	post := func(p *proc, body string) response {
		req, _ := http.NewRequest("POST", p.url+"/events", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "payment-7731")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, b}
	}
	p := serve(t, env)
	first := post(p, seedEvent)
	first.expect(t, 202, "accepted")
	p.stop(syscall.SIGTERM, 30*time.Second)
	q := serve(t, env)
	again := post(q, seedEvent)
	again.expect(t, 202, "accepted")
	if string(again.Body) != string(first.Body) {
		t.Fatalf("after a restart the retry got %s, the first attempt %s", again.Body, first.Body)
	}
	post(q, `{"actor":"mallory@example.com","action":"login","resource_type":"security","resource_id":"x"}`).expect(t, 409, "already used with a different request body")
	eventually(t, 5*time.Second, "the event stored", func() bool { return len(q.allEvents("")) >= 1 })
	if n := len(q.allEvents("")); n != 1 {
		t.Fatalf("%d events stored for one idempotent event", n)
	}
}
