package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/loadgen"
)

// floodCommands adds the flood commands.
func floodCommands(register func(*command)) {
	register(&command{
		name:    "flood",
		args:    "[--slow] [N]",
		summary: "send N random events (default 10) concurrently, or one every 500ms with --slow; prints a summary",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Int("concurrency", 10, "requests in flight at once")
			fs.Bool("slow", false, "send one event at a time, every --interval (the seed's flood-slow: watch the competing consumers take turns)")
			fs.Duration("interval", 500*time.Millisecond, "pause between events with --slow")
			fs.Uint64("seed", 0, "seed of the random events, for a reproducible flood (default: random)")
			fs.Int("batch", 1, "events per request: above 1, events go in JSON arrays (one journal commit or confirm round each)")
		},
		run: runFlood,
	})
}

func runFlood(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	opts, err := floodOptions(env, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	conns := opts.Concurrency
	if opts.Slow {
		conns = 1
	}
	// Each request is sent once, so that every refusal is counted.
	c, err := clientFromFlags(env, fs, client.Options{MaxAttempts: 1, Conns: conns})
	if err != nil {
		return err
	}
	defer c.Close()
	sum, err := loadgen.Flood(ctx, c, opts)
	if err != nil {
		return optionsError(err)
	}
	if flagValue[bool](fs, "json") {
		if err := writeJSON(env.Stdout, sum); err != nil {
			return err
		}
	} else {
		printFloodSummary(env.Stdout, sum)
		for _, f := range sum.Failures {
			fmt.Fprintf(env.Stderr, "chronicle flood: %d× %s\n", f.Count, f.Error)
		}
	}
	return sum.Err()
}

// floodOptions reads flood's command line: N, then flags anywhere.
func floodOptions(env *Env, fs *flag.FlagSet, args []string) (loadgen.FloodOptions, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return loadgen.FloodOptions{}, err
	}
	n := 10
	switch len(pos) {
	case 0:
	case 1:
		n, err = strconv.Atoi(pos[0])
		if err != nil || n < 1 {
			return loadgen.FloodOptions{}, usagef("N must be a number of events from 1 to %d, not %q", loadgen.MaxFloodEvents, pos[0])
		}
	default:
		return loadgen.FloodOptions{}, usagef("unexpected argument %q", pos[1])
	}
	slow := flagValue[bool](fs, "slow")
	if err := refuseZero(fs, "concurrency", "batch"); err != nil {
		return loadgen.FloodOptions{}, err
	}
	if slow {
		if err := refuseZero(fs, "interval"); err != nil {
			return loadgen.FloodOptions{}, err
		}
	}
	opts := loadgen.FloodOptions{
		Events:      n,
		Concurrency: flagValue[int](fs, "concurrency"),
		Batch:       flagValue[int](fs, "batch"),
		Slow:        slow,
		Interval:    flagValue[time.Duration](fs, "interval"),
		Seed:        flagValue[uint64](fs, "seed"),
		Progress:    env.Stderr,
		Terminal:    env.IsTerminal,
	}
	return opts, nil
}

func printFloodSummary(w io.Writer, s *loadgen.FloodSummary) {
	fmt.Fprintf(w, "sent      %d\n", s.Sent)
	fmt.Fprintf(w, "accepted  %d\n", s.Accepted)
	fmt.Fprintf(w, "rejected  %d\n", s.Rejected)
	fmt.Fprintf(w, "errors    %d\n", s.Errors)
	fmt.Fprintf(w, "elapsed   %.3fs\n", s.ElapsedSeconds)
	fmt.Fprintf(w, "rate      %.1f events/s\n", s.EventsPerSecond)
	fmt.Fprintf(w, "latency   p50 %.2fms  p99 %.2fms\n", s.LatencyP50Ms, s.LatencyP99Ms)
}
