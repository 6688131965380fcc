// Package sqlite is Chronicle's embedded store: events, entities and the
// in-process transport's journal in one SQLite file (pure Go driver, WAL,
// synchronous commits).
//
// SQLite has one writer at a time, so every write goes through a single
// writer goroutine that groups whatever is waiting (journal appends from
// concurrent requests, consumer batches, entity changes) into one
// transaction and one fsync. Reads use a separate pool and never wait for
// writes.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
	"github.com/chronicle-audit/chronicle/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Options configure a Store.
type Options struct {
	// Logger receives the store's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// ReadConns is the size of the read pool. Defaults to 4.
	ReadConns int
	// NoMigrate skips applying pending migrations at Open: the schema
	// must be current. Defaults to false: Open migrates.
	NoMigrate bool
	// Maintenance opens the file for `chronicle migrate` alone: no
	// migration, and none of the writer's state (the journal's numbering,
	// the log), which an older schema may not have; Open fails at once if
	// the file cannot be used.
	Maintenance bool
	// MaxGroup bounds how many waiting writes share one transaction.
	// Defaults to 512.
	MaxGroup int
	// BusyTimeout is how long a statement waits for another process's
	// lock on the file before failing. Defaults to 10s.
	BusyTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to ready a
	// file that another process holds locked at start-up. Default to
	// 250ms and 15s.
	RetryMin, RetryMax time.Duration
}

func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 512
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 250 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 15 * time.Second
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
}

// Store is a chronicle.Store on one SQLite file, journal and idempotency
// keys included.
type Store struct {
	path   string
	opts   Options
	logger *slog.Logger
	wdb    *sql.DB // one connection: the writer's
	rdb    *sql.DB // read-only pool

	ops      chan *op
	mu       sync.RWMutex // guards closed and writing against sends on ops
	closed   bool
	writing  bool          // the writer goroutine runs
	done     chan struct{} // closed when the writer ends
	maxGroup int

	// down is why the store cannot serve yet (the file was locked at
	// start-up and readying it is retried in the background), or nil.
	down      atomic.Pointer[error]
	stopRetry context.CancelFunc
	retrying  sync.WaitGroup

	// Owned by the writer goroutine (and by ready, before it starts).
	nextSeq int64
	stmts   map[string]*sql.Stmt
	log     *integrity.Appender // the log as committed; nil: read it again
}

var _ chronicle.Store = (*Store)(nil)

// op is one write waiting for the writer goroutine.
type op struct {
	fn   func(tx *sql.Tx) error
	done chan error
}

// Open opens (creating if needed, readable by its owner only) the database
// at path, applies pending migrations, and starts the writer.
//
// When another process holds the file locked (SQLITE_BUSY) for longer than
// BusyTimeout, Open does not fail: it returns a Store that answers
// chronicle.ErrUnavailable and keeps trying in the background, so a
// service can start before the lock is released. Any other problem (a
// path that cannot be opened, a schema newer than the binary) fails at
// once.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.withDefaults()
	s := &Store{
		path:     path,
		opts:     opts,
		logger:   opts.Logger,
		ops:      make(chan *op, opts.MaxGroup),
		done:     make(chan struct{}),
		maxGroup: opts.MaxGroup,
		stmts:    map[string]*sql.Stmt{},
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	var err error
	// synchronous(FULL): a commit is on disk when it returns, so a power
	// cut after 202 loses nothing. _txlock=immediate: the writer takes
	// the write lock at BEGIN, never upgrading mid-transaction.
	s.wdb, err = sql.Open("sqlite", dsn(path, "_txlock=immediate",
		"_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", busy,
		"_pragma=cache_size(-32768)", "_pragma=temp_store(MEMORY)"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.rdb, err = sql.Open("sqlite", dsn(path, "_pragma=query_only(1)", busy, "_pragma=cache_size(-16384)"))
	if err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	err = s.ready(ctx)
	switch {
	case err == nil:
		return s, nil
	case opts.Maintenance || !locked(err) || ctx.Err() != nil:
		s.closeDBs()
		return nil, fmt.Errorf("sqlite %s: %w", path, translate(err))
	}
	s.logger.Warn("sqlite: the database file is locked by another process; retrying in the background",
		"path", path, "retry_in", opts.RetryMin, "err", err)
	s.markDown(err, opts.RetryMin)
	retryCtx, stop := context.WithCancel(context.Background())
	s.stopRetry = stop
	s.retrying.Go(func() { s.retry(retryCtx) })
	return s, nil
}

// ready makes the file usable: it pings, migrates, reads where the
// journal's numbering stands, prepares the hot statements and starts the
// writer. Maintenance stops after the ping.
func (s *Store) ready(ctx context.Context) error {
	if err := s.wdb.PingContext(ctx); err != nil {
		return err
	}
	if s.opts.Maintenance {
		s.startWriter()
		return nil
	}
	if !s.opts.NoMigrate {
		if err := s.migrateLocked(ctx); err != nil {
			return err
		}
	}
	if err := s.wdb.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM inproc_journal`).Scan(&s.nextSeq); err != nil {
		return err
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if err := s.sequenceBacklog(ctx); err != nil {
		return err
	}
	s.startWriter()
	return nil
}

func (s *Store) startWriter() {
	s.mu.Lock()
	s.writing = true
	s.mu.Unlock()
	go s.run()
}

// retry readies the file with capped exponential backoff until it
// succeeds, fails for a reason waiting cannot fix, or Close stops it.
func (s *Store) retry(ctx context.Context) {
	wait := s.opts.RetryMin
	for attempt := 2; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := s.ready(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			s.down.Store(nil)
			s.logger.Info("sqlite: database ready", "path", s.path, "attempts", attempt)
			return
		case !locked(err):
			s.logger.Error("sqlite: cannot ready the database; retrying", "path", s.path, "err", err)
		default:
			s.logger.Warn("sqlite: the database file is still locked; retrying", "path", s.path, "attempt", attempt, "err", err)
		}
		wait = min(wait*2, s.opts.RetryMax)
		s.markDown(err, wait)
	}
}

func (s *Store) markDown(cause error, retryAfter time.Duration) {
	err := chronicle.Unavailable(max(retryAfter, time.Second), "the SQLite database is locked by another process", cause)
	s.down.Store(&err)
}

// usable returns why the store cannot serve yet, or nil.
func (s *Store) usable() error {
	if p := s.down.Load(); p != nil {
		return *p
	}
	return nil
}

// locked reports whether err is SQLite waiting on another connection's
// lock: the one problem at start-up that time fixes.
func locked(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// createPrivate creates the database file, when it does not exist, with
// mode 0600: audit events are for their owner's eyes. SQLite gives its
// -wal and -shm files the database file's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return err
	}
	return f.Close()
}

func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	q := ""
	for i, p := range params {
		if i > 0 {
			q += "&"
		}
		q += p
	}
	u.RawQuery = q
	return u.String()
}

// migrateLocked applies pending migrations holding an exclusive lock on a
// file beside the database, so processes that open one file at the same
// moment (a producer and consumers on one host) do not race to apply the
// same migration.
func (s *Store) migrateLocked(ctx context.Context) error {
	lock, err := os.OpenFile(s.path+".migrate-lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open migration lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	m, err := s.Migrator()
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	return err
}

// Migrator returns the migrator of this database.
func (s *Store) Migrator() (*migration.Migrator, error) {
	return migration.New(migration.SQLite, s.wdb, Migrations(), nil)
}

// Name implements chronicle.Store.
func (s *Store) Name() string { return "sqlite" }

// Ping implements chronicle.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return chronicle.Unavailable(time.Second, "the SQLite database cannot be read", fmt.Errorf("sqlite %s: %w", s.path, err))
	}
	return nil
}

// Close finishes the writes already submitted, then closes the database.
func (s *Store) Close() error {
	if s.stopRetry != nil {
		s.stopRetry()
		s.retrying.Wait()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	writing := s.writing
	s.mu.Unlock()
	if writing {
		<-s.done
	}
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	for _, st := range s.stmts {
		st.Close()
	}
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// write runs fn in the writer's next transaction and waits until that
// transaction committed (or failed). Once submitted, it waits whatever ctx
// does: the caller must learn whether its write is durable.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return chronicle.Errorf(chronicle.ErrClosed, "sqlite store is closed")
	}
	if !s.writing {
		s.mu.RUnlock()
		if err := s.usable(); err != nil {
			return err
		}
		return chronicle.Unavailable(time.Second, "the SQLite database is not ready", nil)
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	return <-o.done
}

// run is the writer goroutine: it takes every op that is waiting (up to
// maxGroup), runs them in one transaction and commits once.
func (s *Store) run() {
	defer close(s.done)
	group := make([]*op, 0, s.maxGroup)
	for first := range s.ops {
		group = append(group[:0], first)
	more:
		for len(group) < s.maxGroup {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break more
				}
				group = append(group, o)
			default:
				break more
			}
		}
		s.commit(group)
	}
}

// commit runs a group in one transaction. If it fails, each op is retried
// alone, so one bad write cannot fail the writes it was grouped with.
func (s *Store) commit(group []*op) {
	err := s.inTx(func(tx *sql.Tx) error {
		for _, o := range group {
			if err := o.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, o := range group {
			o.done <- err
		}
		return
	}
	s.logger.Warn("sqlite: grouped write failed, retrying one by one", "ops", len(group), "err", err)
	for _, o := range group {
		o.done <- s.inTx(o.fn)
	}
}

func (s *Store) inTx(fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return translate(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.log = nil // it may hold records that were rolled back
		return translate(err)
	}
	if err := tx.Commit(); err != nil {
		s.log = nil
		return translate(err)
	}
	return nil
}

// Statements the writer runs for every batch, prepared once at Open.
var hotStatements = []string{insertEventOne, insertEventMany, insertLeafOne, insertLeafMany, insertPathOne, insertPathMany,
	sqlStored, sqlLogSize, sqlJournalInsert, sqlJournalDelete, sqlJournalMove, sqlEntityPut}

// prepare readies the hot statements on the writer's connection. It runs
// before the writer starts: while a transaction holds the only
// connection, preparing on the pool would wait forever.
func (s *Store) prepare(ctx context.Context) error {
	for _, q := range hotStatements {
		st, err := s.wdb.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns query as a statement of tx, prepared once when it is a hot
// statement. Only the writer goroutine calls it.
func (s *Store) stmt(tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.Stmt(st), nil
	}
	return tx.Prepare(query)
}

// translate turns driver errors into the domain's.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return chronicle.Unavailable(time.Second, "the SQLite database is busy", err)
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY:
			return chronicle.Unavailable(time.Second, "the SQLite database cannot be written", err)
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return chronicle.Wrap(chronicle.ErrInvalid, "SQLite cannot store this data", err)
		}
	}
	return err
}
