package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Reading the log in seq order with a listing's filters
// (EventsInLogMatching): what an export and a live tail read.

// matching is the reference of what f selects.
func matching(e *chronicle.Event, f chronicle.EventFilter) bool {
	occurred := func(bound time.Time, after bool) bool {
		if bound.IsZero() {
			return true
		}
		if e.OccurredAt.IsZero() {
			return false
		}
		return after == !e.OccurredAt.Before(bound)
	}
	return (f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.EventType == "" || e.EventType == f.EventType) &&
		(f.ResourceType == "" || e.ResourceType == f.ResourceType) &&
		(f.ResourceID == nil || e.ResourceID == *f.ResourceID) &&
		(f.CorrelationID == "" || e.CorrelationID == f.CorrelationID) &&
		(f.EntityKey == "" || e.EntityKey == f.EntityKey) &&
		(f.Since.IsZero() || !e.Timestamp.Before(f.Since)) &&
		(f.Until.IsZero() || e.Timestamp.Before(f.Until)) &&
		occurred(f.OccurredSince, true) && occurred(f.OccurredUntil, false)
}

// readMatching reads [from, to) through EventsInLogMatching, limit
// events a call, checking each call's answer against its contract.
func readMatching(t *testing.T, s chronicle.Store, f chronicle.EventFilter, from, to int64, limit int) []*chronicle.Event {
	t.Helper()
	var out []*chronicle.Event
	for calls := 0; from < to; calls++ {
		if calls > 10_000 {
			t.Fatalf("EventsInLogMatching(%+v) does not reach %d: at %d", f, to, from)
		}
		page, next, err := s.EventsInLogMatching(ctx(t), f, from, to, limit)
		if err != nil {
			t.Fatalf("EventsInLogMatching(%+v, %d, %d): %v", f, from, to, err)
		}
		if len(page) > limit || next <= from || next > to {
			t.Fatalf("EventsInLogMatching(%d, %d, limit %d) = %d events, next %d", from, to, limit, len(page), next)
		}
		for _, e := range page {
			if e.Seq == nil || *e.Seq < from || *e.Seq >= next {
				t.Fatalf("EventsInLogMatching(%d, %d) = next %d and an event at seq %v", from, to, next, e.Seq)
			}
		}
		out = append(out, page...)
		from = next
	}
	return out
}

func testLogMatching(t *testing.T, s chronicle.Store) {
	resource := "doc-7"
	empty := ""
	var events []*chronicle.Event
	for i := range 60 {
		e := NewEvent(time.Duration(60-i)*time.Second, func(e *chronicle.Event) {
			// Received times run against the log's order, so a store
			// that reads by time fails.
			e.Actor = []string{"alice@example.com", "bob@example.com", "carol@example.com"}[i%3]
			e.Action = []string{"login", "logout"}[i%2]
			e.EventType = []string{"security.login", "user.created", "billing.charge", "security.logout"}[i%4]
			e.ResourceType = []string{"security", "document"}[i%2]
			e.ResourceID = []string{"session-1", resource, ""}[i%3]
			e.CorrelationID = fmt.Sprintf("req-%d", i/5)
			if i%4 == 1 {
				e.EntityKey = "org:acme"
			}
			if i%3 != 2 {
				e.OccurredAt = e.Timestamp.Add(-time.Duration(i) * time.Minute)
			}
			e.Metadata = map[string]string{"i": fmt.Sprint(i)}
		})
		events = append(events, e)
	}
	for i := 0; i < len(events); i += 9 {
		mustStore(t, s, events[i:min(i+9, len(events))]...)
	}
	WaitForLog(t, s, int64(len(events)))
	all := inLog(t, s, int64(len(events)))
	filters := map[string]chronicle.EventFilter{
		"None":          {},
		"Actor":         {Actor: "bob@example.com"},
		"Action":        {Action: "logout"},
		"EventType":     {EventType: "billing.charge"},
		"Resource":      {ResourceType: "document", ResourceID: &resource},
		"EmptyResource": {ResourceID: &empty},
		"Correlation":   {CorrelationID: "req-3"},
		"EntityKey":     {EntityKey: "org:acme"},
		"Since":         {Since: base.Add(20 * time.Second)},
		"Until":         {Until: base.Add(20 * time.Second)},
		"Occurred":      {OccurredSince: base.Add(-10 * time.Minute), OccurredUntil: base.Add(30 * time.Second)},
		"Several":       {Actor: "alice@example.com", EventType: "security.login", Since: base.Add(10 * time.Second)},
		"Nothing":       {Actor: "nobody@example.com"},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			var want []*chronicle.Event
			for _, e := range all {
				if matching(e, f) {
					want = append(want, e)
				}
			}
			for _, limit := range []int{1, 4, 1000} {
				got := readMatching(t, s, f, 0, int64(len(all)), limit)
				if !slices.Equal(ids(got), ids(want)) {
					t.Fatalf("limit %d: got %v, want %v", limit, ids(got), ids(want))
				}
				for i, e := range got {
					if !equalEvent(e, want[i]) || *e.Seq != *want[i].Seq {
						t.Fatalf("event %d: got %+v, want %+v", i, e, want[i])
					}
				}
			}
		})
	}
	t.Run("Range", func(t *testing.T) {
		got := readMatching(t, s, chronicle.EventFilter{Actor: "carol@example.com"}, 10, 40, 3)
		var want []string
		for _, e := range all[10:40] {
			if e.Actor == "carol@example.com" {
				want = append(want, e.ID)
			}
		}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("seq 10 to 40: got %v, want %v", ids(got), want)
		}
	})
	t.Run("EmptyRange", func(t *testing.T) {
		page, next, err := s.EventsInLogMatching(ctx(t), chronicle.EventFilter{}, 30, 30, 10)
		if err != nil || len(page) != 0 || next != 30 {
			t.Fatalf("EventsInLogMatching(30, 30) = %d events, next %d, %v", len(page), next, err)
		}
	})
}

// A call looks at a window of the log at most: a filter that matches
// only the last event is answered in bounded steps, the first with no
// event and a next short of the end.
func testLogMatchingWindow(t *testing.T, s chronicle.Store) {
	n := chronicle.LogScanWindow + 50
	events := make([]*chronicle.Event, n)
	for i := range events {
		events[i] = NewEvent(time.Duration(i)*time.Microsecond, func(e *chronicle.Event) { e.CorrelationID = "bulk" })
	}
	events[n-1].Actor = "last@example.com"
	for i := 0; i < n; i += 1000 {
		mustStore(t, s, events[i:min(i+1000, n)]...)
	}
	WaitForLog(t, s, int64(n))
	f := chronicle.EventFilter{Action: "login", Actor: "last@example.com"}
	page, next, err := s.EventsInLogMatching(ctx(t), f, 0, int64(n), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 0 || next <= 0 || next >= int64(n) {
		t.Fatalf("the first call = %d events, next %d: want none and a next within the log of %d", len(page), next, n)
	}
	got := readMatching(t, s, f, 0, int64(n), 100)
	if len(got) != 1 || got[0].ID != events[n-1].ID || *got[0].Seq != int64(n-1) {
		t.Fatalf("got %v, want only the last event %s", ids(got), events[n-1].ID)
	}
}
