package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/loadgen"
)

// defaultURL is where client subcommands look for Chronicle when neither
// --url nor CHRONICLE_URL says otherwise: the service's default port.
const defaultURL = "http://localhost:8080"

// addClientFlags declares the flags every client subcommand shares:
// --url and --api-key, defaulting to CHRONICLE_URL and CHRONICLE_API_KEY,
// and --timeout.
func addClientFlags(fs *flag.FlagSet) {
	fs.String("url", "", "Chronicle's base URL (default: CHRONICLE_URL, else "+defaultURL+")")
	fs.String("api-key", "", "API key, sent as Authorization: Bearer <key> (default: CHRONICLE_API_KEY)")
	fs.Duration("timeout", 30*time.Second, "bound of each request (of each attempt, when it is retried)")
	addJSONFlag(fs)
}

// addJSONFlag declares --json.
func addJSONFlag(fs *flag.FlagSet) {
	fs.Bool("json", false, "machine-readable JSON output")
}

// clientFromFlags builds the client that the flags of addClientFlags and
// the environment describe; opts says how the command uses it (Conns,
// MaxAttempts). A URL it cannot use is a usage error naming where it came
// from.
func clientFromFlags(env *Env, fs *flag.FlagSet, opts client.Options) (*client.Client, error) {
	rawURL, from := flagValue[string](fs, "url"), "--url"
	if rawURL == "" {
		if v, ok := lookupEnv(env, "CHRONICLE_URL"); ok && strings.TrimSpace(v) != "" {
			rawURL, from = v, "CHRONICLE_URL"
		} else {
			rawURL = defaultURL
		}
	}
	key, keyFrom := flagValue[string](fs, "api-key"), "--api-key"
	if key == "" {
		key, _ = lookupEnv(env, "CHRONICLE_API_KEY")
		keyFrom = "CHRONICLE_API_KEY"
	}
	opts.APIKey = strings.TrimSpace(key)
	if strings.ContainsAny(opts.APIKey, "\r\n") {
		return nil, usagef("%s must be one line", keyFrom)
	}
	opts.UserAgent = "chronicle-cli"
	if t := flagValue[time.Duration](fs, "timeout"); t > 0 {
		opts.Timeout = t
	}
	c, err := client.New(rawURL, opts)
	if err != nil {
		return nil, usagef("%s: %v", from, err)
	}
	return c, nil
}

func lookupEnv(env *Env, key string) (string, bool) {
	if env.LookupEnv == nil {
		return "", false
	}
	return env.LookupEnv(key)
}

// flagValue reads a declared flag's value; commands declare their flags
// in command.flags and read them here, after parsing.
func flagValue[T any](fs *flag.FlagSet, name string) T {
	return fs.Lookup(name).Value.(flag.Getter).Get().(T)
}

// refuseZero refuses 0 (or less) for the named flags when they were
// given: loadgen reads a zero option as its default, but on the command
// line, whose defaults are shown, a zero is a mistake.
func refuseZero(fs *flag.FlagSet, names ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range names {
		if !given[name] {
			continue
		}
		switch v := flagValue[any](fs, name).(type) {
		case int:
			if v < 1 {
				return usagef("--%s must be at least 1, not %d", name, v)
			}
		case time.Duration:
			if v <= 0 {
				return usagef("--%s must be positive, not %v", name, v)
			}
		}
	}
	return nil
}

// optionsError makes loadgen's refusal of its options a usage error; its
// message names the flag.
func optionsError(err error) error {
	var oe *loadgen.OptionsError
	if errors.As(err, &oe) {
		return usagef("%v", err)
	}
	return err
}

// noArgs refuses positional arguments for commands that take none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// parseInterspersed lets flags follow positional arguments
// (`chronicle flood 200 --concurrency 20`), which the flag package alone
// stops at. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	out := fs.Output()
	defer fs.SetOutput(out)
	for len(args) > 0 {
		pos = append(pos, args[0])
		if args[0] == "--" {
			return append(pos[:len(pos)-1], args[1:]...), nil
		}
		// The flag package reports errors itself; Main reports ours.
		fs.SetOutput(io.Discard)
		err := fs.Parse(args[1:])
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
	}
	return pos, nil
}

// writeJSON writes v as indented JSON, the --json output of one object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
