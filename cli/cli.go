// Package cli is the chronicle command: one binary whose subcommands run
// the service (serve, producer, consumer), manage its store (migrate),
// show its configuration (info, routes, consumers), inspect the broker
// (queues, exchanges, dlq) and talk to a running service (post, ingest,
// send, flood, events, export, tail, health, bench). Output goes to injected writers so
// tests run the real commands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/chronicle-audit/chronicle/config"
)

// Exit codes scripts can rely on.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed (service down, unhealthy, refused)
	ExitUsage   = 2 // bad command line or configuration
)

// Env is what a command sees of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	// LookupEnv reads environment variables (os.LookupEnv).
	LookupEnv config.Lookup
	// IsTerminal says whether Stdout is a terminal (progress bars).
	IsTerminal bool
	// StderrIsTerminal says whether Stderr is a terminal: progress lines
	// go there only then.
	StderrIsTerminal bool
}

type command struct {
	name    string
	args    string // usage after the name
	summary string
	run     func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error
	// flags declares the command's flags before parsing.
	flags func(fs *flag.FlagSet)
}

// commandTable is every subcommand, by name.
func commandTable() map[string]*command {
	table := map[string]*command{}
	register := func(c *command) { table[c.name] = c }
	for _, add := range []func(func(*command)){serveCommands, postCommands, floodCommands, eventsCommands, showCommands, brokerCommands, dlqCommands, migrateCommands, benchCommands, logCommands, outCommands, sinksCommands} {
		add(register)
	}
	return table
}

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Main runs the command line and returns the process's exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	commands := commandTable()
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printUsage(env.Stdout, commands)
		return ExitOK
	}
	if name == "help" {
		if len(args) > 0 && commands[args[0]] != nil {
			name, args = args[0], []string{"-h"}
		} else {
			printUsage(env.Stdout, commands)
			return ExitOK
		}
	}
	cmd := commands[name]
	if cmd == nil {
		fmt.Fprintf(env.Stderr, "chronicle: unknown command %q\n\n", name)
		printUsage(env.Stderr, commands)
		return ExitUsage
	}
	fs := flag.NewFlagSet("chronicle "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: chronicle %s %s\n\n%s\n", name, cmd.args, cmd.summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	err := cmd.run(ctx, env, fs, fs.Args())
	var ue *usageError
	var ce *configError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "chronicle %s: %v\n", name, err)
		fmt.Fprintf(env.Stderr, "run 'chronicle %s -h' for usage\n", name)
		return ExitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(env.Stderr, "chronicle %s: invalid configuration:\n%s\n", name, indent(ce.err))
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "chronicle %s: %v\n", name, err)
		return ExitFailure
	}
}

func indent(err error) string {
	if err == nil {
		return ""
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

func printUsage(w io.Writer, commands map[string]*command) {
	fmt.Fprintln(w, "chronicle: an audit-log service built on Enterprise Integration Patterns.")
	fmt.Fprintln(w, "\nusage: chronicle [command] [flags]   (no command: serve)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'chronicle <command> -h' for a command's flags. Configuration comes from")
	fmt.Fprintln(w, "environment variables (CHRONICLE_*, RABBITMQ_*, POSTGRES_*, DATABASE_URL); see README.md.")
}

// configError is a configuration the service refuses: exit code 2.
type configError struct{ err error }

func (e *configError) Error() string { return "invalid configuration: " + e.err.Error() }

// loadConfig reads the configuration from the environment, with flag
// overrides (variable name → value).
func loadConfig(env *Env, overrides map[string]string) (*config.Config, error) {
	lookup := func(k string) (string, bool) {
		if v, ok := overrides[k]; ok {
			return v, true
		}
		return env.LookupEnv(k)
	}
	c, err := config.FromEnv(lookup)
	if err != nil {
		return nil, &configError{err}
	}
	return c, nil
}

// newLogger builds the process logger from the configuration.
func newLogger(c *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
