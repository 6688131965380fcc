package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/internal/journaltest"
	"github.com/chronicle-audit/chronicle/internal/migrationtest"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/internal/transporttest"
	"github.com/chronicle-audit/chronicle/migration"
	"github.com/chronicle-audit/chronicle/postgres"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) chronicle.Store {
		s, _ := open(t)
		return s
	})
}

// TestNew: a store on the caller's pool migrates on demand and leaves the
// pool open when it closes.
func TestJournal(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) (chronicle.Store, func() chronicle.Store) {
		dbURL, _ := newDatabase(t)
		s := openURL(t, dbURL, postgres.Options{})
		return s, func() chronicle.Store {
			s.Close()
			return openURL(t, dbURL, postgres.Options{})
		}
	})
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	migrationtest.Run(t, migrationtest.Harness{
		Empty: func(t *testing.T) (chronicle.Store, *migration.Migrator) {
			dbURL, _ := newDatabase(t)
			s := openURL(t, dbURL, postgres.Options{Maintenance: true})
			m, err := s.Migrator()
			must(t, err)
			return s, m
		},
		Newer: func(t *testing.T) func() error {
			s, name := open(t)
			// A newer chronicle applied version 99.
			_, err := dbConn(t, name).Exec(t.Context(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)`)
			must(t, err)
			s.Close()
			return func() error {
				s, err := postgres.Open(t.Context(), withDatabase(t, adminURL(), name), postgres.Options{Logger: testLogger(t, nil), PoolSize: 2})
				if err == nil {
					s.Close()
				}
				return err
			}
		},
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	dbURL, _ := newDatabase(t)
	pool, err := pgxpool.New(t.Context(), dbURL)
	must(t, err)
	defer pool.Close()
	s := postgres.New(pool, postgres.Options{Logger: testLogger(t, nil)})
	must(t, s.Migrate(t.Context()))
	e := storetest.NewEvent(0)
	must(t, s.StoreEvents(t.Context(), []*chronicle.Event{e}))
	if _, err := s.Event(t.Context(), e.ID); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("Close closed the caller's pool: %v", err)
	}
	if err := s.StoreEvents(t.Context(), []*chronicle.Event{storetest.NewEvent(1)}); !errors.Is(err, chronicle.ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, chronicle.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}

func TestStoreEventsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := t.Context()
	good := storetest.NewEvent(0)
	for name, bad := range map[string]*chronicle.Event{
		"ActorTooLong": storetest.NewEvent(time.Second, func(e *chronicle.Event) { e.Actor = strings.Repeat("a", 256) }),
		"IDNotUUID":    storetest.NewEvent(time.Second, func(e *chronicle.Event) { e.ID = "not-a-uuid" }),
		"Nil":          nil,
	} {
		err := s.StoreEvents(ctx, []*chronicle.Event{good, bad})
		if !errors.Is(err, chronicle.ErrInvalid) {
			t.Fatalf("%s: StoreEvents = %v, want ErrInvalid", name, err)
		}
		if _, err := s.Event(ctx, good.ID); !errors.Is(err, chronicle.ErrNotFound) {
			t.Fatalf("%s: the good event of a failed batch was stored (%v)", name, err)
		}
	}
	// 255 characters (not bytes) fit.
	long := storetest.NewEvent(time.Second, func(e *chronicle.Event) { e.Actor = strings.Repeat("é", 255) })
	must(t, s.StoreEvents(ctx, []*chronicle.Event{good, long}))
}

// TestTimestamps: timestamps come back in UTC, at microsecond precision.
func TestTimestamps(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ts := time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
	e := storetest.NewEvent(0, func(e *chronicle.Event) { e.Timestamp = ts })
	must(t, s.StoreEvents(t.Context(), []*chronicle.Event{e}))
	got, err := s.Event(t.Context(), e.ID)
	must(t, err)
	want := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	if !got.Timestamp.Equal(want) || got.Timestamp.Location() != time.UTC {
		t.Fatalf("timestamp = %v, want %v", got.Timestamp, want)
	}
	// A listing continued from that (truncated) position excludes it.
	p := chronicle.PositionOf(got)
	list, err := s.Events(t.Context(), chronicle.EventFilter{After: &p, Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("after its own position: %v, %v", list, err)
	}
	bad := chronicle.Position{Timestamp: ts, ID: "bogus"}
	if _, err := s.Events(t.Context(), chronicle.EventFilter{After: &bad, Limit: 10}); !errors.Is(err, chronicle.ErrInvalid) {
		t.Fatalf("position with a bad id: %v, want ErrInvalid", err)
	}
}

// TestConcurrentStartup: several processes starting at once on a fresh
// database migrate it once, without errors.
func TestConcurrentStartup(t *testing.T) {
	t.Parallel()
	dbURL, name := newDatabase(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), dbURL, postgres.Options{Logger: testLogger(t, nil), PoolSize: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	for i, s := range stores {
		e := storetest.NewEvent(time.Duration(i))
		must(t, s.StoreEvents(t.Context(), []*chronicle.Event{e}))
	}
	var applied, versions int
	err := dbConn(t, name).QueryRow(t.Context(),
		`SELECT count(*) FILTER (WHERE version_id > 0), count(DISTINCT version_id) FILTER (WHERE version_id > 0) FROM goose_db_version WHERE is_applied`).Scan(&applied, &versions)
	must(t, err)
	m, err := stores[0].Migrator()
	must(t, err)
	// One row per migration, each once (versions may have gaps).
	st, err := m.Status(t.Context())
	must(t, err)
	if n := len(st); applied != n || versions != n {
		t.Fatalf("goose_db_version has %d applied rows for %d versions, want %d and %d", applied, versions, n, n)
	}
}

// TestOpenRefused: what retrying cannot fix fails at once, with a message
// that says what to check and never shows the password.
func TestOpenRefused(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55"
	network, addr := serverAddr(t)
	server := func(user, db string) string {
		if network == "unix" { // the socket's directory and port as parameters
			host, port, _ := strings.Cut(strings.TrimPrefix(addr, "/"), "/.s.PGSQL.")
			return fmt.Sprintf("postgres://%s:%s@/%s?host=/%s&port=%s&sslmode=disable", user, password, db, host, port)
		}
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, addr, db)
	}
	fake := fakeServer(t)
	tests := []struct {
		name, url string
		want      []string
	}{
		{"MalformedURL", "postgres://alice:" + password + "@db.example:notaport/chronicle", []string{"DATABASE_URL", "invalid port"}},
		{"NotPostgres", "mysql://alice:" + password + "@db.example/chronicle", []string{"DATABASE_URL"}},
		{"WrongPassword", "postgres://alice:" + password + "@" + fake.addr + "/chronicle?sslmode=disable", []string{"28P01", "password authentication failed", "DATABASE_URL"}},
		{"UnknownRole", server("no_such_role_"+strings.ReplaceAll(uuid.NewString()[:8], "-", ""), "postgres"), []string{"28000", "no_such_role_", "DATABASE_URL"}},
		{"UnknownDatabase", server(currentUser(t), "no_such_db_"+strings.ReplaceAll(uuid.NewString()[:8], "-", "")), []string{"3D000", "no_such_db_", "DATABASE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := postgres.Open(t.Context(), tt.url, postgres.Options{Logger: testLogger(t, nil), RetryMin: time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open took %v to fail", d)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
	t.Cleanup(func() {
		if got := fake.passwords(); len(got) == 0 || got[0] != password {
			t.Errorf("the fake server received passwords %q: the wrong-password case did not send one", got)
		}
	})
}

// TestOpenUnreachable: with nothing listening, Open returns a store at
// once; it answers ErrUnavailable and keeps trying; logs hide the password.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Unreach"
	logs := &testlog.Buffer{}
	dbURL := "postgres://alice:" + password + "@" + closedPort(t) + "/chronicle?sslmode=disable"
	start := time.Now()
	s, err := postgres.Open(t.Context(), dbURL, postgres.Options{Logger: testLogger(t, logs), RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %v", d)
	}
	ctx := t.Context()
	checks := map[string]error{"Ping": s.Ping(ctx)}
	_, checks["Event"] = s.Event(ctx, uuid.NewString())
	_, checks["EventNotUUID"] = s.Event(ctx, "x")
	_, checks["Events"] = s.Events(ctx, chronicle.EventFilter{Limit: 10})
	checks["StoreEvents"] = s.StoreEvents(ctx, []*chronicle.Event{storetest.NewEvent(0)})
	checks["PutEntity"] = s.PutEntity(ctx, &chronicle.Entity{Key: "k", Name: "n"})
	_, checks["Entities"] = s.Entities(ctx)
	_, checks["CountEntities"] = s.CountEntities(ctx)
	checks["Append"] = s.Append(ctx, []*chronicle.JournalEntry{{Queue: "q", Message: chronicle.Message{ID: "x", Type: "t"}}})
	_, checks["Pending"] = s.Pending(ctx)
	for name, err := range checks {
		var ue *chronicle.UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter <= 0 {
			t.Errorf("%s: %v, want an UnavailableError with a retry hint", name, err)
		} else if strings.Contains(err.Error(), password) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
	// It keeps trying in the background; Close stops it promptly.
	eventually(t, 5*time.Second, "retries logged", func() error {
		if n := strings.Count(logs.String(), "retrying"); n < 3 {
			return fmt.Errorf("%d attempts logged", n)
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("logs show the password:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "alice:xxxxx@") {
		t.Errorf("logs do not name the (redacted) URL:\n%s", logs)
	}
}

// TestOpenRecovers: a store opened while the server is unreachable
// connects, migrates and serves once the server can be reached.
func TestOpenRecovers(t *testing.T) {
	t.Parallel()
	dbURL, _ := newDatabase(t)
	addr := closedPort(t)
	s := openURL(t, viaAddr(t, dbURL, addr), postgres.Options{RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err := s.Ping(t.Context()); !errors.Is(err, chronicle.ErrUnavailable) {
		t.Fatalf("Ping before the server is reachable: %v, want ErrUnavailable", err)
	}
	time.Sleep(150 * time.Millisecond) // a few refused attempts
	startProxy(t, addr)
	eventually(t, 15*time.Second, "store healthy through the proxy", func() error { return s.Ping(t.Context()) })
	e := storetest.NewEvent(0)
	must(t, s.StoreEvents(t.Context(), []*chronicle.Event{e}))
	if _, err := s.Event(t.Context(), e.ID); err != nil {
		t.Fatal(err)
	}
	m, err := s.Migrator()
	must(t, err)
	if v, err := m.Current(t.Context()); err != nil || v != m.Latest() {
		t.Fatalf("schema version after recovery = %d, %v; want %d", v, err, m.Latest())
	}
}

// TestOutage: the server ends the store's connections (as a restart or an
// administrator would). A write fails with ErrUnavailable or succeeds,
// never half; the store works again at once.
func TestOutage(t *testing.T) {
	t.Parallel()
	s, name := open(t)
	ctx := t.Context()
	adm := admin(t)
	terminate := func() {
		t.Helper()
		_, err := adm.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
		must(t, err)
	}
	batch := func(round, size int) []*chronicle.Event {
		out := make([]*chronicle.Event, size)
		for i := range out {
			out[i] = storetest.NewEvent(time.Duration(round*1000+i) * time.Microsecond)
		}
		return out
	}
	storeRetrying := func(b []*chronicle.Event) {
		t.Helper()
		var err error
		for range 20 {
			if err = s.StoreEvents(ctx, b); err == nil || !errors.Is(err, chronicle.ErrUnavailable) {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		must(t, err)
	}
	var all [][]*chronicle.Event

	// One at a time: kill every connection, then write.
	for round := range 4 {
		_, _ = s.Events(ctx, chronicle.EventFilter{Limit: 1}) // a pooled connection to kill
		terminate()
		b := batch(round, 50)
		err := s.StoreEvents(ctx, b)
		if err != nil && !errors.Is(err, chronicle.ErrUnavailable) {
			t.Fatalf("round %d: StoreEvents = %v, want nil or ErrUnavailable", round, err)
		}
		t.Logf("round %d: %v", round, err)
		storeRetrying(b)
		all = append(all, b)
	}

	// While writers write: batches fail whole or succeed whole.
	const writers, rounds = 2, 15
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for range 10 {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			terminate()
		}
	})
	var mu sync.Mutex
	var failed [][]*chronicle.Event
	errs := make(chan error, writers)
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for r := range rounds {
				b := batch(100+w*rounds+r, 40)
				err := s.StoreEvents(ctx, b)
				mu.Lock()
				all = append(all, b)
				if err != nil {
					failed = append(failed, b)
				}
				mu.Unlock()
				if err != nil && !errors.Is(err, chronicle.ErrUnavailable) {
					errs <- err
					return
				}
			}
		})
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("StoreEvents during the outage: %v, want nil or ErrUnavailable", err)
	}
	conn := dbConn(t, name)
	count := func(b []*chronicle.Event) int {
		ids := make([]string, len(b))
		for i, e := range b {
			ids[i] = e.ID
		}
		var n int
		must(t, conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE id = ANY($1::uuid[])`, ids).Scan(&n))
		return n
	}
	t.Logf("%d of %d batches failed during the outage", len(failed), writers*rounds)
	for _, b := range failed {
		if n := count(b); n != 0 && n != len(b) {
			t.Fatalf("a failed batch is half-written: %d of %d rows", n, len(b))
		}
		storeRetrying(b)
	}
	for _, b := range all {
		if n := count(b); n != len(b) {
			t.Fatalf("batch has %d of %d rows", n, len(b))
		}
	}
	must(t, s.Ping(ctx))
}

// dbConn returns a direct connection to the test database name.
func dbConn(t testing.TB, name string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), withDatabase(t, adminURL(), name))
	must(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func currentUser(t testing.TB) string {
	var u string
	must(t, admin(t).QueryRow(t.Context(), `SELECT current_user`).Scan(&u))
	return u
}

type fake struct {
	addr string
	mu   sync.Mutex
	pws  []string
}

func (f *fake) passwords() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pws
}

// fakeServer is a PostgreSQL server on a loopback port that asks for a
// password and rejects every one (SQLSTATE 28P01): the test server trusts
// every local connection, so it cannot show a wrong password.
func fakeServer(t testing.TB) *fake {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	f := &fake{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for { // ends when cleanup closes the listener
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				be := pgproto3.NewBackend(c, c)
				msg, err := be.ReceiveStartupMessage()
				if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
					c.Write([]byte("N"))
					msg, err = be.ReceiveStartupMessage()
				}
				sm, ok := msg.(*pgproto3.StartupMessage)
				if err != nil || !ok {
					return
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				if be.Flush() != nil || be.SetAuthType(pgproto3.AuthTypeCleartextPassword) != nil {
					return
				}
				if m, err := be.Receive(); err == nil {
					if pw, ok := m.(*pgproto3.PasswordMessage); ok {
						f.mu.Lock()
						f.pws = append(f.pws, pw.Password)
						f.mu.Unlock()
					}
				}
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01",
					Message: fmt.Sprintf("password authentication failed for user %q", sm.Parameters["user"])})
				be.Flush()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f
}

// PostgreSQL cannot store a NUL character (SQLSTATE 22021). An event that
// reaches it anyway (ingestion refuses NUL; this one is published straight
// to the in-process transport) is dead-lettered with the store's reason,
// and the events around it are stored: it cannot stall its consumers.
func TestNULDeadLetteredNotRetried(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	tr, err := inproc.New(t.Context(), inproc.Config{Routing: transporttest.SingleRoute(t), Journal: s, Check: ingest.Check,
		ConsumerCount: 1, Logger: testLogger(t, nil)})
	must(t, err)
	t.Cleanup(func() { tr.Close(context.Background()) })
	var good []*chronicle.Event
	for i := range 8 {
		e := transporttest.NewEvent("document.viewed")
		if i == 3 {
			e.Actor = "nul\x00actor"
			must(t, tr.Publish(t.Context(), []*chronicle.Event{e}))
			continue
		}
		good = append(good, e)
		must(t, tr.Publish(t.Context(), []*chronicle.Event{e}))
	}
	must(t, tr.StartConsumers(t.Context(), "default"))
	transporttest.Eventually(t, 20*time.Second, "the other events stored", func() bool {
		for _, e := range good {
			if _, err := s.Event(t.Context(), e.ID); err != nil {
				return false
			}
		}
		return true
	})
	var dl []chronicle.DeadLetter
	transporttest.Eventually(t, 10*time.Second, "the NUL event dead-lettered", func() bool {
		dl, _ = tr.PeekDeadLetters(t.Context(), "chronicle.all.dlq", 0)
		return len(dl) == 1
	})
	if !strings.Contains(dl[0].Reason, "store refused the event") || !strings.Contains(dl[0].Reason, "22021") {
		t.Fatalf("dead letter reason = %q", dl[0].Reason)
	}
}
