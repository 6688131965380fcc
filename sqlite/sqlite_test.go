package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/journaltest"
	"github.com/chronicle-audit/chronicle/internal/migrationtest"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
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

func TestJournal(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) (chronicle.Store, func() chronicle.Store) {
		path := filepath.Join(t.TempDir(), "journal.db")
		s := open(t, path)
		return s, func() chronicle.Store {
			s.Close()
			return open(t, path)
		}
	})
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	migrationtest.Run(t, migrationtest.Harness{
		Empty: func(t *testing.T) (chronicle.Store, *migration.Migrator) {
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "m.db"), sqlite.Options{Maintenance: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			m, err := s.Migrator()
			if err != nil {
				t.Fatal(err)
			}
			return s, m
		},
		Newer: func(t *testing.T) func() error {
			path := filepath.Join(t.TempDir(), "n.db")
			s := open(t, path)
			// A newer chronicle applied version 99.
			if err := s.ExecForTest(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)`); err != nil {
				t.Fatal(err)
			}
			s.Close()
			return func() error {
				s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
				if err == nil {
					s.Close()
				}
				return err
			}
		},
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

// The database file and the files beside it are readable by their owner
// only.
func TestFilesPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	if err := s.StoreEvents(t.Context(), []*chronicle.Event{storetest.NewEvent(0)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm", path + ".migrate-lock"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}
}

// A file another process holds locked at start-up is not fatal: the store
// answers ErrUnavailable and becomes usable once the lock is released.
func TestLockedAtStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "l.db")
	// Another process holds a new file's exclusive lock (rollback
	// journal), so not even the pragmas of a connection can run.
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE other (a)", "BEGIN EXCLUSIVE", "INSERT INTO other VALUES (1)"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: testlog.Warn(t), BusyTimeout: 50 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open on a locked file: %v", err)
	}
	defer s.Close()
	for _, err := range []error{s.Ping(t.Context()), s.StoreEvents(t.Context(), []*chronicle.Event{storetest.NewEvent(0)}), func() error { _, err := s.Pending(t.Context()); return err }()} {
		if !errors.Is(err, chronicle.ErrUnavailable) {
			t.Fatalf("while locked: %v, want ErrUnavailable", err)
		}
	}
	if _, err := conn.ExecContext(t.Context(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still unavailable after the lock was released: %v", s.Ping(t.Context()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.StoreEvents(t.Context(), []*chronicle.Event{storetest.NewEvent(0)}); err != nil {
		t.Fatalf("store after the lock was released: %v", err)
	}
}
