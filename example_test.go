package chronicle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"
)

func event(id, eventType string) *chronicle.Event {
	return &chronicle.Event{
		ID: id, Actor: "alice@example.com", Action: "login", ResourceType: "security", ResourceID: "session-1",
		Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), EventType: eventType,
	}
}

// Stores are idempotent on the event id: a redelivered event is stored
// once.
func ExampleEventStore() {
	ctx := context.Background()
	var store chronicle.EventStore = memory.New()
	e := event("0195f0a4-0000-7000-8000-000000000001", "security.login")
	store.StoreEvents(ctx, []*chronicle.Event{e})
	store.StoreEvents(ctx, []*chronicle.Event{e}) // redelivered
	n, _ := store.CountEvents(ctx, chronicle.EventFilter{Actor: "alice@example.com"})
	fmt.Println(n)
	// Output: 1
}

// The Messaging Gateway: publish, let the competing consumers store, and
// close, which drains the in-process queues into the store.
func ExampleGateway() {
	ctx := context.Background()
	store := memory.New()
	var gw chronicle.Gateway
	gw, err := inproc.New(ctx, inproc.Config{Routing: routing.Default(), Journal: store, Check: ingest.Check})
	if err != nil {
		panic(err)
	}
	gw.StartConsumers(ctx, "default")
	// security.login goes to chronicle.security and the catch-all
	// chronicle.all: two deliveries, one stored event.
	gw.Publish(ctx, []*chronicle.Event{event("0195f0a4-0000-7000-8000-000000000002", "security.login")})
	gw.Close(ctx)
	n, _ := store.CountEvents(ctx, chronicle.EventFilter{})
	fmt.Println(n)
	// Output: 1
}

// A dead letter carries the story of its death in its headers, and a
// message that arrived without an id is given one.
func ExampleKill() {
	m := chronicle.Message{Type: "billing.charge", Body: []byte("not json")}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dead := chronicle.Kill(m, chronicle.Death{Reason: "parse error: invalid character 'o'", Queue: "chronicle.billing",
		Exchange: "audit_events", RoutingKey: "billing.charge", At: at})
	again := chronicle.Kill(dead, chronicle.Death{Reason: "parse error: invalid character 'o'", Queue: "chronicle.billing", At: at.Add(time.Hour)})
	d := chronicle.DeadLetterOf(again)
	fmt.Println(d.ID == dead.ID && d.ID != "", d.Queue, d.Exchange, d.RoutingKey, d.Count, d.FirstDeathAt.Format(time.RFC3339))
	// Output: true chronicle.billing audit_events billing.charge 2 2026-03-01T12:00:00Z
}

// Classify is a consumer's decision on each message of a batch.
func ExampleClassify() {
	msgs := []*chronicle.Message{
		{Event: event("0195f0a4-0000-7000-8000-000000000003", "security.login")},
		{Body: []byte(`{"actor":"bob@example.com"}`)},
	}
	for _, v := range chronicle.Classify(msgs, ingest.Check) {
		fmt.Printf("store=%t reason=%q\n", v.Event != nil, v.Reason)
	}
	// Output:
	// store=true reason=""
	// store=false reason="missing field: \"action\""
}

// Errors keep what a client may read apart from what a dependency said.
func ExamplePublic() {
	cause := errors.New("dial tcp 10.0.0.5:5432: connection refused")
	err := chronicle.Unavailable(time.Second, "PostgreSQL is not available", cause)
	fmt.Println(errors.Is(err, chronicle.ErrUnavailable))
	fmt.Println(chronicle.Public(err))
	fmt.Println(err)
	// Output:
	// true
	// PostgreSQL is not available
	// PostgreSQL is not available: dial tcp 10.0.0.5:5432: connection refused
}
