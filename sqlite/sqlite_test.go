package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/migration"
	"github.com/chronicle-audit/chronicle/sqlite"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) chronicle.Store {
		return open(t, filepath.Join(t.TempDir(), "chronicle.db"))
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := storetest.NewEvent(0)
	if err := s.StoreEvents(t.Context(), []*chronicle.Event{e}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEntity(t.Context(), &chronicle.Entity{Key: "k", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreEvents(t.Context(), []*chronicle.Event{storetest.NewEvent(1)}); !errors.Is(err, chronicle.ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
	s2 := open(t, path)
	if _, err := s2.Event(t.Context(), e.ID); err != nil {
		t.Fatalf("event lost across reopen: %v", err)
	}
	if n, _ := s2.CountEntities(t.Context()); n != 1 {
		t.Fatalf("entities after reopen = %d", n)
	}
}

func TestJournal(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	s := open(t, path)
	ctx := t.Context()
	var entries []*chronicle.JournalEntry
	var events []*chronicle.Event
	for i := range 3 {
		e := storetest.NewEvent(time.Duration(i) * time.Second)
		body, _ := e.MarshalJSON()
		events = append(events, e)
		entries = append(entries, &chronicle.JournalEntry{Queue: "chronicle.all", Message: chronicle.Message{ID: e.ID, Type: e.EventType, Body: body}})
	}
	if err := s.Append(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if entries[0].Seq == 0 || entries[1].Seq != entries[0].Seq+1 {
		t.Fatalf("seqs = %d, %d", entries[0].Seq, entries[1].Seq)
	}
	// Settle: first stored and removed, second dead-lettered (moved).
	dead := *entries[1]
	dead.Queue = "chronicle.all.dlq"
	dead.Message.Headers = map[string]string{chronicle.HeaderReason: "parse error"}
	if err := s.Settle(ctx, &chronicle.Settlement{Events: events[:1], Remove: []int64{entries[0].Seq}, Move: []*chronicle.JournalEntry{&dead}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Event(ctx, events[0].ID); err != nil {
		t.Fatalf("settled event not stored: %v", err)
	}
	// A reopened store still has what was not settled, in order.
	s.Close()
	s = open(t, path)
	pending, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].Queue != "chronicle.all.dlq" || pending[0].Message.Headers[chronicle.HeaderReason] != "parse error" || pending[1].Queue != "chronicle.all" || pending[1].Message.ID != events[2].ID {
		t.Fatalf("pending = %+v", pending)
	}
	if string(pending[1].Message.Body) != string(entries[2].Message.Body) {
		t.Fatalf("body changed")
	}
	// New seqs continue after the existing ones.
	more := []*chronicle.JournalEntry{{Queue: "q", Message: chronicle.Message{ID: "x", Type: "t", Body: []byte("{}")}}}
	if err := s.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	if more[0].Seq <= entries[2].Seq {
		t.Fatalf("seq %d reused after reopen (last %d)", more[0].Seq, entries[2].Seq)
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "g.db"))
	var wg sync.WaitGroup
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			e := storetest.NewEvent(time.Duration(i) * time.Millisecond)
			errs <- s.Append(t.Context(), []*chronicle.JournalEntry{{Queue: "q", Message: chronicle.Message{ID: e.ID, Type: "t", Body: []byte("{}")}}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pending, _ := s.Pending(t.Context())
	if len(pending) != n {
		t.Fatalf("%d entries, want %d", len(pending), n)
	}
	seen := map[int64]bool{}
	for _, p := range pending {
		if seen[p.Seq] {
			t.Fatalf("seq %d twice", p.Seq)
		}
		seen[p.Seq] = true
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Migrator()
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Status(t.Context())
	if err != nil || len(st) != 6 || st[0].Applied {
		t.Fatalf("status before = %+v, %v", st, err)
	}
	applied, err := m.Up(t.Context())
	if err != nil || len(applied) != 6 {
		t.Fatalf("Up = %+v, %v", applied, err)
	}
	if again, err := m.Up(t.Context()); err != nil || len(again) != 0 {
		t.Fatalf("second Up = %+v, %v", again, err)
	}
	down, err := m.Down(t.Context())
	if err != nil || down == nil || down.Version != 6 {
		t.Fatalf("Down = %+v, %v", down, err)
	}
	for range 5 {
		if _, err := m.Down(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := m.Down(t.Context()); err != nil || d != nil {
		t.Fatalf("Down with nothing applied = %+v, %v", d, err)
	}
	if _, err := m.Up(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "n.db")
	s := open(t, path)
	// A newer chronicle applied version 99.
	raw, err := sqlite.Open(t.Context(), path, sqlite.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.ExecForTest(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s.Close()
	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if !errors.Is(err, migration.ErrNewerSchema) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("Open on newer schema: %v", err)
	}
}

// Processes opening one new file at once (a producer and its consumers on
// one host) must not race to apply the same migration.
func TestConcurrentOpenMigrates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
