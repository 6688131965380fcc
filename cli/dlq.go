package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
)

// dlqCommands adds `dlq`: the Invalid Message Channel, through the
// service's HTTP API (admin scope).
func dlqCommands(register func(*command)) {
	register(&command{
		name: "dlq",
		args: "list | peek QUEUE [-n N] | replay QUEUE [-n N | --id ID...] | purge QUEUE (--id ID... | --all) --yes",
		summary: "inspect, replay and purge dead letters (and the unrouted queue): " +
			"list shows depths; peek reads without removing; replay sends messages back to the queue they died in",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Int("n", 0, "peek/replay: only the first N messages (peek default 20)")
			fs.Var(&idsFlag{}, "id", "replay/purge: the message with this id (repeatable)")
			fs.Bool("all", false, "purge: every message of the queue")
			fs.Bool("yes", false, "purge: confirm the deletion (required)")
		},
		run: runDLQ,
	})
}

// idsFlag collects repeated --id flags (or comma-separated ids).
type idsFlag []string

func (f *idsFlag) String() string { return strings.Join(*f, ",") }
func (f *idsFlag) Get() any       { return []string(*f) }
func (f *idsFlag) Set(s string) error {
	for id := range strings.SplitSeq(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*f = append(*f, id)
		}
	}
	return nil
}

// dlqRun is one dlq command: its client and flags.
type dlqRun struct {
	env    *Env
	fs     *flag.FlagSet
	c      *client.Client
	asJSON bool
	n      int
	ids    []string
}

func runDLQ(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("say what to do: list, peek, replay or purge")
	}
	verb, rest := args[0], args[1:]
	switch {
	case verb != "list" && verb != "peek" && verb != "replay" && verb != "purge":
		return usagef("unknown dlq action %q: list, peek, replay or purge", verb)
	case verb == "list" && len(rest) > 0:
		return usagef("dlq list takes no queue")
	case verb != "list" && len(rest) != 1:
		return usagef("dlq %s takes one queue name", verb)
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	r := &dlqRun{env: env, fs: fs, c: c, asJSON: flagValue[bool](fs, "json"), n: flagValue[int](fs, "n"), ids: flagValue[[]string](fs, "id")}
	switch verb {
	case "peek":
		return r.peek(ctx, rest[0])
	case "replay":
		return r.replay(ctx, rest[0])
	case "purge":
		return r.purge(ctx, rest[0])
	}
	return r.list(ctx)
}

func (r *dlqRun) list(ctx context.Context) error {
	qs, err := r.c.DeadLetterQueues(ctx)
	if err != nil {
		return err
	}
	if r.asJSON {
		return writeJSON(r.env.Stdout, qs)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tROUTE\tDEPTH")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", q.Queue, dash(q.Route), q.Depth)
	}
	return tw.Flush()
}

func (r *dlqRun) peek(ctx context.Context, queue string) error {
	n := r.n
	if n == 0 {
		n = 20
	}
	dl, err := r.c.PeekDeadLetters(ctx, queue, n)
	if err != nil {
		return err
	}
	if r.asJSON {
		return writeJSON(r.env.Stdout, dl)
	}
	if len(dl) == 0 {
		fmt.Fprintf(r.env.Stdout, "%s is empty\n", queue)
		return nil
	}
	for i, d := range dl {
		first := "-"
		if !d.FirstDeathAt.IsZero() {
			first = d.FirstDeathAt.Format(time.RFC3339)
		}
		fmt.Fprintf(r.env.Stdout, "#%d %s\n  reason:  %s\n  origin:  queue %s, exchange %s, routing key %s\n  deaths:  %d, first at %s\n  payload: %s\n",
			i+1, d.ID, d.Reason, dash(d.Queue), dash(d.Exchange), dash(d.RoutingKey), d.Count, first, truncate(d.Payload, 400))
	}
	return nil
}

func (r *dlqRun) replay(ctx context.Context, queue string) error {
	var sel api.Selection
	switch {
	case len(r.ids) > 0 && r.n > 0:
		return usagef("give --id or -n, not both")
	case len(r.ids) > 0:
		sel.IDs = r.ids
	case r.n > 0:
		sel.Limit = &r.n
	}
	n, err := r.c.ReplayDeadLetters(ctx, queue, sel)
	if err != nil {
		return err
	}
	if r.asJSON {
		return writeJSON(r.env.Stdout, api.Replayed{Replayed: n})
	}
	fmt.Fprintf(r.env.Stdout, "replayed %d message(s) from %s\n", n, queue)
	return nil
}

func (r *dlqRun) purge(ctx context.Context, queue string) error {
	all := flagValue[bool](r.fs, "all")
	switch {
	case len(r.ids) == 0 && !all:
		return usagef("say which dead letters to purge: --id ID (repeatable) or --all")
	case len(r.ids) > 0 && all:
		return usagef("give --id or --all, not both")
	case !flagValue[bool](r.fs, "yes"):
		return usagef("purging deletes audit events for good: add --yes to confirm")
	}
	sel := api.Selection{All: true}
	if len(r.ids) > 0 {
		sel = api.Selection{IDs: r.ids}
	}
	n, err := r.c.PurgeDeadLetters(ctx, queue, sel)
	if err != nil {
		return err
	}
	if r.asJSON {
		return writeJSON(r.env.Stdout, api.Purged{Purged: n})
	}
	fmt.Fprintf(r.env.Stdout, "purged %d message(s) from %s\n", n, queue)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
