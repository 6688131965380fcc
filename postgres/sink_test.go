package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/postgres"
)

// TestSinkLeaseLost: two stores (two processes) on one database: the
// sink's advisory lock lets one lease it; when the holder's session is
// terminated, its lease fails every call (it can no longer move the
// cursor), and the other store takes the sink over.
func TestSinkLeaseLost(t *testing.T) {
	t.Parallel()
	a, name := open(t)
	b := openURL(t, withDatabase(t, adminURL(), name), postgres.Options{})
	ctx := t.Context()
	la, err := a.LeaseSink(ctx, "siem")
	must(t, err)
	defer la.Release()
	must(t, la.Advance(ctx, 42))
	if _, err := b.LeaseSink(ctx, "siem"); !errors.Is(err, chronicle.ErrConflict) {
		t.Fatalf("the other process leased a held sink: %v", err)
	}
	// End the holder's session (as a network failure or a crashed host
	// would): every backend holding an advisory lock in this test's
	// database, and none of another test's.
	conn := dbConn(t, name)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
  WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	var lb chronicle.SinkLease
	eventually(t, 10*time.Second, "the other process's lease", func() error {
		lb, err = b.LeaseSink(ctx, "siem")
		return err
	})
	defer lb.Release()
	if err := la.Advance(ctx, 99); err == nil {
		t.Fatal("a lease whose session ended moved the cursor")
	}
	st, err := lb.State(ctx)
	if err != nil || st.Cursor != 42 {
		t.Fatalf("State under the new lease = %+v, %v; want cursor 42", st, err)
	}
}
