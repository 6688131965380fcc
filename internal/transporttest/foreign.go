package transporttest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/routing"
)

// clientBody is an event as a client POSTs it, and as a foreign producer
// publishes it.
const clientBody = `{"actor":" Alice@Example.com ","action":"login","resource_type":"auth","resource_id":"s-1"}`

// A foreign message (published straight to the exchange, without
// Chronicle's envelope) is run through the ingestion pipeline: its id is
// its message id, its time its timestamp, its event_type its routing key.
// Both routes' copies store one event, whose history says the consumer
// accepted it and whose clock set the time.
func testForeignStoredOnce(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	publishMessage(t, gw, chronicle.Message{ID: id, Type: "security.login", Body: []byte(clientBody), Timestamp: at})
	hops := storedHistory(t, rec, id, 2)
	e, err := rec.Event(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Actor != "alice@example.com" || e.EventType != "security.login" || !e.Timestamp.Equal(at) || e.CorrelationID != id {
		t.Fatalf("stored %+v", e)
	}
	var accepted []chronicle.Hop
	for _, hop := range hops {
		if hop.Hop == chronicle.HopAccepted {
			accepted = append(accepted, hop)
		}
	}
	// Both routes' accepted hops are alike (same process, same time):
	// the history holds one.
	if len(accepted) != 1 || accepted[0].Clock != chronicle.ClockAMQP || !accepted[0].At.Equal(at) || accepted[0].Process != Process {
		t.Fatalf("accepted hops %+v in %+v", accepted, hops)
	}
	time.Sleep(100 * time.Millisecond)
	if n := rec.Deliveries(id); n != 2 {
		t.Fatalf("the store got %d copies, want one per route", n)
	}
}

// A foreign message without a message id is dead-lettered on every route
// for that reason; the id its dead letter is given never becomes an
// event's, however often it is replayed.
func testForeignWithoutID(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	publishMessage(t, gw, chronicle.Message{Type: "security.login", Body: []byte(clientBody)})
	const reason = "missing message_id: AMQP message_id is required: it is the event's id"
	for _, q := range []string{"chronicle.all.dlq", "chronicle.security.dlq"} {
		Eventually(t, 10*time.Second, "the message dead-lettered in "+q, func() bool { return len(deadLetters(t, gw, q)) == 1 })
		if d := deadLetters(t, gw, q)[0]; !strings.HasPrefix(d.Reason, reason) || d.RoutingKey != "security.login" {
			t.Fatalf("%s: %+v", q, d)
		}
		if n, err := gw.ReplayDeadLetters(t.Context(), q, chronicle.Selection{}); err != nil || n != 1 {
			t.Fatalf("replay %s = %d, %v", q, n, err)
		}
	}
	for _, q := range []string{"chronicle.all.dlq", "chronicle.security.dlq"} {
		Eventually(t, 10*time.Second, "the replayed message dead again in "+q, func() bool {
			dl := deadLetters(t, gw, q)
			return len(dl) == 1 && dl[0].Count == 2
		})
	}
	if n, _ := rec.CountEvents(t.Context(), chronicle.EventFilter{}); n != 0 {
		t.Fatalf("%d events stored from a message without an id", n)
	}
}

// A foreign message dead-lettered for a fault of the consumer, replayed
// once that is fixed, keeps the routing key it was published with as its
// event_type (a replay reaches its queue through the default exchange,
// whose routing key is the queue's name).
func testForeignReplayed(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	buggy := newGW(routing.Default(), rec, Options{Check: func(m *chronicle.Message) (*chronicle.Event, string) {
		if m.Foreign() {
			return nil, "processing error: foreign messages are not supported"
		}
		return ingest.Check(m)
	}})
	if err := buggy.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	publishMessage(t, buggy, chronicle.Message{ID: id, Type: "security.login", Body: []byte(clientBody)})
	Eventually(t, 10*time.Second, "the message dead-lettered", func() bool { return len(deadLetters(t, buggy, "chronicle.security.dlq")) == 1 })
	closeGW(t, buggy)

	fixed := newGW(routing.Default(), rec, Options{})
	if err := fixed.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	if n, err := fixed.ReplayDeadLetters(t.Context(), "chronicle.security.dlq", chronicle.Selection{By: "ops-key"}); err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	var story []string
	for _, hop := range storedHistory(t, rec, id, 1) {
		story = append(story, hop.Hop)
	}
	want := []string{"consumed", "dead_lettered", "replayed", "accepted", "consumed", "stored"}
	if !slices.Equal(story, want) {
		t.Fatalf("history %v, want %v", story, want)
	}
	if e, _ := rec.Event(t.Context(), id); e.EventType != "security.login" {
		t.Fatalf("event_type after replay = %q", e.EventType)
	}
}
