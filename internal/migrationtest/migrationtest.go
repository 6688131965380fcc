// Package migrationtest is the behaviour suite of every store's schema
// migrations (SQLite and PostgreSQL): all apply, roll back one by one and
// apply again, and a database migrated by a newer Chronicle is refused.
package migrationtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/migration"
)

// Harness opens one store's databases.
type Harness struct {
	// Empty returns a store on a new database that has never been
	// migrated, opened without migrating, and its migrator.
	Empty func(t *testing.T) (chronicle.Store, *migration.Migrator)
	// Newer returns a function that opens (migrating) a database that a
	// newer Chronicle migrated: its error must refuse to go on.
	Newer func(t *testing.T) (open func() error)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("UpDownUp", func(t *testing.T) {
		t.Parallel()
		testUpDownUp(t, h)
	})
	t.Run("NewerSchemaRefused", func(t *testing.T) {
		t.Parallel()
		err := h.Newer(t)()
		if !errors.Is(err, migration.ErrNewerSchema) || !strings.Contains(err.Error(), "version 99") {
			t.Fatalf("opening a database at version 99: %v, want ErrNewerSchema naming the version", err)
		}
	})
}

func testUpDownUp(t *testing.T, h Harness) {
	s, m := h.Empty(t)
	ctx := t.Context()
	latest := int(m.Latest())
	// Versions may have gaps (a number kept for a migration on another
	// branch), so n, the number of migrations, may be less than latest.
	st, err := m.Status(ctx)
	n := len(st)
	if err != nil || n < 6 || st[n-1].Version != int64(latest) || st[0].Applied {
		t.Fatalf("status before = %+v, %v", st, err)
	}
	applied, err := m.Up(ctx)
	if err != nil || len(applied) != n {
		t.Fatalf("Up = %+v, %v", applied, err)
	}
	st, err = m.Status(ctx)
	if err != nil || !st[n-1].Applied || st[4].Name != "00005_create_inproc_journal.sql" {
		t.Fatalf("status after = %+v, %v", st, err)
	}
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Up = %+v, %v", again, err)
	}
	if err := s.StoreEvents(ctx, []*chronicle.Event{storetest.NewEvent(0)}); err != nil {
		t.Fatalf("store after Up: %v", err)
	}
	down, err := m.Down(ctx)
	if err != nil || down == nil || down.Version != int64(latest) {
		t.Fatalf("Down = %+v, %v", down, err)
	}
	for range n - 1 {
		if _, err := m.Down(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := m.Down(ctx); err != nil || d != nil {
		t.Fatalf("Down with nothing applied = %+v, %v", d, err)
	}
	if v, err := m.Current(ctx); err != nil || v != 0 {
		t.Fatalf("version after every Down = %d, %v", v, err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreEvents(ctx, []*chronicle.Event{storetest.NewEvent(0)}); err != nil {
		t.Fatalf("store after Down and Up: %v", err)
	}
}
