// Package journaltest is the behaviour suite every chronicle.Journal
// passes: the SQLite and PostgreSQL journals and the memory store's run the
// same tests, so the in-process transport can rely on one contract.
package journaltest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
)

// Open returns a new, empty store for one test, and reopen, which closes
// it and opens it again on the same data (as a restarted process would;
// the memory store, which cannot outlive itself, returns itself). Both
// register their own cleanup.
type Open func(t *testing.T) (s chronicle.Store, reopen func() chronicle.Store)

// Run runs the suite. Each subtest gets its own store and runs in
// parallel.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"AppendNumbersInOrder", testAppend},
		{"SettleStoresRemovesMoves", testSettle},
		{"FailedSettleChangesNothing", testFailedSettle},
		{"PendingSurvivesReopen", testReopen},
		{"ConcurrentAppends", testConcurrentAppend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// entries returns n journal entries of new events on queue.
func entries(n int, queue string) ([]*chronicle.JournalEntry, []*chronicle.Event) {
	var out []*chronicle.JournalEntry
	var events []*chronicle.Event
	for i := range n {
		e := storetest.NewEvent(time.Duration(i) * time.Second)
		body, _ := e.MarshalJSON()
		events = append(events, e)
		h := chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopAccepted, At: e.Timestamp, RequestID: e.ID})
		out = append(out, &chronicle.JournalEntry{Queue: queue, Message: chronicle.Message{ID: e.ID, Type: e.EventType, Body: body, History: h}})
	}
	return out, events
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, j chronicle.Journal) []*chronicle.JournalEntry {
	t.Helper()
	p, err := j.Pending(t.Context())
	must(t, err)
	return p
}

func testAppend(t *testing.T, open Open) {
	s, _ := open(t)
	es, _ := entries(3, "chronicle.all")
	must(t, s.Append(t.Context(), es))
	if es[0].Seq <= 0 || es[1].Seq <= es[0].Seq || es[2].Seq <= es[1].Seq {
		t.Fatalf("seqs = %d, %d, %d: want increasing and positive", es[0].Seq, es[1].Seq, es[2].Seq)
	}
	got := pending(t, s)
	if len(got) != 3 {
		t.Fatalf("%d pending, want 3", len(got))
	}
	for i, p := range got {
		if p.Seq != es[i].Seq || p.Queue != "chronicle.all" || p.Message.ID != es[i].Message.ID ||
			p.Message.Type != es[i].Message.Type || string(p.Message.Body) != string(es[i].Message.Body) ||
			string(p.Message.History) != string(es[i].Message.History) {
			t.Fatalf("pending[%d] = %+v, want %+v", i, p, es[i])
		}
		if p.Message.Event != nil {
			t.Fatalf("pending[%d] carries a decoded event: a journal holds bodies", i)
		}
	}
	must(t, s.Append(t.Context(), nil)) // nothing to append is fine
}

func testSettle(t *testing.T, open Open) {
	s, _ := open(t)
	ctx := t.Context()
	es, events := entries(3, "chronicle.all")
	must(t, s.Append(ctx, es))
	// The first is stored and removed, the second dead-lettered: moved to
	// the DLQ with new headers and, as a message without an id would be,
	// a new id.
	dead := *es[1]
	dead.Queue = "chronicle.all.dlq"
	dead.Message.ID = "dead-letter-1"
	dead.Message.Headers = map[string]string{chronicle.HeaderReason: "parse error"}
	dead.Message.History = dead.Message.History.Append(chronicle.Hop{Hop: chronicle.HopDeadLettered, At: events[1].Timestamp, Reason: "parse error"})
	st := &chronicle.Settlement{Events: events[:1], Remove: []int64{es[0].Seq}, Move: []*chronicle.JournalEntry{&dead}}
	must(t, s.Settle(ctx, st))
	must(t, s.Settle(ctx, st)) // settling twice is harmless
	if _, err := s.Event(ctx, events[0].ID); err != nil {
		t.Fatalf("settled event not stored: %v", err)
	}
	got := pending(t, s)
	if len(got) != 2 || got[0].Seq != es[1].Seq || got[0].Queue != "chronicle.all.dlq" || got[0].Message.ID != "dead-letter-1" ||
		got[0].Message.Headers[chronicle.HeaderReason] != "parse error" || got[1].Seq != es[2].Seq || got[1].Queue != "chronicle.all" {
		t.Fatalf("pending after settling = %+v", got)
	}
	if string(got[0].Message.Body) != string(es[1].Message.Body) {
		t.Fatal("a move changed the body")
	}
	if string(got[0].Message.History) != string(dead.Message.History) {
		t.Fatalf("a move did not keep the new history: %s", got[0].Message.History)
	}
	must(t, s.Settle(ctx, &chronicle.Settlement{})) // an empty settlement is fine
}

func testFailedSettle(t *testing.T, open Open) {
	s, _ := open(t)
	ctx := t.Context()
	es, events := entries(2, "chronicle.all")
	must(t, s.Append(ctx, es))
	bad := &chronicle.Settlement{Events: []*chronicle.Event{events[0], nil}, Remove: []int64{es[0].Seq, es[1].Seq}}
	if err := s.Settle(ctx, bad); err == nil {
		t.Fatal("a settlement holding a nil event succeeded")
	}
	if got := pending(t, s); len(got) != 2 {
		t.Fatalf("a failed settlement removed entries: %d pending", len(got))
	}
	if _, err := s.Event(ctx, events[0].ID); err == nil {
		t.Fatal("a failed settlement stored an event")
	}
}

func testReopen(t *testing.T, open Open) {
	s, reopen := open(t)
	ctx := t.Context()
	es, events := entries(3, "chronicle.all")
	must(t, s.Append(ctx, es))
	must(t, s.Settle(ctx, &chronicle.Settlement{Events: events[:1], Remove: []int64{es[0].Seq}}))
	s = reopen()
	got := pending(t, s)
	if len(got) != 2 || got[0].Seq != es[1].Seq || got[1].Seq != es[2].Seq || got[1].Message.ID != events[2].ID {
		t.Fatalf("pending after reopen = %+v", got)
	}
	// New seqs continue after the existing ones, never reusing one.
	more, _ := entries(1, "q")
	must(t, s.Append(ctx, more))
	if more[0].Seq <= es[2].Seq {
		t.Fatalf("seq %d reused after reopen (last %d)", more[0].Seq, es[2].Seq)
	}
}

func testConcurrentAppend(t *testing.T, open Open) {
	s, _ := open(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	appended := make([][]*chronicle.JournalEntry, n)
	for i := range n {
		wg.Go(func() {
			batch := make([]*chronicle.JournalEntry, 1+i%3)
			for j := range batch {
				batch[j] = &chronicle.JournalEntry{Queue: "q", Message: chronicle.Message{ID: fmt.Sprintf("m-%d-%d", i, j), Type: "t", Body: []byte("{}")}}
			}
			appended[i] = batch
			errs <- s.Append(t.Context(), batch)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	seen := map[int64]string{}
	total := 0
	for _, batch := range appended {
		for j, e := range batch {
			if j > 0 && e.Seq <= batch[j-1].Seq {
				t.Fatalf("seqs within one append out of order: %d after %d", e.Seq, batch[j-1].Seq)
			}
			seen[e.Seq] = e.Message.ID
			total++
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct seqs for %d entries", len(seen), total)
	}
	got := pending(t, s)
	if len(got) != total {
		t.Fatalf("%d pending, want %d", len(got), total)
	}
	if !slices.IsSortedFunc(got, func(a, b *chronicle.JournalEntry) int { return int(a.Seq - b.Seq) }) {
		t.Fatal("Pending is not in seq order")
	}
	for i, p := range got {
		if seen[p.Seq] != p.Message.ID {
			t.Fatalf("pending[%d] = seq %d id %s, appended as %s", i, p.Seq, p.Message.ID, seen[p.Seq])
		}
	}
}
