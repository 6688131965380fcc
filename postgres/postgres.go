// Package postgres is Chronicle's shared store: events, entities and the
// in-process transport's journal in PostgreSQL, through a pgx connection
// pool. Several Chronicle processes can share one database: the schema is
// versioned SQL migrations embedded in the binary, applied at start-up under
// an advisory lock so processes that start together do not race.
//
// A service may start before its database: Open fails at once only when
// the database rejects it (bad URL, wrong credentials, unknown database);
// when the server cannot be reached, Open returns a Store that answers
// chronicle.ErrUnavailable and keeps connecting (and migrating) in the
// background with capped exponential backoff.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// DefaultPoolSize is the size of the pool Open makes.
const DefaultPoolSize = 8

// Options configure a Store.
type Options struct {
	// Logger receives the store's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// PoolSize is the most connections Open's pool holds. Defaults to
	// DefaultPoolSize.
	// (New uses the pool it is given as it is.)
	PoolSize int
	// NoMigrate makes Open leave the schema alone: it must be current.
	// Defaults to false: Open applies pending migrations once connected.
	NoMigrate bool
	// Maintenance opens the database for `chronicle migrate` alone: no
	// migration, and no integrator for the log, which an older schema
	// may not have.
	Maintenance bool
	// RetryMin is the first wait between connection attempts when the
	// server is unreachable; each failure doubles it. Defaults to 250ms.
	RetryMin time.Duration
	// RetryMax caps the wait between connection attempts. Defaults to 15s.
	RetryMax time.Duration
	// ConnectTimeout bounds one connection attempt, unless the URL sets
	// connect_timeout. Defaults to 5s.
	ConnectTimeout time.Duration
	// IntegrateEvery is how long the log's integrator, when idle, waits
	// before looking for new events. Defaults to DefaultIntegrateEvery.
	IntegrateEvery time.Duration
	// IntegratorStandby is how often a store whose process does not
	// integrate the log checks whether it should. Defaults to
	// DefaultIntegratorStandby.
	IntegratorStandby time.Duration
}

func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 250 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 15 * time.Second
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.IntegrateEvery <= 0 {
		o.IntegrateEvery = DefaultIntegrateEvery
	}
	if o.IntegratorStandby <= 0 {
		o.IntegratorStandby = DefaultIntegratorStandby
	}
}

// Store is a chronicle.Store on PostgreSQL. It also implements
// chronicle.Journal, so the in-process transport can be made durable in the
// same database, and chronicle.IdempotencyStore, so producer processes
// share idempotency keys.
type Store struct {
	pool     *pgxpool.Pool
	db       *sql.DB // the pool seen through database/sql, for migrations
	ownPool  bool
	opts     Options
	logger   *slog.Logger
	redacted string // the database URL without its password, for logs

	// down is why the store cannot serve now: nil once connected (and
	// migrated), an unavailable error while connecting, ErrClosed after
	// Close. Every method checks it before touching the pool.
	down atomic.Pointer[error]
	stop context.CancelFunc
	done chan struct{} // closed when the background connection loop ends

	// The log's integrator, started once the schema is known current.
	integrator     sync.Once
	stopIntegrator context.CancelFunc
	integrating    sync.WaitGroup
}

var (
	_ chronicle.Store   = (*Store)(nil)
	_ chronicle.Journal = (*Store)(nil)
)

// New returns a Store on an open pool; the caller keeps ownership of the
// pool (Close does not close it). New neither connects nor migrates: call
// Migrate, or use Open.
func New(pool *pgxpool.Pool, opts Options) *Store {
	opts.withDefaults()
	done := make(chan struct{})
	close(done)
	return &Store{
		pool:     pool,
		db:       stdlib.OpenDBFromPool(pool),
		opts:     opts,
		logger:   opts.Logger,
		redacted: redactURL(pool.Config().ConnString()),
		stop:     func() {},
		done:     done,

		stopIntegrator: func() {},
	}
}

// Open connects to databaseURL (postgres://user:password@host:5432/dbname)
// and, unless opts.NoMigrate, applies pending migrations.
//
// It fails at once when the URL is malformed or the server rejects the
// connection (wrong password, unknown role or database), or when the schema
// is newer than this binary. When the server cannot be reached, it returns
// a Store whose methods fail with chronicle.ErrUnavailable while it keeps
// connecting in the background; the store serves once connected and
// migrated. Errors and logs never show the password.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	opts.withDefaults()
	redacted := redactURL(databaseURL)
	if u, err := url.Parse(databaseURL); err == nil && u.Scheme != "" && u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("DATABASE_URL %s is not a PostgreSQL URL: the scheme must be postgres:// or postgresql://", redacted)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %s is not a valid PostgreSQL URL (expected postgres://user:password@host:5432/dbname): %s",
			redacted, parseProblem(err))
	}
	cfg.MaxConns = int32(opts.PoolSize)
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %s", redacted, parseProblem(err))
	}
	s := New(pool, opts)
	s.ownPool, s.redacted = true, redacted

	err = s.connect(ctx)
	switch {
	case err == nil:
		return s, nil
	case ctx.Err() != nil:
		s.closePool()
		return nil, fmt.Errorf("open postgres %s: %w", redacted, ctx.Err())
	case rejected(err):
		s.closePool()
		return nil, fmt.Errorf("open postgres %s: the server refused the connection: %s; check the user, password and database name in DATABASE_URL",
			redacted, describe(err))
	case !connectionProblem(err):
		s.closePool()
		return nil, fmt.Errorf("open postgres %s: %w", redacted, migrateError(err))
	}
	s.logger.Warn("postgres: cannot reach the database yet; retrying in the background",
		"url", redacted, "retry_in", opts.RetryMin, "err", describe(err))
	s.markDown(err, opts.RetryMin)
	loopCtx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go s.reconnect(loopCtx)
	return s, nil
}

// connect checks that the server accepts a connection, then migrates
// unless NoMigrate. Its errors are the driver's (from the ping) or
// Migrate's, for the caller to classify.
func (s *Store) connect(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout+time.Second)
	defer cancel()
	if err := s.pool.Ping(pctx); err != nil {
		return err
	}
	if s.opts.NoMigrate || s.opts.Maintenance {
		s.startIntegrator()
		return nil
	}
	return s.Migrate(ctx)
}

// reconnect retries connect with capped exponential backoff until it
// succeeds or Close stops it.
func (s *Store) reconnect(ctx context.Context) {
	defer close(s.done)
	wait := s.opts.RetryMin
	for attempt := 2; ; attempt++ {
		// ±20% jitter, so processes that lost the database together do
		// not knock on it together.
		t := time.NewTimer(time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := s.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if cur := s.down.Load(); cur == nil || !errors.Is(*cur, chronicle.ErrClosed) {
				s.down.CompareAndSwap(cur, nil) // fails only if Close came first
			}
			s.logger.Info("postgres: connected", "url", s.redacted, "attempts", attempt)
			return
		}
		wait = min(wait*2, s.opts.RetryMax)
		if !connectionProblem(err) {
			// Wrong credentials or a schema newer than the binary: an
			// operator must act, and this process keeps trying meanwhile.
			wait = s.opts.RetryMax
			s.logger.Error("postgres: the database refuses this process; retrying", "url", s.redacted,
				"attempt", attempt, "retry_in", wait, "err", describe(err))
		} else {
			s.logger.Warn("postgres: cannot reach the database; retrying", "url", s.redacted,
				"attempt", attempt, "retry_in", wait, "err", describe(err))
		}
		s.markDown(err, wait)
	}
}

// notAvailable is what clients are told while the database cannot serve;
// the driver's words go to the logs.
const notAvailable = "PostgreSQL is not available"

// markDown records why the store cannot serve, unless it is closed.
func (s *Store) markDown(cause error, retryAfter time.Duration) {
	cur := s.down.Load()
	if cur != nil && errors.Is(*cur, chronicle.ErrClosed) {
		return
	}
	err := chronicle.Unavailable(max(retryAfter, time.Second), notAvailable, errors.New(describe(cause)))
	s.down.CompareAndSwap(cur, &err)
}

// usable returns why the store cannot serve now, or nil.
func (s *Store) usable() error {
	if p := s.down.Load(); p != nil {
		return *p
	}
	return nil
}

// Migrator returns the migrator of this database.
func (s *Store) Migrator() (*migration.Migrator, error) {
	return migration.New(migration.Postgres, s.db, Migrations(), s.logger)
}

// Migrate applies pending migrations. Processes that migrate one database
// at once take turns under an advisory lock.
func (s *Store) Migrate(ctx context.Context) error {
	m, err := s.Migrator()
	if err != nil {
		return err
	}
	applied, err := m.Up(ctx)
	if err != nil {
		return migrateError(err)
	}
	if len(applied) > 0 {
		s.logger.Info("postgres: migrated", "url", s.redacted, "applied", len(applied), "version", applied[len(applied)-1].Version)
	}
	s.startIntegrator()
	return nil
}

// startIntegrator starts the log's integrator, once. A store that is not
// to migrate (chronicle migrate's) never integrates: it may run against a
// schema older than the binary's.
func (s *Store) startIntegrator() {
	s.integrator.Do(func() {
		if s.opts.Maintenance || errors.Is(s.usable(), chronicle.ErrClosed) {
			return
		}
		ctx, stop := context.WithCancel(context.Background())
		s.stopIntegrator = stop
		s.integrating.Go(func() { s.integrate(ctx) })
	})
}

// Name implements chronicle.Store.
func (s *Store) Name() string { return "postgres" }

// Ping implements chronicle.Store: any failure is ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		return chronicle.Unavailable(time.Second, notAvailable, errors.New(describe(err)))
	}
	return nil
}

// Close stops connecting, waits for the queries in flight, and closes the
// pool when Open made it.
func (s *Store) Close() error {
	closed := chronicle.Errorf(chronicle.ErrClosed, "postgres store is closed")
	for {
		cur := s.down.Load()
		if cur != nil && errors.Is(*cur, chronicle.ErrClosed) {
			return nil
		}
		if s.down.CompareAndSwap(cur, &closed) {
			break
		}
	}
	s.stop()
	<-s.done
	s.integrator.Do(func() {}) // none starts after this
	s.stopIntegrator()
	s.integrating.Wait()
	return s.closePool()
}

func (s *Store) closePool() error {
	err := s.db.Close()
	if s.ownPool {
		s.pool.Close()
	}
	return err
}

// run runs one operation on the pool and translates its error. When the
// connection broke under it (the server restarted, an administrator ended
// the session), it runs it once more on a fresh connection if that is
// safe: always for an idempotent operation, otherwise only when nothing
// reached the server. The broken connection's idle siblings are most
// likely dead too, so the pool drops them first.
func (s *Store) run(ctx context.Context, idempotent bool, fn func() error) error {
	if err := s.usable(); err != nil {
		return err
	}
	err := fn()
	if err != nil && connectionProblem(err) && (idempotent || pgconn.SafeToRetry(err)) && ctx.Err() == nil {
		if brokenConnection(err) {
			s.logger.Warn("postgres: connection lost; retrying on a new connection", "err", describe(err))
			s.pool.Reset()
		}
		err = fn()
	}
	return translate(err)
}

// translate turns the driver's errors into the domain's: every error that
// leaves the package has passed through here, so no pgx type escapes.
//   - no rows: chronicle.ErrNotFound (callers say what was not found);
//   - the server or the network failing, or refusing us for now:
//     chronicle.ErrUnavailable (with a retry hint);
//   - data the schema refuses (too long, malformed): chronicle.ErrInvalid;
//   - the caller's context ending: its error;
//   - anything else: a plain error with the server's message.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var ue *chronicle.UnavailableError
	if errors.As(err, &ue) || errors.Is(err, chronicle.ErrClosed) || errors.Is(err, chronicle.ErrNotFound) ||
		errors.Is(err, chronicle.ErrConflict) || errors.Is(err, chronicle.ErrInvalid) {
		return err // already the domain's
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return chronicle.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		detail := fmt.Errorf("postgres: %s (SQLSTATE %s)", pe.Message, pe.Code)
		switch {
		case connectionProblem(err), rejected(err):
			return chronicle.Unavailable(time.Second, notAvailable, detail)
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
			// Data exceptions and integrity violations: this data will
			// never be stored, however often it is sent.
			return chronicle.Wrap(chronicle.ErrInvalid, "PostgreSQL refuses this data (SQLSTATE "+pe.Code+")", detail)
		}
		return detail
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("postgres: %w", context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return chronicle.Unavailable(time.Second, "PostgreSQL did not answer in time", context.DeadlineExceeded)
	case connectionProblem(err):
		return chronicle.Unavailable(time.Second, notAvailable, errors.New(describe(err)))
	}
	return fmt.Errorf("postgres: %s", err.Error())
}

// migrateError is err from the migrator as the domain's: the migrator's
// own verdicts as they are, driver errors translated.
func migrateError(err error) error {
	if err == nil || errors.Is(err, migration.ErrNewerSchema) {
		return err
	}
	return fmt.Errorf("migrate: %w", translate(err))
}

// connectionProblem reports whether err is the server or the network
// failing (or the server not taking connections for now), as opposed to
// the server answering a query with an error. Such errors are transient.
func connectionProblem(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
		case strings.HasPrefix(pe.Code, "53"): // insufficient resources: too many connections, disk full
		case strings.HasPrefix(pe.Code, "57P"): // shut down, starting up, database dropped, session timed out
		case strings.HasPrefix(pe.Code, "58"): // system error: I/O
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock: worth retrying
		case pe.Code == "25006": // read-only transaction: a standby, after a failover
		default:
			return false
		}
		return true
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.Is(err, chronicle.ErrUnavailable) || errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// brokenConnection reports whether err means the connection itself is
// gone: the network failed or the server ended the session.
func brokenConnection(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02"
	}
	return connectionProblem(err)
}

// rejected reports whether the server refused the connection for a reason
// that retrying will not fix: wrong password or unknown role (class 28),
// unknown database (3D000).
func rejected(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000")
}

// describe is err's message for logs and other errors: for a server error,
// its message and SQLSTATE; for a failed connection, its cause. pgx's own
// messages never include the password.
func describe(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err.Error()
}

// parseProblem is what is wrong with a connection string, without the
// string itself (pgx quotes it, password masked, before the problem).
func parseProblem(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "`: "); ok {
		msg = after
	}
	if strings.Contains(msg, "@") {
		return "the URL cannot be parsed"
	}
	return msg
}

// redactURL returns the connection string with its password replaced, for
// logs and messages.
func redactURL(conn string) string {
	if !strings.Contains(conn, "://") { // keyword/value form
		return passwordSetting.ReplaceAllString(conn, "${1}xxxxx")
	}
	u, err := url.Parse(conn)
	if err != nil {
		return "(not shown: it cannot be parsed, and may contain a password)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

var passwordSetting = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
