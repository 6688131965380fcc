package inproc_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/internal/transporttest"
	"github.com/chronicle-audit/chronicle/routing"
	"github.com/chronicle-audit/chronicle/sqlite"
)

func newTransport(t *testing.T, cfg inproc.Config) *inproc.Transport {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testlog.Warn(t)
	}
	if cfg.Check == nil {
		cfg.Check = ingest.Check
	}
	tr, err := inproc.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

func TestTransport(t *testing.T) {
	t.Parallel()
	transporttest.Run(t, transporttest.Harness{
		// In process the broker state is the journal, which the test's
		// store holds: nothing to set up.
		Setup: func(t *testing.T) transporttest.NewGateway {
			return func(rc *routing.Config, store chronicle.Store, o transporttest.Options) transporttest.Gateway {
				return newTransport(t, inproc.Config{Routing: rc, Journal: store,
					Capacity: o.Capacity, ConsumerCount: o.ConsumerCount, Check: o.Check,
					Process: transporttest.Process, StoreName: transporttest.StoreName})
			}
		},
		BoundedQueues: true,
		DrainsOnClose: true,
	})
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: testlog.Warn(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A journaled queue survives the process: what was published but not
// consumed is delivered by the next transport on the same database, once.
func TestDurableQueuesSurviveRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	store := openSQLite(t, path)
	first := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: store})
	var ids []string
	for range 30 {
		e := transporttest.NewEvent("security.login")
		if err := first.Publish(t.Context(), []*chronicle.Event{e}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	bad := chronicle.Message{ID: "bad-1", Type: "user.created", Body: []byte("{")}
	if err := first.PublishMessage(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	// No consumers ran and first is abandoned, as after kill -9. Close
	// only the SQLite handles, as the OS would.
	store.Close()

	store = openSQLite(t, path)
	second := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: store})
	if d := depthOf(t, second, "chronicle.security"); d != 30 {
		t.Fatalf("recovered chronicle.security depth = %d, want 30", d)
	}
	if err := second.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	transporttest.Eventually(t, 10*time.Second, "recovered events stored", func() bool {
		for _, id := range ids {
			if _, err := store.Event(t.Context(), id); err != nil {
				return false
			}
		}
		return true
	})
	transporttest.Eventually(t, 10*time.Second, "the bad message dead-lettered", func() bool {
		dl, _ := second.PeekDeadLetters(t.Context(), "chronicle.users.dlq", 0)
		return len(dl) == 1
	})
	if err := second.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Everything settled: the journal holds only the two dead letters
	// (users route and catch-all route).
	pending, err := store.Pending(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 {
		t.Fatalf("journal holds %d entries after drain, want the 2 dead letters", len(pending))
	}
	for _, p := range pending {
		if !strings.HasSuffix(p.Queue, ".dlq") {
			t.Errorf("journal entry left on %s", p.Queue)
		}
	}

	// Dead letters survive a restart too.
	store.Close()
	store = openSQLite(t, path)
	third := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: store})
	dl, _ := third.PeekDeadLetters(t.Context(), "chronicle.all.dlq", 0)
	if len(dl) != 1 || dl[0].ID != "bad-1" || !strings.HasPrefix(dl[0].Reason, "parse error") || dl[0].Queue != "chronicle.all" {
		t.Fatalf("dead letters after restart: %+v", dl)
	}
}

func TestOrphanedJournalEntriesGoToUnrouted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "o.db")
	store := openSQLite(t, path)
	e := transporttest.NewEvent("security.login")
	body, _ := e.MarshalJSON()
	if err := store.Append(t.Context(), []*chronicle.JournalEntry{{Queue: "chronicle.removed", Message: chronicle.Message{ID: e.ID, Type: e.EventType, Body: body}}}); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: store})
	dl, _ := tr.PeekDeadLetters(t.Context(), routing.UnroutedQueue, 0)
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "chronicle.removed is no longer configured") {
		t.Fatalf("unrouted = %+v", dl)
	}
	// Replaying it routes it again, under today's configuration.
	n, err := tr.ReplayDeadLetters(t.Context(), routing.UnroutedQueue, chronicle.Selection{})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	if d := depthOf(t, tr, "chronicle.security"); d != 1 {
		t.Fatalf("security depth after replay = %d", d)
	}
}

func depthOf(t *testing.T, tr *inproc.Transport, q string) int {
	qs, _ := tr.Queues(t.Context())
	for _, s := range qs {
		if s.Name == q {
			return s.Depth
		}
	}
	t.Fatalf("no queue %s", q)
	return 0
}

func TestStartConsumersOnce(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: transporttest.NewRecorder()})
	if err := tr.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	if err := tr.StartConsumers(t.Context(), "default"); err == nil {
		t.Fatal("consumers started twice")
	}
}

// gatedJournal is a journal whose database cannot be reached until open
// is called.
type gatedJournal struct {
	*transporttest.Recorder
	up atomic.Bool
}

func (j *gatedJournal) Pending(ctx context.Context) ([]*chronicle.JournalEntry, error) {
	if !j.up.Load() {
		return nil, chronicle.Unavailable(time.Second, "the database is down", errors.New("connection refused"))
	}
	return j.Recorder.Pending(ctx)
}

// A journal that cannot be read at start-up is not fatal: publishes are
// refused until it can be, then the journaled messages are recovered and
// the consumers asked for meanwhile start.
func TestJournalUnavailableAtStart(t *testing.T) {
	t.Parallel()
	j := &gatedJournal{Recorder: transporttest.NewRecorder()}
	before := transporttest.NewEvent("security.login")
	body, _ := before.MarshalJSON()
	if err := j.Append(t.Context(), []*chronicle.JournalEntry{{Queue: "chronicle.all", Message: chronicle.Message{ID: before.ID, Type: before.EventType, Body: body}}}); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: j, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err := tr.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	e := transporttest.NewEvent("user.created")
	for _, err := range []error{tr.Publish(t.Context(), []*chronicle.Event{e}), tr.Ping(t.Context()), tr.Congested()} {
		var ue *chronicle.UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter <= 0 {
			t.Fatalf("before the journal can be read: %v, want ErrUnavailable with a retry hint", err)
		}
	}
	j.up.Store(true)
	transporttest.Eventually(t, 10*time.Second, "the transport to become ready", func() bool { return tr.Ping(t.Context()) == nil })
	if err := tr.Publish(t.Context(), []*chronicle.Event{e}); err != nil {
		t.Fatal(err)
	}
	transporttest.Eventually(t, 10*time.Second, "the journaled and the new event stored", func() bool { return j.Stored(before.ID, e.ID) })
}

// Closing a transport that never could read its journal returns at once.
func TestCloseBeforeJournalReadable(t *testing.T) {
	t.Parallel()
	j := &gatedJournal{Recorder: transporttest.NewRecorder()}
	tr := newTransport(t, inproc.Config{Routing: routing.Default(), Journal: j})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish(t.Context(), []*chronicle.Event{transporttest.NewEvent("a.b")}); !errors.Is(err, chronicle.ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
}
