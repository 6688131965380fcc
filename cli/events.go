package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle"
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

// eventFilters are the exact-match filters of GET /events, by flag.
var eventFilters = []struct{ flag, param, usage string }{
	{"actor", "actor", "only events by this actor"},
	{"action", "action", "only events with this action"},
	{"event-type", "event_type", "only events of this event_type"},
	{"resource-type", "resource_type", "only events on this resource type"},
	{"resource-id", "resource_id", "only events on this resource id (may be empty)"},
	{"correlation-id", "correlation_id", "only events with this correlation_id"},
	{"entity-key", "entity_key", "only events with this entity_key"},
}

// maxPages bounds --all against a service whose Link headers never end.
const maxPages = 1_000_000

func runEvents(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	q, err := eventsQuery(fs, time.Now())
	if err != nil {
		return err
	}
	all := flagValue[bool](fs, "all")
	if all && !q.Has("limit") {
		q.Set("limit", strconv.Itoa(chronicle.MaxLimit))
	}
	c, err := clientFromFlags(env, fs, 1)
	if err != nil {
		return err
	}
	defer c.close()

	p := &eventPrinter{w: env.Stdout, json: flagValue[bool](fs, "json")}
	next := "/events"
	if len(q) > 0 {
		next += "?" + q.Encode()
	}
	for pages := 0; next != ""; pages++ {
		if pages == maxPages {
			return fmt.Errorf("stopped after %d pages: the service keeps sending a next page", maxPages)
		}
		var page []*chronicle.Event
		resp, err := c.do(ctx, "GET", next, nil, &page)
		if err != nil {
			return err
		}
		if err := p.page(page); err != nil {
			return err
		}
		link := nextLink(resp.Header)
		if !all {
			if link != "" && !p.json {
				fmt.Fprintln(env.Stderr, "more events: use --all to list every page")
			}
			break
		}
		if link == next {
			return fmt.Errorf("the service sent the same page link twice: %s", link)
		}
		next = link
	}
	if err := p.finish(); err != nil {
		return err
	}
	if p.n == 0 && !p.json {
		fmt.Fprintln(env.Stderr, "no events")
	}
	return nil
}

// eventsQuery builds GET /events's query from the flags. Times are checked
// here, so a mistyped one is a usage error rather than the service's 400;
// a duration means that long before now.
func eventsQuery(fs *flag.FlagSet, now time.Time) (url.Values, error) {
	q := url.Values{}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range eventFilters {
		// resource_id may be empty, so a given flag counts even when "".
		if v := flagValue[string](fs, f.flag); v != "" || (set[f.flag] && f.param == "resource_id") {
			q.Set(f.param, v)
		}
	}
	for _, name := range []string{"since", "until"} {
		v := strings.TrimSpace(flagValue[string](fs, name))
		if v == "" {
			continue
		}
		t, err := parseTimeFlag(v, now)
		if err != nil {
			return nil, usagef("--%s %q: %v", name, v, err)
		}
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
	if set["limit"] {
		n := flagValue[int](fs, "limit")
		if n < 1 || n > chronicle.MaxLimit {
			return nil, usagef("--limit must be from 1 to %d, not %d", chronicle.MaxLimit, n)
		}
		q.Set("limit", strconv.Itoa(n))
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

// healthStatus is GET /health's answer.
type healthStatus struct {
	Status    string `json:"status"`
	Transport string `json:"transport,omitempty"`
	Store     string `json:"store,omitempty"`
	Entities  *int   `json:"entities,omitempty"`
	Error     string `json:"error,omitempty"`
}

func runHealth(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	c, err := clientFromFlags(env, fs, 1)
	if err != nil {
		return err
	}
	defer c.close()
	var h healthStatus
	resp, err := c.do(ctx, "GET", "/health", nil, &h)
	var ae *apiError
	switch {
	case resp == nil && err != nil:
		// Monitoring scripts get an answer they can parse either way.
		if flagValue[bool](fs, "json") {
			writeJSON(env.Stdout, healthStatus{Status: "unreachable", Error: err.Error()})
		}
		return err
	case errors.As(err, &ae):
		// 503 still says what is wrong; show it before failing.
		if json.Unmarshal(ae.Body, &h) != nil || h.Status == "" {
			return err
		}
	case err != nil:
		return err
	}
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
