package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
)

// eventsCommands adds the events commands.
func eventsCommands(register func(*command)) {
	register(&command{
		name:    "events",
		summary: "list events, newest first, filtered like GET /events; --all follows every page",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			for _, f := range eventFilters {
				fs.String(f.flag, "", f.usage)
			}
			fs.String("resource-id", "", "only events on this resource id (may be empty)")
			fs.String("since", "", "only events at or after this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (90m)")
			fs.String("until", "", "only events before this time: RFC 3339 or a duration ago")
			fs.Int("limit", 0, fmt.Sprintf("events per page, 1 to %d (default: the service's %d; with --all %d)", chronicle.MaxLimit, chronicle.DefaultLimit, chronicle.MaxLimit))
			fs.Bool("all", false, "follow the Link header through every page")
		},
		run: runEvents,
	})
	register(&command{
		name:    "health",
		summary: "ask the service whether it is healthy (exit 1 when it is not, or cannot be reached)",
		flags:   addClientFlags,
		run:     runHealth,
	})
}

// eventFilters are the exact-match filters of GET /events, by flag;
// --resource-id, which may be empty, is apart.
var eventFilters = []struct {
	flag, usage string
	field       func(*client.Query) *string
}{
	{"actor", "only events by this actor", func(q *client.Query) *string { return &q.Actor }},
	{"action", "only events with this action", func(q *client.Query) *string { return &q.Action }},
	{"event-type", "only events of this event_type", func(q *client.Query) *string { return &q.EventType }},
	{"resource-type", "only events on this resource type", func(q *client.Query) *string { return &q.ResourceType }},
	{"correlation-id", "only events with this correlation_id", func(q *client.Query) *string { return &q.CorrelationID }},
	{"entity-key", "only events with this entity_key", func(q *client.Query) *string { return &q.EntityKey }},
}

func runEvents(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	q, err := eventsQuery(fs, time.Now())
	if err != nil {
		return err
	}
	all := flagValue[bool](fs, "all")
	if all && q.Limit == 0 {
		q.Limit = chronicle.MaxLimit
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()

	p := &eventPrinter{w: env.Stdout, json: flagValue[bool](fs, "json")}
	if all {
		err = printAll(ctx, c, q, p)
	} else {
		err = printFirstPage(ctx, env, c, q, p)
	}
	if err != nil {
		return err
	}
	if err := p.finish(); err != nil {
		return err
	}
	if p.n == 0 && !p.json {
		fmt.Fprintln(env.Stderr, "no events")
	}
	return nil
}

// printFirstPage prints the first page, and says on stderr when there is
// more.
func printFirstPage(ctx context.Context, env *Env, c *client.Client, q client.Query, p *eventPrinter) error {
	page, err := c.EventsPage(ctx, q)
	if err != nil {
		return err
	}
	if err := p.page(page.Events); err != nil {
		return err
	}
	if page.Next != "" && !p.json {
		fmt.Fprintln(env.Stderr, "more events: use --all to list every page")
	}
	return nil
}

// printAll prints every event of every page as the pages arrive, a page
// (q.Limit events) at a time.
func printAll(ctx context.Context, c *client.Client, q client.Query, p *eventPrinter) error {
	page := make([]*chronicle.Event, 0, q.Limit)
	for e, err := range c.Events(ctx, q) {
		if err != nil {
			return err
		}
		if page = append(page, e); len(page) == q.Limit {
			if err := p.page(page); err != nil {
				return err
			}
			page = page[:0]
		}
	}
	return p.page(page)
}

// eventsQuery builds GET /events's query from the flags. Times are checked
// here, so a mistyped one is a usage error rather than the service's 400;
// a duration means that long before now.
func eventsQuery(fs *flag.FlagSet, now time.Time) (client.Query, error) {
	var q client.Query
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range eventFilters {
		*f.field(&q) = flagValue[string](fs, f.flag)
	}
	if set["resource-id"] {
		// resource_id may be empty, so a given flag counts even when "".
		v := flagValue[string](fs, "resource-id")
		q.ResourceID = &v
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := strings.TrimSpace(flagValue[string](fs, t.name))
		if v == "" {
			continue
		}
		at, err := parseTimeFlag(v, now)
		if err != nil {
			return q, usagef("--%s %q: %v", t.name, v, err)
		}
		*t.dst = at
	}
	if set["limit"] {
		n := flagValue[int](fs, "limit")
		if n < 1 || n > chronicle.MaxLimit {
			return q, usagef("--limit must be from 1 to %d, not %d", chronicle.MaxLimit, n)
		}
		q.Limit = n
	}
	return q, nil
}

// parseTimeFlag reads an RFC 3339 time, or a duration before now.
func parseTimeFlag(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("must be an RFC 3339 time such as 2026-01-02T15:04:05Z or a duration ago such as 90m")
}

// eventPrinter writes events page by page as they arrive, so --all
// never holds every event in memory: as one line each, or as one JSON
// array with an event per line.
type eventPrinter struct {
	w    io.Writer
	json bool
	n    int
}

func (p *eventPrinter) page(events []*chronicle.Event) error {
	if p.json {
		var b strings.Builder
		for _, e := range events {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if p.n == 0 {
				b.WriteString("[\n")
			} else {
				b.WriteString(",\n")
			}
			b.Write(data)
			p.n++
		}
		_, err := io.WriteString(p.w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, e := range events {
		et := e.EventType
		if et == "" {
			et = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\n", e.Timestamp.UTC().Format(chronicle.TimestampLayout),
			et, e.Actor, e.Action, e.ResourceType, e.ResourceID, e.ID)
		p.n++
	}
	return tw.Flush()
}

func (p *eventPrinter) finish() error {
	if !p.json {
		return nil
	}
	end := "\n]\n"
	if p.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(p.w, end)
	return err
}

func runHealth(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := c.Health(ctx)
	var ae *client.Error
	switch {
	case err != nil && !errors.As(err, &ae):
		// Monitoring scripts get an answer they can parse either way.
		if flagValue[bool](fs, "json") {
			writeJSON(env.Stdout, api.Health{Status: "unreachable", Error: err.Error()})
		}
		return err
	case err != nil && h.Status == "":
		// Not Chronicle's answer: nothing to show but the error.
		return err
	}
	// A 503 still says what is wrong: show it before failing.
	if flagValue[bool](fs, "json") {
		if werr := writeJSON(env.Stdout, h); werr != nil {
			return werr
		}
		return err
	}
	var parts []string
	if h.Transport != "" {
		parts = append(parts, "transport "+h.Transport)
	}
	if h.Store != "" {
		parts = append(parts, "store "+h.Store)
	}
	if h.Entities != nil {
		parts = append(parts, fmt.Sprintf("%d entities", *h.Entities))
	}
	line := h.Status
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if h.Error != "" {
		line += ": " + h.Error
	}
	if _, werr := fmt.Fprintln(env.Stdout, line); werr != nil {
		return werr
	}
	return err
}
