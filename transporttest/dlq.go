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

func dlc(t *testing.T, gw chronicle.Gateway) chronicle.DeadLetterChannel {
	t.Helper()
	d, ok := gw.(chronicle.DeadLetterChannel)
	if !ok {
		t.Fatalf("%T is not a chronicle.DeadLetterChannel", gw)
	}
	return d
}

// poison publishes n messages that consumers reject (not JSON) and waits
// until the catch-all DLQ holds them; it returns their IDs in order.
func poison(t *testing.T, h Harness, gw chronicle.Gateway, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := "poison-" + string(rune('a'+i))
		h.PublishMessage(t, gw, chronicle.Message{ID: id, Type: "document.viewed", Body: []byte("not json " + id)})
		ids = append(ids, id)
	}
	Eventually(t, 10*time.Second, "the poison messages dead-lettered", func() bool {
		return len(h.DeadLetters(t, gw, "chronicle.all.dlq")) == n
	})
	return ids
}

func dlqIDs(t *testing.T, h Harness, gw chronicle.Gateway, q string) []string {
	var out []string
	for _, d := range h.DeadLetters(t, gw, q) {
		out = append(out, d.ID)
	}
	return out
}

func testPeek(t *testing.T, h Harness) {
	gw := h.New(t, singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, h, gw, 4)
	d := dlc(t, gw)
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
	if got := dlqIDs(t, h, gw, "chronicle.all.dlq"); !slices.Equal(got, ids) {
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
func rejectBob(body []byte) (*chronicle.Event, string) {
	e, reason := ingest.Check(body)
	if reason == "" && e.Actor == "bob@example.com" {
		return nil, "processing error: bob is not supported"
	}
	return e, reason
}

func testReplayFixed(t *testing.T, h Harness) {
	rec := NewRecorder()
	buggy := h.New(t, singleRoute(t), rec, Options{Check: rejectBob})
	if err := buggy.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	bob := NewEvent("user.login")
	bob.Actor = "bob@example.com"
	alice := NewEvent("user.login")
	publish(t, buggy, bob, alice)
	Eventually(t, 10*time.Second, "bob's event dead-lettered", func() bool {
		return len(h.DeadLetters(t, buggy, "chronicle.all.dlq")) == 1 && rec.Stored(alice.ID)
	})
	closeGW(t, buggy)

	// The fixed version replays it: stored once, the DLQ empty.
	fixed := h.New(t, singleRoute(t), rec, Options{})
	if err := fixed.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	n, err := dlc(t, fixed).ReplayDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{IDs: []string{bob.ID}})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	Eventually(t, 10*time.Second, "the replayed event stored", func() bool { return rec.Stored(bob.ID) })
	time.Sleep(200 * time.Millisecond)
	if got := rec.Deliveries(bob.ID); got != 1 {
		t.Fatalf("replayed event handed to the store %d times, want 1", got)
	}
	if got := dlqIDs(t, h, fixed, "chronicle.all.dlq"); len(got) != 0 {
		t.Fatalf("DLQ still holds %v", got)
	}
}

func testReplayBroken(t *testing.T, h Harness) {
	gw := h.New(t, singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, h, gw, 1)
	n, err := dlc(t, gw).ReplayDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	var dl []chronicle.DeadLetter
	Eventually(t, 10*time.Second, "the message back in the DLQ with count 2", func() bool {
		dl = h.DeadLetters(t, gw, "chronicle.all.dlq")
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

func testReplayUnrouted(t *testing.T, h Harness) {
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
	first := h.New(t, narrow, rec, Options{})
	e := NewEvent("billing.charge")
	publish(t, first, e)
	Eventually(t, 10*time.Second, "the event unrouted", func() bool { return len(h.DeadLetters(t, first, routing.UnroutedQueue)) == 1 })
	closeGW(t, first)

	// The configuration gains a route for it; replaying routes it there.
	wide := h.New(t, routing.Default(), rec, Options{})
	if err := wide.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	if n, err := dlc(t, wide).ReplayDeadLetters(t.Context(), routing.UnroutedQueue, chronicle.Selection{}); err != nil || n != 1 {
		t.Fatalf("replay unrouted = %d, %v", n, err)
	}
	Eventually(t, 10*time.Second, "the replayed event stored", func() bool { return rec.Stored(e.ID) })
}

func testPurge(t *testing.T, h Harness) {
	gw := h.New(t, singleRoute(t), NewRecorder(), Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	ids := poison(t, h, gw, 3)
	d := dlc(t, gw)
	n, err := d.PurgeDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{IDs: []string{ids[1]}})
	if err != nil || n != 1 {
		t.Fatalf("purge by id = %d, %v", n, err)
	}
	if got := dlqIDs(t, h, gw, "chronicle.all.dlq"); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("after purging %s the DLQ holds %v", ids[1], got)
	}
	if n, err := d.PurgeDeadLetters(t.Context(), "chronicle.all.dlq", chronicle.Selection{}); err != nil || n != 2 {
		t.Fatalf("purge all = %d, %v", n, err)
	}
	if got := dlqIDs(t, h, gw, "chronicle.all.dlq"); len(got) != 0 {
		t.Fatalf("after purging all the DLQ holds %v", got)
	}
}
