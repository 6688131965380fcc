package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/migration"
	"github.com/chronicle-audit/chronicle/postgres"
	"github.com/chronicle-audit/chronicle/sqlite"
)

// Store is the configured store, open, with its migrator when it has a
// schema (SQLite and PostgreSQL; nil for the memory store).
type Store struct {
	chronicle.Store
	Migrator func() (*migration.Migrator, error)
}

// OpenStore opens the store cfg names, to serve or, maintenance, for
// `chronicle migrate` (which leaves the schema as it is). A PostgreSQL
// that cannot be reached yet is not an error (the store connects in the
// background and answers ErrUnavailable meanwhile); ping it to know.
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, maintenance bool) (*Store, error) {
	noMigrate := maintenance || !cfg.Migrate
	switch cfg.Store {
	case config.StoreMemory:
		return &Store{Store: memory.New()}, nil
	case config.StoreSQLite:
		s, err := sqlite.Open(ctx, cfg.SQLitePath, sqlite.Options{Logger: logger, NoMigrate: noMigrate, Maintenance: maintenance})
		if err != nil {
			return nil, fmt.Errorf("open store (CHRONICLE_SQLITE_PATH=%s): %w", cfg.SQLitePath, err)
		}
		return &Store{Store: s, Migrator: s.Migrator}, nil
	case config.StorePostgres:
		s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: logger, PoolSize: cfg.DBPoolSize, NoMigrate: noMigrate, Maintenance: maintenance})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return &Store{Store: s, Migrator: s.Migrator}, nil
	}
	return nil, fmt.Errorf("CHRONICLE_STORE=%s is not available in this build", cfg.Store)
}
