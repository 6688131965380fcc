package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/migration"
	"github.com/chronicle-audit/chronicle/service"
)

// migrateCommands adds `migrate`: the seed's migrate, migrate-up,
// migrate-down and migrate-status, on the configured store (SPEC §10).
func migrateCommands(register func(*command)) {
	register(&command{
		name:    "migrate",
		args:    "[up | down | status]",
		summary: "apply (up, the default), roll back one (down) or list (status) the store's schema migrations",
		flags: func(fs *flag.FlagSet) {
			addJSONFlag(fs)
			fs.Duration("timeout", 5*time.Minute, "bound of the whole command")
		},
		run: runMigrate,
	})
}

func runMigrate(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	verb := "up"
	switch len(args) {
	case 0:
	case 1:
		verb = args[0]
	default:
		return usagef("migrate takes one of up, down, status")
	}
	if verb != "up" && verb != "down" && verb != "status" {
		return usagef("unknown migrate action %q: up, down or status", verb)
	}
	c, err := loadConfig(env, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, flagValue[time.Duration](fs, "timeout"))
	defer cancel()
	m, closeStore, err := openMigrator(ctx, c)
	if err != nil {
		return err
	}
	defer closeStore()
	asJSON := flagValue[bool](fs, "json")
	switch verb {
	case "up":
		applied, err := m.Up(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, applied)
		}
		if len(applied) == 0 {
			fmt.Fprintf(env.Stdout, "%s schema is up to date (version %d)\n", c.Store, m.Latest())
		}
		for _, s := range applied {
			fmt.Fprintf(env.Stdout, "applied %s\n", s.Name)
		}
	case "down":
		s, err := m.Down(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, s)
		}
		if s == nil {
			fmt.Fprintf(env.Stdout, "nothing to roll back: no migration is applied\n")
		} else {
			fmt.Fprintf(env.Stdout, "rolled back %s\n", s.Name)
		}
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, st)
		}
		return printStatus(env.Stdout, c.Store, st)
	}
	return nil
}

func printStatus(w io.Writer, store string, st []migration.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VERSION\tMIGRATION\tSTATE (%s)\n", store)
	for _, s := range st {
		state := "pending"
		if s.Applied {
			state = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Name, state)
	}
	return tw.Flush()
}

// openMigrator opens the configured store without migrating it and
// returns its migrator. The store must be reachable now: migrating is an
// operator's command, and waiting in the background helps no one.
func openMigrator(ctx context.Context, c *config.Config) (*migration.Migrator, func(), error) {
	if c.Store == config.StoreMemory {
		return nil, nil, usagef("CHRONICLE_STORE=%s has no schema to migrate (sqlite or postgres do)", c.Store)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := service.OpenStore(ctx, c, quiet, true)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("%s store: %w", c.Store, err)
	}
	m, err := s.Migrator()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return m, func() { s.Close() }, nil
}
