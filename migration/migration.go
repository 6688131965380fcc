// Package migration applies a store's versioned SQL migrations (embedded in
// the binary) with goose, for `chronicle migrate` and for services at
// start-up. It refuses a database whose schema is newer than the binary.
package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Dialect names a database the migrator knows.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Migrator applies one store's migrations to one database.
type Migrator struct {
	p       *goose.Provider
	dialect Dialect
}

// Status is one migration and whether the database has it.
type Status struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	Applied   bool      `json:"applied"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// ErrNewerSchema: the database was migrated by a newer Chronicle.
var ErrNewerSchema = errors.New("database schema is newer than this binary")

// New returns a migrator for the migrations in fsys (files named
// NNNNN_name.sql with goose's "-- +goose Up/Down" sections). On PostgreSQL
// a session advisory lock serialises processes that migrate at once.
func New(dialect Dialect, db *sql.DB, fsys fs.FS, logger *slog.Logger) (*Migrator, error) {
	var gd goose.Dialect
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	switch dialect {
	case SQLite:
		gd = goose.DialectSQLite3
	case Postgres:
		gd = goose.DialectPostgres
		// Probe every second for up to 5 minutes: another process that
		// started at the same moment holds the lock while it migrates.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return nil, fmt.Errorf("unknown migration dialect %q", dialect)
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{p: p, dialect: dialect}, nil
}

// Latest is the newest schema version this binary knows.
func (m *Migrator) Latest() int64 {
	srcs := m.p.ListSources()
	return srcs[len(srcs)-1].Version
}

// Current returns the database's schema version (0 when never migrated).
func (m *Migrator) Current(ctx context.Context) (int64, error) {
	v, err := m.p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// check refuses a database migrated beyond what this binary knows: running
// old code on a newer schema could write rows the schema no longer means.
func (m *Migrator) check(ctx context.Context) error {
	cur, err := m.Current(ctx)
	if err != nil {
		return err
	}
	if latest := m.Latest(); cur > latest {
		return fmt.Errorf("%w: the database is at version %d, this chronicle knows versions up to %d; upgrade chronicle (or migrate down with the newer binary)", ErrNewerSchema, cur, latest)
	}
	return nil
}

// Up applies every pending migration and returns the ones it applied.
func (m *Migrator) Up(ctx context.Context) ([]Status, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	res, err := m.p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate up: %w", err)
	}
	return results(res), nil
}

// Down rolls back the latest applied migration. It returns nil, nil when
// nothing is applied.
func (m *Migrator) Down(ctx context.Context) (*Status, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	res, err := m.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) || errors.Is(err, database.ErrVersionNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migrate down: %w", err)
	}
	if res == nil {
		return nil, nil
	}
	return &results([]*goose.MigrationResult{res})[0], nil
}

// Status lists every known migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	st, err := m.p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Status, len(st))
	for i, s := range st {
		out[i] = Status{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		}
	}
	return out, nil
}

func results(rs []*goose.MigrationResult) []Status {
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = Status{Version: r.Source.Version, Name: path.Base(r.Source.Path), Applied: r.Direction == "up"}
	}
	return out
}
