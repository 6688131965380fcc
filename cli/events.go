package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
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
		summary: "list events, newest first, filtered like GET /events; --all follows every page; --id ID shows one (--history: its path in)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.String("id", "", "show this one event, every field")
			fs.Bool("history", false, "with --id: the event's Message History as a timeline")
			addFilterFlags(fs)
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

// addFilterFlags declares the filters of GET /events: those of events,
// export and tail.
func addFilterFlags(fs *flag.FlagSet) {
	for _, f := range eventFilters {
		fs.String(f.flag, "", f.usage)
	}
	fs.String("resource-id", "", "only events on this resource id (may be empty)")
	fs.String("since", "", "only events received at or after this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (90m)")
	fs.String("until", "", "only events received before this time: RFC 3339 or a duration ago")
	fs.String("occurred-since", "", "only events that occurred at or after this time (their occurred_at): RFC 3339 or a duration ago")
	fs.String("occurred-until", "", "only events that occurred before this time: RFC 3339 or a duration ago")
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
	if id := strings.TrimSpace(flagValue[string](fs, "id")); id != "" {
		return showEvent(ctx, env, fs, id)
	}
	if flagValue[bool](fs, "history") {
		return usagef("--history shows one event's path: give --id ID")
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
	}{{"since", &q.Since}, {"until", &q.Until}, {"occurred-since", &q.OccurredSince}, {"occurred-until", &q.OccurredUntil}} {
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

// showEvent prints one event, every field, and with --history its path
// into the store as a timeline.
func showEvent(ctx context.Context, env *Env, fs *flag.FlagSet, id string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name := range set {
		if !map[string]bool{"id": true, "history": true, "json": true, "url": true, "api-key": true, "timeout": true}[name] {
			return usagef("--%s filters a listing: it does not go with --id", name)
		}
	}
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	var eh *api.EventWithHistory
	if flagValue[bool](fs, "history") {
		eh, err = c.EventHistory(ctx, id)
	} else {
		var e *chronicle.Event
		e, err = c.Event(ctx, id)
		eh = &api.EventWithHistory{Event: e}
	}
	if err != nil {
		return err
	}
	if flagValue[bool](fs, "json") {
		if eh.History == nil {
			return writeJSON(env.Stdout, eh.Event)
		}
		return writeJSON(env.Stdout, eh)
	}
	printEvent(env.Stdout, eh.Event)
	if flagValue[bool](fs, "history") {
		printTimeline(env.Stdout, eh.History)
	}
	return nil
}

// printEvent writes every field of e, one per line.
func printEvent(w io.Writer, e *chronicle.Event) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(name, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", name, v)
		}
	}
	field("id", e.ID)
	field("received", e.Timestamp.UTC().Format(chronicle.TimestampLayout))
	if !e.OccurredAt.IsZero() {
		field("occurred", e.OccurredAt.UTC().Format(chronicle.TimestampLayout))
	}
	field("actor", e.Actor)
	field("action", e.Action)
	fmt.Fprintf(tw, "resource\t%s/%s\n", e.ResourceType, e.ResourceID)
	field("event_type", e.EventType)
	field("correlation_id", e.CorrelationID)
	field("entity_key", e.EntityKey)
	keys := make([]string, 0, len(e.Metadata))
	for k := range e.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "metadata.%s\t%s\n", k, e.Metadata[k])
	}
	tw.Flush()
}

// printTimeline writes a history as a timeline: when, how long after the
// first hop, what and where.
func printTimeline(w io.Writer, hops []chronicle.Hop) {
	fmt.Fprintln(w, "\nhistory")
	if len(hops) == 0 {
		fmt.Fprintln(w, "  (none recorded)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, h := range hops {
		fmt.Fprintf(tw, "  %s\t+%s\t%s\t%s\n", h.At.UTC().Format(chronicle.TimestampLayout),
			h.At.Sub(hops[0].At).Round(time.Microsecond), strings.ReplaceAll(h.Hop, "_", " "), describeHop(h))
	}
	tw.Flush()
}

// describeHop says what happened at h, in a few words.
func describeHop(h chronicle.Hop) string {
	var parts []string
	add := func(format string, v any, when bool) {
		if when {
			parts = append(parts, fmt.Sprintf(format, v))
		}
	}
	add("%s", "straight from AMQP", h.Clock != "")
	add("by %s", h.Process, h.Process != "" && h.Hop != chronicle.HopConsumed)
	add("request %s", h.RequestID, h.RequestID != "")
	add("API key %s", h.APIKey, h.APIKey != "")
	add("via %s", h.Transport, h.Transport != "")
	add("exchange %s", h.Exchange, h.Exchange != "")
	add("routing key %s", h.RoutingKey, h.RoutingKey != "")
	add("to %s", strings.Join(h.Queues, ", "), len(h.Queues) > 0)
	add("queue %s", h.Queue, h.Queue != "")
	add("by %s", strings.TrimPrefix(h.Process+" worker "+h.Worker, " worker "), h.Hop == chronicle.HopConsumed && (h.Process != "" || h.Worker != ""))
	add("delivery %d", h.Delivery, h.Delivery > 0)
	add("reason: %s", h.Reason, h.Reason != "")
	add("replayed by %s", h.By, h.By != "")
	add("in %s", h.Store, h.Store != "")
	add("batch of %d", h.Batch, h.Batch > 0)
	clock := map[string]string{chronicle.ClockAMQP: "its AMQP timestamp", chronicle.ClockConsumer: "this consumer's clock"}[h.Clock]
	add("time from %s", cmp.Or(clock, h.Clock), h.Clock != "")
	return strings.Join(parts, ", ")
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
