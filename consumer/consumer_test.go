package consumer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
)

// settler records what it is asked to settle and fails as told.
type settler struct {
	mu       sync.Mutex
	calls    [][]*consumer.Item
	failures int             // fail this many calls (transiently) first
	refuse   map[string]bool // event ids the store refuses for good
}

func (s *settler) Settle(_ context.Context, items []*consumer.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	copies := make([]*consumer.Item, len(items))
	for i, it := range items {
		c := *it
		copies[i] = &c
	}
	s.calls = append(s.calls, copies)
	if s.failures > 0 {
		s.failures--
		return chronicle.Unavailable(time.Second, "the store is down", nil)
	}
	for _, it := range items {
		if it.Event != nil && s.refuse[it.Event.ID] {
			return chronicle.Wrap(chronicle.ErrInvalid, "the store refuses this data", errors.New("SQLSTATE 22021"))
		}
	}
	return nil
}

func messages(ids ...string) []*chronicle.Message {
	var out []*chronicle.Message
	for _, id := range ids {
		if id == "bad" {
			out = append(out, &chronicle.Message{ID: id, Body: []byte("not json")})
			continue
		}
		out = append(out, &chronicle.Message{ID: id, Event: &chronicle.Event{ID: id}})
	}
	return out
}

// check trusts the decoded event and refuses everything else.
func check(m *chronicle.Message) (*chronicle.Event, string) {
	if m.Event != nil {
		return m.Event, ""
	}
	return nil, "parse error: not json"
}

func processor(t *testing.T, h *consumer.Health) *consumer.Processor {
	p, err := consumer.New(consumer.Config{Queue: "q", Check: check, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Health: h, Logger: testlog.Warn(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClassifiesAndSettlesOnce(t *testing.T) {
	t.Parallel()
	s := &settler{}
	if err := processor(t, nil).Process(t.Context(), "w-1", messages("a", "bad", "b"), s); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 1 || len(s.calls[0]) != 3 {
		t.Fatalf("settled in %d calls", len(s.calls))
	}
	got := s.calls[0]
	if got[0].Event == nil || got[1].Event != nil || got[1].Reason != "parse error: not json" || got[2].Index != 2 {
		t.Fatalf("items = %+v %+v %+v", got[0], got[1], got[2])
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	s := &settler{failures: 3}
	if err := processor(t, nil).Process(t.Context(), "w-1", messages("a", "b"), s); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 4 {
		t.Fatalf("%d attempts, want 3 failures then a success", len(s.calls))
	}
}

// The store refuses one event for good: it is dead-lettered with the
// store's reason, every other item settled, each exactly once at the end.
func TestIsolatesRefusedEvent(t *testing.T) {
	t.Parallel()
	s := &settler{refuse: map[string]bool{"e": true}}
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "bad"}
	if err := processor(t, nil).Process(t.Context(), "w-1", messages(ids...), s); err != nil {
		t.Fatal(err)
	}
	settled := map[string]*consumer.Item{}
	for i, call := range s.calls {
		failed := false
		for _, it := range call {
			if it.Event != nil && s.refuse[it.Event.ID] {
				failed = true
			}
		}
		if failed {
			continue
		}
		for _, it := range call {
			if settled[it.Message.ID] != nil {
				t.Fatalf("call %d settles %s again", i, it.Message.ID)
			}
			settled[it.Message.ID] = it
		}
	}
	if len(settled) != len(ids) {
		t.Fatalf("settled %d of %d items", len(settled), len(ids))
	}
	if it := settled["e"]; it.Event != nil || it.Reason != "store refused the event: the store refuses this data: SQLSTATE 22021" {
		t.Fatalf("refused event settled as %+v", it)
	}
	if settled["a"].Event == nil || settled["g"].Event == nil {
		t.Fatal("an event around the refused one was not stored")
	}
}

func TestStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	s := &settler{failures: 1 << 30}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := processor(t, nil).Process(ctx, "w-1", messages("a"), s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process after ctx ended = %v", err)
	}
}

// Health reports a queue whose consumers have failed for longer than
// FailingAfter, and forgets it once a batch is settled.
func TestHealth(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := &consumer.Health{FailingAfter: 10 * time.Second, Now: func() time.Time { return now }}
	s := &settler{failures: 1}
	p := processor(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // fail once, then give up
	p.Process(ctx, "w-1", messages("a"), s)
	if err := h.Ping(t.Context()); err != nil {
		t.Fatalf("Ping right after a failure: %v", err)
	}
	now = now.Add(11 * time.Second)
	err := h.Ping(t.Context())
	if !errors.Is(err, chronicle.ErrUnavailable) || chronicle.Public(err) != "consumers keep failing to settle their batches: q (failing for 11s, 1 attempts)" {
		t.Fatalf("Ping after 11s of failure = %v (public %q)", err, chronicle.Public(err))
	}
	if err := p.Process(t.Context(), "w-1", messages("b"), s); err != nil {
		t.Fatal(err)
	}
	if err := h.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after a success: %v", err)
	}
}

// A foreign message's event was accepted by the consumer, not by a
// producer process: its path starts with an accepted hop that names the
// consumer and whose clock set the event's timestamp. Chronicle's own
// messages get no such hop.
func TestForeignMessageAcceptedHop(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)
	published := now.Add(-5 * time.Second)
	body := []byte(`{"actor":"alice@example.com","action":"login","resource_type":"auth","resource_id":"s-1"}`)
	ours := chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopPublished, At: published, Transport: "rabbitmq"})
	msgs := []*chronicle.Message{
		{ID: "0190c6d2-8a41-7c3e-9f1a-2b6d5e4f3a21", Type: "security.login", Body: body, Timestamp: published},
		{ID: "0190c6d2-8a41-7c3e-9f1a-2b6d5e4f3a22", Type: "security.login", Body: body},
		{ID: "0190c6d2-8a41-7c3e-9f1a-2b6d5e4f3a23", History: ours, Event: &chronicle.Event{ID: "0190c6d2-8a41-7c3e-9f1a-2b6d5e4f3a23", Timestamp: published}},
	}
	clock := func() time.Time { return now }
	p, err := consumer.New(consumer.Config{Queue: "chronicle.all", Process: "consumer:9", Store: "sqlite", Now: clock,
		Check: ingest.Checker{Now: clock}.Check, Logger: testlog.Warn(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := &settler{}
	if err := p.Process(t.Context(), "0", msgs, s); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		at    time.Time
		clock string
	}{{published, chronicle.ClockAMQP}, {now, chronicle.ClockConsumer}, {}} {
		it := s.calls[0][i]
		if it.Event == nil {
			t.Fatalf("message %d dead-lettered: %s", i, it.Reason)
		}
		hops, err := it.Event.History.Hops()
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, h := range hops {
			kinds = append(kinds, h.Hop)
		}
		if want.clock == "" {
			if !slices.Equal(kinds, []string{"published", "consumed", "stored"}) {
				t.Fatalf("Chronicle's message: hops %v", kinds)
			}
			continue
		}
		a := hops[0]
		if !slices.Equal(kinds, []string{"accepted", "consumed", "stored"}) || a.Process != "consumer:9" || a.Clock != want.clock ||
			!a.At.Equal(want.at) || !it.Event.Timestamp.Equal(want.at) {
			t.Fatalf("message %d: hops %v, accepted %+v, timestamp %v", i, kinds, a, it.Event.Timestamp)
		}
	}
}
