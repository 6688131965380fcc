package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle/client"
)

// sinksCommands adds `sinks`: the outbound streams, through the service's
// HTTP API (admin scope).
func sinksCommands(register func(*command)) {
	register(&command{
		name: "sinks",
		args: "[replay NAME --from SEQ [--to SEQ]]",
		summary: "outbound sinks: status, cursor, lag and last error; " +
			"replay sends a range of the log to a sink again (its cursor does not move)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.String("from", "", "replay: the first seq to send again (required)")
			fs.String("to", "", "replay: the seq to stop before (default: the sink's cursor)")
		},
		run: runSinks,
	})
}

func runSinks(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0:
	case args[0] != "replay":
		return usagef("unknown sinks action %q: none (list) or replay", args[0])
	case len(args) != 2:
		return usagef("sinks replay takes one sink name")
	}
	var from int64
	var to *int64
	if len(args) > 0 {
		raw := flagValue[string](fs, "from")
		if raw == "" {
			return usagef("sinks replay needs --from SEQ")
		}
		if from, err = strconv.ParseInt(raw, 10, 64); err != nil || from < 0 {
			return usagef("--from must be a seq (0 or more), not %q", raw)
		}
		if raw := flagValue[string](fs, "to"); raw != "" {
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || n <= from {
				return usagef("--to must be a seq after --from, not %q", raw)
			}
			to = &n
		}
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	asJSON := flagValue[bool](fs, "json")
	if len(args) > 0 {
		out, err := c.ReplaySink(ctx, args[1], from, to)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, out)
		}
		if out.To <= out.From {
			fmt.Fprintf(env.Stdout, "nothing to replay: sink %s has delivered up to seq %d (its cursor)\n", out.Sink, out.Cursor)
			return nil
		}
		fmt.Fprintf(env.Stdout, "sink %s will send seq %d to %d again (before new events); its cursor stays at %d\n",
			out.Sink, out.From, out.To-1, out.Cursor)
		return nil
	}
	sinks, err := c.Sinks(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(env.Stdout, sinks)
	}
	if len(sinks) == 0 {
		fmt.Fprintln(env.Stdout, "no sinks: add [[sinks]] to the routing file (CHRONICLE_CONFIG)")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tTYPE\tFORMAT\tSTATUS\tCURSOR\tLAG\tDELIVERED\tFAILURES\tLAST ERROR")
	for _, s := range sinks {
		last := "-"
		if s.LastError != "" {
			last = s.LastErrorAt.Format(time.RFC3339) + " " + s.LastError
		}
		status := s.Status
		if s.ReplayFrom != nil {
			status += fmt.Sprintf(" (replaying %d-%d)", *s.ReplayFrom, *s.ReplayTo-1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Type, s.Format, status, s.Cursor, s.Lag, s.Delivered, s.Failures, last)
	}
	return tw.Flush()
}
