package transporttest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/routing"
)

// poison publishes n messages that consumers reject (not JSON) and waits
// until the catch-all DLQ holds them; it returns their IDs in order.
func poison(t *testing.T, gw Gateway, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := "poison-" + string(rune('a'+i))
		publishMessage(t, gw, chronicle.Message{ID: id, Type: "document.viewed", Body: []byte("not json " + id)})
		ids = append(ids, id)
	}
	Eventually(t, 10*time.Second, "the poison messages dead-lettered", func() bool {
		return len(deadLetters(t, gw, "chronicle.all.dlq")) == n
	})
	return ids
}

func dlqIDs(t *testing.T, gw Gateway, q string) []string {
	var out []string
	for _, d := range deadLetters(t, gw, q) {
		out = append(out, d.ID)
	}
	return out
}

func testPeek(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, gw, 4)
	d := gw
	for range 3 {
		got, err := d.PeekDeadLetters(t.Context(), "chronicle.all.dlq", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
			t.Fatalf("peek 2 = %+v", got)
		}
		if !strings.HasPrefix(got[0].Reason, "parse error") || got[0].Queue != "chronicle.all" || got[0].Count != 1 || got[0].Payload != "not json poison-a" {
			t.Fatalf("dead letter = %+v", got[0])
		}
	}
	// Depth and order unchanged.
	if got := dlqIDs(t, gw, "chronicle.all.dlq"); !slices.Equal(got, ids) {
		t.Fatalf("after peeks the DLQ holds %v, want %v", got, ids)
	}
	qs, _ := d.DeadLetterQueues(t.Context())
	for _, q := range qs {
		if q.Name == "chronicle.all.dlq" && q.Depth != 4 {
			t.Fatalf("DLQ depth %d after peeks", q.Depth)
		}
	}
	if _, err := d.PeekDeadLetters(t.Context(), "chronicle.all", 1); err == nil {
		t.Fatal("peek on a route queue accepted")
	}
}

// rejectBob is a consumer version with a bug: it refuses bob's events.
func rejectBob(m *chronicle.Message) (*chronicle.Event, string) {
	e, reason := ingest.Check(m)
	if reason == "" && e.Actor == "bob@example.com" {
		return nil, "processing error: bob is not supported"
	}
	return e, reason
}

func testReplayFixed(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	buggy := newGW(singleRoute(t), rec, Options{Check: rejectBob})
	if err := buggy.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	bob := NewEvent("user.login")
	bob.Actor = "bob@example.com"
	alice := NewEvent("user.login")
	publish(t, buggy, bob, alice)
	Eventually(t, 10*time.Second, "bob's event dead-lettered", func() bool {
		return len(deadLetters(t, buggy, "chronicle.all.dlq")) == 1 && rec.Stored(alice.ID)
	})
	closeGW(t, buggy)

	// The fixed version replays it: stored once, the DLQ empty.
	fixed := newGW(singleRoute(t), rec, Options{})
	if err := fixed.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	n, err := fixed.ReplayDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{IDs: []string{bob.ID}, By: "ops-key"})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	Eventually(t, 10*time.Second, "the replayed event stored", func() bool { return rec.Stored(bob.ID) })
	// Its history tells the story: consumed, dead-lettered with the
	// reason, replayed by whom, consumed again, stored.
	var story []string
	for _, hop := range storedHistory(t, rec, bob.ID, 1) {
		story = append(story, hop.Hop)
		if hop.Hop == chronicle.HopDeadLettered && hop.Reason != "processing error: bob is not supported" ||
			hop.Hop == chronicle.HopReplayed && (hop.By != "ops-key" || hop.Queue != "chronicle.all") {
			t.Errorf("hop = %+v", hop)
		}
	}
	if want := []string{"published", "consumed", "dead_lettered", "replayed", "consumed", "stored"}; !slices.Equal(story, want) {
		t.Fatalf("history of a replayed event: %v, want %v", story, want)
	}
	time.Sleep(200 * time.Millisecond)
	if got := rec.Deliveries(bob.ID); got != 1 {
		t.Fatalf("replayed event handed to the store %d times, want 1", got)
	}
	if got := dlqIDs(t, fixed, "chronicle.all.dlq"); len(got) != 0 {
		t.Fatalf("DLQ still holds %v", got)
	}
}

func testReplayBroken(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, gw, 1)
	n, err := gw.ReplayDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	var dl []chronicle.DeadLetter
	Eventually(t, 10*time.Second, "the message back in the DLQ with count 2", func() bool {
		dl = deadLetters(t, gw, "chronicle.all.dlq")
		return len(dl) == 1 && dl[0].Count == 2
	})
	if dl[0].ID != ids[0] || dl[0].Queue != "chronicle.all" || !strings.HasPrefix(dl[0].Reason, "parse error") {
		t.Fatalf("dead letter after a second death = %+v", dl[0])
	}
	first := dl[0].FirstDeathAt
	if first.IsZero() {
		t.Fatal("first death time lost")
	}
}

func testReplayUnrouted(t *testing.T, newGW NewGateway, h Harness) {
	narrow, err := routing.Parse([]byte(`
[exchanges.audit_events]
type = "topic"
durable = true
[[routes]]
name = "security_only"
exchange = "audit_events"
queue = "chronicle.security.only"
routing_key = "security.#"
[[consumers]]
name = "default"
routes = ["security_only"]
`), "narrow.toml")
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	first := newGW(narrow, rec, Options{})
	e := NewEvent("billing.charge")
	publish(t, first, e)
	Eventually(t, 10*time.Second, "the event unrouted", func() bool { return len(deadLetters(t, first, routing.UnroutedQueue)) == 1 })
	closeGW(t, first)

	// The configuration gains a route for it; replaying routes it there.
	wide := newGW(routing.Default(), rec, Options{})
	if err := wide.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	if n, err := wide.ReplayDeadLetters(t.Context(), routing.UnroutedQueue, chronicle.Selection{}); err != nil || n != 1 {
		t.Fatalf("replay unrouted = %d, %v", n, err)
	}
	Eventually(t, 10*time.Second, "the replayed event stored", func() bool { return rec.Stored(e.ID) })
}

func testPurge(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, gw, 3)
	d := gw
	n, err := d.PurgeDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{IDs: []string{ids[1]}})
	if err != nil || n != 1 {
		t.Fatalf("purge by id = %d, %v", n, err)
	}
	if got := dlqIDs(t, gw, "chronicle.all.dlq"); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("after purging %s the DLQ holds %v", ids[1], got)
	}
	if n, err := d.PurgeDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{}); err != nil || n != 2 {
		t.Fatalf("purge all = %d, %v", n, err)
	}
	if got := dlqIDs(t, gw, "chronicle.all.dlq"); len(got) != 0 {
		t.Fatalf("after purging all the DLQ holds %v", got)
	}
}

// A message that arrives without an id still gets one when it dies, the
// same at every peek, so that it can be purged or replayed by id alone.
func testDeadLetterWithoutID(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	publishMessage(t, gw, chronicle.Message{Type: "document.viewed", Body: []byte("no id, not json 1")})
	publishMessage(t, gw, chronicle.Message{Type: "document.viewed", Body: []byte("no id, not json 2")})
	Eventually(t, 10*time.Second, "both dead-lettered", func() bool { return len(deadLetters(t, gw, "chronicle.all.dlq")) == 2 })
	first := dlqIDs(t, gw, "chronicle.all.dlq")
	if first[0] == "" || first[1] == "" || first[0] == first[1] {
		t.Fatalf("dead letters without ids were given %q", first)
	}
	if again := dlqIDs(t, gw, "chronicle.all.dlq"); !slices.Equal(again, first) {
		t.Fatalf("ids changed between peeks: %q then %q", first, again)
	}
	n, err := gw.PurgeDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{IDs: []string{first[1]}})
	if err != nil || n != 1 {
		t.Fatalf("purge by id = %d, %v", n, err)
	}
	left := deadLetters(t, gw, "chronicle.all.dlq")
	if len(left) != 1 || left[0].ID != first[0] || left[0].Payload != "no id, not json 1" {
		t.Fatalf("after purging %s the DLQ holds %+v", first[1], left)
	}
}
