package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle"
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

func runDLQ(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	args, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("say what to do: list, peek, replay or purge")
	}
	verb, rest := args[0], args[1:]
	if verb == "list" && len(rest) > 0 || verb != "list" && len(rest) != 1 {
		return usagef("dlq %s takes %s", verb, map[bool]string{true: "no queue", false: "one queue name"}[verb == "list"])
	}
	cl, err := clientFromFlags(env, fs, 1)
	if err != nil {
		return err
	}
	defer cl.close()
	asJSON := flagValue[bool](fs, "json")
	n := flagValue[int](fs, "n")
	ids := flagValue[[]string](fs, "id")
	switch verb {
	case "list":
		var qs []struct {
			Queue string `json:"queue"`
			Route string `json:"route"`
			Depth int    `json:"depth"`
		}
		if _, err := cl.do(ctx, http.MethodGet, "/dlq", nil, &qs); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, qs)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tROUTE\tDEPTH")
		for _, q := range qs {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", q.Queue, dash(q.Route), q.Depth)
		}
		return tw.Flush()
	case "peek":
		if n == 0 {
			n = 20
		}
		var dl []chronicle.DeadLetter
		if _, err := cl.do(ctx, http.MethodGet, "/dlq/"+url.PathEscape(rest[0])+fmt.Sprintf("?limit=%d", n), nil, &dl); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, dl)
		}
		if len(dl) == 0 {
			fmt.Fprintf(env.Stdout, "%s is empty\n", rest[0])
			return nil
		}
		for i, d := range dl {
			first := "-"
			if !d.FirstDeathAt.IsZero() {
				first = d.FirstDeathAt.Format(time.RFC3339)
			}
			fmt.Fprintf(env.Stdout, "#%d %s\n  reason:  %s\n  origin:  queue %s, exchange %s, routing key %s\n  deaths:  %d, first at %s\n  payload: %s\n",
				i+1, d.ID, d.Reason, dash(d.Queue), dash(d.Exchange), dash(d.RoutingKey), d.Count, first, truncate(d.Payload, 400))
		}
		return nil
	case "replay":
		body := map[string]any{}
		switch {
		case len(ids) > 0 && n > 0:
			return usagef("give --id or -n, not both")
		case len(ids) > 0:
			body["ids"] = ids
		case n > 0:
			body["limit"] = n
		}
		var out struct {
			Replayed int `json:"replayed"`
		}
		if _, err := cl.do(ctx, http.MethodPost, "/dlq/"+url.PathEscape(rest[0])+"/replay", body, &out); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, out)
		}
		fmt.Fprintf(env.Stdout, "replayed %d message(s) from %s\n", out.Replayed, rest[0])
		return nil
	case "purge":
		all := flagValue[bool](fs, "all")
		switch {
		case len(ids) == 0 && !all:
			return usagef("say which dead letters to purge: --id ID (repeatable) or --all")
		case len(ids) > 0 && all:
			return usagef("give --id or --all, not both")
		case !flagValue[bool](fs, "yes"):
			return usagef("purging deletes audit events for good: add --yes to confirm")
		}
		body := map[string]any{"all": true}
		if len(ids) > 0 {
			body = map[string]any{"ids": ids}
		}
		var out struct {
			Purged int `json:"purged"`
		}
		if _, err := cl.do(ctx, http.MethodDelete, "/dlq/"+url.PathEscape(rest[0]), body, &out); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, out)
		}
		fmt.Fprintf(env.Stdout, "purged %d message(s) from %s\n", out.Purged, rest[0])
		return nil
	}
	return usagef("unknown dlq action %q: list, peek, replay or purge", verb)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
