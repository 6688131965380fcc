package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/migration"
	"github.com/chronicle-audit/chronicle/postgres"
)

// openPostgresMigrator connects to DATABASE_URL (or the POSTGRES_*
// variables) without migrating and returns the migrator.
func openPostgresMigrator(ctx context.Context, c *config.Config, logger *slog.Logger) (*migration.Migrator, func(), error) {
	s, err := postgres.Open(ctx, c.DatabaseURL, postgres.Options{Logger: logger, NoMigrate: true, PoolSize: 2})
	if err != nil {
		return nil, nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("PostgreSQL at %s: %w", config.Redact(c.DatabaseURL), err)
	}
	m, err := s.Migrator()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return m, func() { s.Close() }, nil
}
