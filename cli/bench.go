package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/loadgen"
)

// benchCommands adds `bench`: a load generator that drives a running
// Chronicle over HTTP and waits until every accepted event is stored.
func benchCommands(register func(*command)) {
	register(&command{
		name: "bench",
		summary: "load a running Chronicle with events and measure accepted/s, stored/s end to end, latency and memory " +
			"(loopback targets only unless --allow-remote)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Duration("duration", 10*time.Second, "how long to send (ignored with --count)")
			fs.Int("count", 0, "send exactly this many events instead of for --duration")
			fs.Int("concurrency", 64, "requests in flight at once")
			fs.Int("batch", 1, "events per request (1: single-event POSTs; up to 1000: JSON array batches)")
			fs.String("mix", loadgen.MixSeed, "event mix: seed (random actors/actions/resources, a third each of security.*, user.*, billing.* types), or fixed (one event, like wrk's script)")
			fs.Float64("rate", 0, "open-loop: requests per second to send, on a fixed schedule (0: closed loop, as fast as answers come)")
			fs.Bool("retry", false, "resend a request answered 503 or 429 after its Retry-After, as a well-behaved client would")
			fs.Duration("drain-timeout", 5*time.Minute, "how long to wait for every accepted event to be stored")
			fs.Bool("no-wait", false, "do not wait for the accepted events to be stored")
			fs.Bool("allow-remote", false, "allow a target that is not a loopback address")
			fs.Uint64("seed", 0, "random seed of the event mix (0: random)")
		},
		run: runBench,
	})
}

func runBench(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	opts, err := benchOptions(env, fs)
	if err != nil {
		return err
	}
	// Each request is sent once: bench counts every answer, and --retry
	// is its own.
	c, err := clientFromFlags(env, fs, client.Options{MaxAttempts: 1, Conns: opts.Concurrency})
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := loadgen.Bench(ctx, c, opts)
	if err != nil {
		return optionsError(err)
	}
	if flagValue[bool](fs, "json") {
		if err := writeJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else {
		printBench(env.Stdout, rep)
	}
	return rep.Err()
}

// benchOptions reads bench's flags.
func benchOptions(env *Env, fs *flag.FlagSet) (loadgen.BenchOptions, error) {
	count := flagValue[int](fs, "count")
	if err := refuseZero(fs, "concurrency", "batch", "drain-timeout"); err != nil {
		return loadgen.BenchOptions{}, err
	}
	if count == 0 {
		if err := refuseZero(fs, "duration"); err != nil {
			return loadgen.BenchOptions{}, err
		}
	}
	return loadgen.BenchOptions{
		Duration:     flagValue[time.Duration](fs, "duration"),
		Count:        count,
		Concurrency:  flagValue[int](fs, "concurrency"),
		Batch:        flagValue[int](fs, "batch"),
		Mix:          flagValue[string](fs, "mix"),
		Rate:         flagValue[float64](fs, "rate"),
		Retry:        flagValue[bool](fs, "retry"),
		DrainTimeout: flagValue[time.Duration](fs, "drain-timeout"),
		NoWait:       flagValue[bool](fs, "no-wait"),
		AllowRemote:  flagValue[bool](fs, "allow-remote"),
		Seed:         flagValue[uint64](fs, "seed"),
		Progress:     env.Stderr,
		Terminal:     env.IsTerminal,
	}, nil
}

func printBench(w io.Writer, r *loadgen.BenchReport) {
	fmt.Fprintf(w, "target         %s (run %s)\n", r.Target, r.RunID)
	fmt.Fprintf(w, "load           %d requests of %d event(s), %d in flight, mix %s, %.1fs\n", r.Requests, r.Batch, r.Concurrency, r.Mix, r.LoadSeconds)
	fmt.Fprintf(w, "events         sent %d, accepted %d, rejected %d\n", r.Sent, r.Accepted, r.Rejected)
	fmt.Fprintf(w, "accepted/s     %.0f\n", r.AcceptedPerSec)
	if r.DrainSeconds > 0 || r.Stored > 0 {
		fmt.Fprintf(w, "stored         %d (drained in %.2fs after the load), lost %d\n", r.Stored, r.DrainSeconds, r.Lost)
		fmt.Fprintf(w, "stored/s e2e   %.0f  (accepted / (load + drain))\n", r.StoredPerSec)
	}
	fmt.Fprintf(w, "latency ms     p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.LatencyMs.P50, r.LatencyMs.P90, r.LatencyMs.P99, r.LatencyMs.Max)
	if r.Retries > 0 {
		fmt.Fprintf(w, "retries        %d (answers 503/429 resent after 1s)\n", r.Retries)
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s×%d", k, r.Errors[k])
		}
		fmt.Fprintf(w, "errors         %s\n", strings.Join(parts, " "))
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "service RSS    start %.0f MiB, peak %.0f MiB, end %.0f MiB\n",
			float64(r.RSSStartBytes)/(1<<20), float64(r.PeakRSSBytes)/(1<<20), float64(r.RSSEndBytes)/(1<<20))
	}
}
