package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/routing"
)

// These commands read the configuration a service started here would run
// with; they do not talk to a service, so what they show can be checked
// before starting one.
// showCommands adds the show commands.
func showCommands(register func(*command)) {
	register(&command{
		name:    "info",
		summary: "show the effective configuration (secrets masked)",
		flags: func(fs *flag.FlagSet) {
			addJSONFlag(fs)
			fs.String("config", "", "routing file (default: CHRONICLE_CONFIG, else the built-in one)")
		},
		run: runInfo,
	})
	register(&command{
		name:    "routes",
		summary: "show the routes of the routing configuration: binding, queue, dead-letter queue",
		flags: func(fs *flag.FlagSet) {
			addJSONFlag(fs)
			fs.String("config", "", "routing file (default: CHRONICLE_CONFIG, else the built-in one)")
		},
		run: runRoutes,
	})
	register(&command{
		name:    "consumers",
		summary: "show the consumer roles, and what this process's role would consume",
		flags: func(fs *flag.FlagSet) {
			addJSONFlag(fs)
			fs.String("config", "", "routing file (default: CHRONICLE_CONFIG, else the built-in one)")
			fs.String("role", "", "consumer role (default: CHRONICLE_CONSUMER_ROLE, else default)")
			fs.Int("count", 0, "workers per queue (default: CHRONICLE_CONSUMER_COUNT, else the role's instances)")
		},
		run: runConsumers,
	})
}

// showConfig loads the configuration with the command's flags in place of
// their variables.
func showConfig(env *Env, fs *flag.FlagSet, args []string) (*config.Config, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	over := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "config":
			over["CHRONICLE_CONFIG"] = f.Value.String()
		case "role":
			over["CHRONICLE_CONSUMER_ROLE"] = f.Value.String()
		case "count":
			over["CHRONICLE_CONSUMER_COUNT"] = f.Value.String()
		}
	})
	return loadConfig(env, over)
}

// warnRouting writes the routing configuration's warnings to stderr: they
// do not stop a service, but whoever reads its routes should know.
func warnRouting(env *Env, c *config.Config) {
	for _, w := range c.Routing.Warnings {
		fmt.Fprintln(env.Stderr, "warning:", w)
	}
}

func runInfo(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	c, err := showConfig(env, fs, args)
	if err != nil {
		return err
	}
	settings := c.Settings()
	// The client commands' settings, since they are configuration too.
	clientURL := defaultURL
	if v, ok := lookupEnv(env, "CHRONICLE_URL"); ok && strings.TrimSpace(v) != "" {
		clientURL = config.Redact(strings.TrimSpace(v))
	}
	settings = append(settings, config.Setting{Name: "CHRONICLE_URL", Value: clientURL})
	if v, ok := lookupEnv(env, "CHRONICLE_API_KEY"); ok && v != "" {
		settings = append(settings, config.Setting{Name: "CHRONICLE_API_KEY", Value: "********"})
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, settings)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Value)
	}
	return tw.Flush()
}

// routeView is one route as routes --json shows it.
type routeView struct {
	Name               string `json:"name"`
	Exchange           string `json:"exchange"`
	RoutingKey         string `json:"routing_key"`
	Queue              string `json:"queue"`
	QueueType          string `json:"queue_type"`
	DeadLetterExchange string `json:"dead_letter_exchange,omitempty"`
	DeadLetterQueue    string `json:"dead_letter_queue,omitempty"`
}

func runRoutes(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	c, err := showConfig(env, fs, args)
	if err != nil {
		return err
	}
	warnRouting(env, c)
	rc := c.Routing
	routes := make([]routeView, len(rc.Routes))
	for i, r := range rc.Routes {
		routes[i] = routeView{Name: r.Name, Exchange: r.Exchange, RoutingKey: r.RoutingKey, Queue: r.Queue,
			QueueType: r.QueueType, DeadLetterExchange: r.DeadLetterExchange, DeadLetterQueue: r.DeadLetterQueue}
	}
	x := rc.PublishExchange()
	sinks := make([]sinkView, len(rc.Sinks))
	for i, s := range rc.Sinks {
		shown := s.URL
		if u, err := url.Parse(s.URL); err == nil && s.URL != "" {
			u.RawQuery, u.Fragment = "", "" // a query may hold a token
			shown = u.String()
		}
		sinks[i] = sinkView{Name: s.Name, Type: s.Type, Format: s.Format, Pattern: s.Pattern, URL: shown, Path: s.Path}
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, struct {
			Source        string      `json:"source"`
			Exchange      string      `json:"exchange"`
			ExchangeType  string      `json:"exchange_type"`
			Routes        []routeView `json:"routes"`
			UnroutedQueue string      `json:"unrouted_queue"`
			Sinks         []sinkView  `json:"sinks"`
		}{c.RoutingSource, x.Name, x.Type, routes, routing.UnroutedQueue, sinks})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tBINDING\tQUEUE\tDLQ")
	for _, r := range routes {
		dlq := r.DeadLetterQueue
		if dlq == "" {
			dlq = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.RoutingKey, r.Queue, dlq)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "\nexchange %s (%s), from %s; events matching no route go to %s\n",
		x.Name, x.Type, c.RoutingSource, routing.UnroutedQueue)
	for _, s := range sinks {
		target := s.URL
		if s.Type == routing.SinkFile {
			target = s.Path
		}
		fmt.Fprintf(env.Stdout, "sink %s: events matching %s, as %s, to %s %s\n", s.Name, s.Pattern, s.Format, s.Type, target)
	}
	return err
}

// sinkView is a sink as routes shows it (never its secret).
type sinkView struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Format  string `json:"format"`
	Pattern string `json:"pattern"`
	URL     string `json:"url,omitempty"`
	Path    string `json:"path,omitempty"`
}

// roleView and assignmentView are what consumers --json shows.
type roleView struct {
	Name      string   `json:"name"`
	Routes    []string `json:"routes"`
	Instances int      `json:"instances"`
}

type assignmentView struct {
	Route   string `json:"route"`
	Queue   string `json:"queue"`
	Workers int    `json:"workers"`
}

func runConsumers(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	c, err := showConfig(env, fs, args)
	if err != nil {
		return err
	}
	warnRouting(env, c)
	rc := c.Routing
	roles := make([]roleView, len(rc.Consumers))
	for i, r := range rc.Consumers {
		roles[i] = roleView{Name: r.Name, Routes: r.Routes, Instances: r.Instances}
	}
	// What endpoint would start: in process every route is consumed (no
	// other process could); on a shared broker only the role's routes.
	plan := []routing.Assignment{}
	if c.RunsConsumers() {
		if c.Transport == config.TransportInproc {
			plan, err = rc.PlanAll(c.ConsumerRole, c.ConsumerCount)
		} else {
			plan, err = rc.Plan(c.ConsumerRole, c.ConsumerCount)
		}
		if err != nil {
			return &configError{err}
		}
	}
	consumes := make([]assignmentView, len(plan))
	for i, a := range plan {
		consumes[i] = assignmentView{Route: a.Route.Name, Queue: a.Route.Queue, Workers: a.Workers}
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, struct {
			Source    string           `json:"source"`
			Role      string           `json:"role"`
			Mode      string           `json:"mode"`
			Transport string           `json:"transport"`
			Roles     []roleView       `json:"roles"`
			Consumes  []assignmentView `json:"consumes"`
		}{c.RoutingSource, c.ConsumerRole, c.Mode, c.Transport, roles, consumes})
	}
	return printConsumers(env.Stdout, c, roles, consumes)
}

func printConsumers(w io.Writer, c *config.Config, roles []roleView, consumes []assignmentView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tINSTANCES\tROUTES")
	for _, r := range roles {
		name := r.Name
		if name == c.ConsumerRole {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", name, r.Instances, strings.Join(r.Routes, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n* this process's role (CHRONICLE_CONSUMER_ROLE=%s), mode %s, transport %s, from %s\n",
		c.ConsumerRole, c.Mode, c.Transport, c.RoutingSource)
	if !c.RunsConsumers() {
		_, err := fmt.Fprintf(w, "in mode %s it runs no consumers\n", c.Mode)
		return err
	}
	if c.Transport == config.TransportInproc {
		fmt.Fprintln(w, "in process every route is consumed; it would run:")
	} else {
		fmt.Fprintln(w, "it would consume:")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  QUEUE\tROUTE\tWORKERS")
	for _, a := range consumes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Queue, a.Route, strconv.Itoa(a.Workers))
	}
	return tw.Flush()
}
