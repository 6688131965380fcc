package cli

import (
	"context"
	"flag"

	"github.com/chronicle-audit/chronicle/service"
)

// serveCommands adds the serve commands.
func serveCommands(register func(*command)) {
	register(&command{
		name:    "serve",
		summary: "run Chronicle in CHRONICLE_MODE (full: API + consumers; producer; consumer)",
		flags: func(fs *flag.FlagSet) {
			fs.String("mode", "", "full, producer or consumer (default: CHRONICLE_MODE, else full)")
			fs.String("role", "", "consumer role (default: CHRONICLE_CONSUMER_ROLE, else default)")
			fs.Int("count", 0, "workers per queue (default: CHRONICLE_CONSUMER_COUNT, else the role's instances)")
			fs.Int("port", 0, "HTTP port (default: CHRONICLE_PORT, else 8080)")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			return serve(ctx, env, fs, args, "")
		},
	})
	register(&command{
		name:    "producer",
		summary: "run the HTTP API only, publishing to RabbitMQ (serve --mode producer)",
		flags: func(fs *flag.FlagSet) {
			fs.Int("port", 0, "HTTP port (default: CHRONICLE_PORT, else 8080)")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			return serve(ctx, env, fs, args, "producer")
		},
	})
	register(&command{
		name:    "consumer",
		summary: "run the consumers of one role only (serve --mode consumer)",
		flags: func(fs *flag.FlagSet) {
			fs.String("role", "", "consumer role (default: CHRONICLE_CONSUMER_ROLE, else default)")
			fs.Int("count", 0, "workers per queue (default: CHRONICLE_CONSUMER_COUNT, else the role's instances)")
			fs.Int("port", 0, "serve /health and /metrics on this port (default: CHRONICLE_PORT, else none)")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			return serve(ctx, env, fs, args, "consumer")
		},
	})
}

// serve runs the service until ctx ends. Flags override their variables.
func serve(ctx context.Context, env *Env, fs *flag.FlagSet, args []string, mode string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	over := map[string]string{}
	if mode != "" {
		over["CHRONICLE_MODE"] = mode
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mode":
			over["CHRONICLE_MODE"] = f.Value.String()
		case "role":
			over["CHRONICLE_CONSUMER_ROLE"] = f.Value.String()
		case "count":
			over["CHRONICLE_CONSUMER_COUNT"] = f.Value.String()
		case "port":
			over["CHRONICLE_PORT"] = f.Value.String()
		}
	})
	cfg, err := loadConfig(env, over)
	if err != nil {
		return err
	}
	return service.Run(ctx, cfg, newLogger(cfg, env.Stderr))
}
