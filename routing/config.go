// Package routing reads Chronicle's routing configuration (the original
// system's TOML schema: exchanges, routes, consumer roles), validates it, and answers the
// question every transport asks: which route queues does an event_type go
// to? Both transports build their topology from the same Config, so they
// route identically.
package routing

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// UnroutedQueue receives events that match no route, so none is dropped.
const UnroutedQueue = "chronicle.unrouted"

// Exchange types.
const (
	Topic  = "topic"
	Fanout = "fanout"
	Direct = "direct"
)

// Queue types a route may ask for (RabbitMQ only; in process every queue
// is the same).
const (
	Classic = "classic"
	Quorum  = "quorum"
)

//go:embed chronicle.toml
var defaultTOML []byte

// DefaultName names the built-in configuration in messages.
const DefaultName = "built-in chronicle.toml"

// DefaultTOML returns the built-in configuration file.
func DefaultTOML() []byte { return append([]byte(nil), defaultTOML...) }

// Config is a routing configuration. Build one with Parse, Load or Default;
// they validate it.
type Config struct {
	Exchanges map[string]*Exchange `toml:"exchanges"`
	Routes    []*Route             `toml:"routes"`
	Consumers []*Role              `toml:"consumers"`
	// Sinks are the outbound streams, in file order.
	Sinks []*Sink `toml:"sinks"`

	// Source names where the configuration came from (a path or
	// DefaultName), for messages.
	Source string `toml:"-"`
	// Warnings are problems that do not stop Chronicle but deserve a log
	// line, e.g. a route without a dead-letter queue.
	Warnings []string `toml:"-"`
}

// Exchange is a named exchange.
type Exchange struct {
	Name string `toml:"-"`
	// Type is topic, fanout or direct.
	Type string `toml:"type"`
	// Durable exchanges survive a broker restart.
	Durable bool `toml:"durable"`
}

// Route binds a queue to an exchange with a routing key (a Datatype
// Channel), with an optional dead-letter queue (its Invalid Message
// Channel).
type Route struct {
	Name       string `toml:"name"`
	Exchange   string `toml:"exchange"`
	Queue      string `toml:"queue"`
	RoutingKey string `toml:"routing_key"`
	// DeadLetterExchange and DeadLetterQueue: where messages a consumer
	// cannot process go. Both or neither.
	DeadLetterExchange string `toml:"dead_letter_exchange"`
	DeadLetterQueue    string `toml:"dead_letter_queue"`
	// QueueType is classic or quorum (RabbitMQ). Defaults to classic.
	QueueType string `toml:"queue_type"`
	// DeliveryLimit bounds redeliveries of a quorum queue's message before
	// the broker dead-letters it. Defaults to 0: no limit.
	DeliveryLimit int `toml:"delivery_limit"`
}

// Role is a consumer role: the routes a consumer process of that role
// consumes, and how many competing workers per queue.
type Role struct {
	Name   string   `toml:"name"`
	Routes []string `toml:"routes"`
	// Instances is the number of workers per queue. Defaults to 1.
	Instances int `toml:"-"`
	// RawInstances is Instances as written, nil when omitted.
	RawInstances *int `toml:"instances"`
}

// Default returns the built-in configuration.
func Default() *Config {
	c, err := Parse(defaultTOML, DefaultName)
	if err != nil {
		panic("built-in routing configuration is invalid: " + err.Error())
	}
	return c
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routing configuration: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and validates a configuration. source names it in errors.
func Parse(data []byte, source string) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s:%d: %s", source, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %v", source, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s", source, strings.Join(keys, ", "))
	}
	c.Source = source
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var (
	// nameRE: route, role and exchange names.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	// queueRE: queue names (AMQP allows more; these are safe everywhere).
	queueRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	// keyWordRE: a literal word of a binding pattern; event types are
	// lower-case words of [a-z0-9_-], so a pattern word outside that set
	// could never match.
	keyWordRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// envNameRE: an environment variable's name.
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// validate applies defaults and checks everything start-up relies on. Each
// error names the offending item.
func (c *Config) validate() error {
	v := &validator{c: c, routeByName: map[string]*Route{}, queueOwner: map[string]string{UnroutedQueue: "the unrouted queue"}}
	v.exchanges()
	if len(c.Routes) == 0 {
		v.fail("no [[routes]] declared")
	}
	for i, r := range c.Routes {
		v.route(i, r)
	}
	v.deadLetterExchanges()
	roleByName := map[string]bool{}
	for i, role := range c.Consumers {
		v.role(i, role, roleByName)
	}
	v.sinks()
	return errors.Join(v.errs...)
}

// validator collects every problem of a configuration, each naming the
// item it is about, so that one start-up reports them all.
type validator struct {
	c               *Config
	errs            []error
	routeByName     map[string]*Route
	queueOwner      map[string]string
	publishExchange string
}

func (v *validator) fail(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: "+format, append([]any{v.c.Source}, args...)...))
}

func (v *validator) exchanges() {
	if len(v.c.Exchanges) == 0 {
		v.fail("no [exchanges] declared")
	}
	for _, name := range sortedKeys(v.c.Exchanges) {
		x := v.c.Exchanges[name]
		x.Name = name
		if !nameRE.MatchString(name) {
			v.fail("exchange %q: name may only contain letters, digits and _ . : -", name)
		}
		switch x.Type {
		case Topic, Fanout, Direct:
		case "":
			v.fail("exchange %q: type is required (topic, fanout or direct)", name)
		default:
			v.fail("exchange %q: type %q is not one of topic, fanout, direct", name, x.Type)
		}
	}
}

// route checks routes[i]: its name, exchange, queues, routing key, queue
// options and dead-letter settings.
func (v *validator) route(i int, r *Route) {
	where := fmt.Sprintf("routes[%d]", i)
	if r.Name != "" {
		where += fmt.Sprintf(" (%s)", r.Name)
	}
	switch {
	case r.Name == "":
		v.fail("%s: name is required", where)
	case !nameRE.MatchString(r.Name):
		v.fail("%s: name may only contain letters, digits and _ . : -", where)
	case v.routeByName[r.Name] != nil:
		v.fail("%s: duplicate route name %q", where, r.Name)
	default:
		v.routeByName[r.Name] = r
	}
	x := v.c.Exchanges[r.Exchange]
	switch {
	case r.Exchange == "":
		v.fail("%s: exchange is required", where)
	case x == nil:
		v.fail("%s: exchange %q is not declared in [exchanges]", where, r.Exchange)
	case v.publishExchange == "":
		v.publishExchange = r.Exchange
	case r.Exchange != v.publishExchange:
		v.fail("%s: exchange %q differs from %q: every route must be bound to the one exchange Chronicle publishes to", where, r.Exchange, v.publishExchange)
	}
	v.queue(where, r, "queue", r.Queue)
	if x != nil {
		if err := checkPattern(x.Type, r.RoutingKey); err != nil {
			v.fail("%s: routing_key %q: %v", where, r.RoutingKey, err)
		}
	}
	v.queueOptions(where, r)
	switch {
	case r.DeadLetterExchange == "" && r.DeadLetterQueue == "":
		v.c.Warnings = append(v.c.Warnings, fmt.Sprintf("%s: no dead_letter_queue: a message its consumers cannot process will be dropped", where))
	case r.DeadLetterExchange == "":
		v.fail("%s: dead_letter_queue %q needs a dead_letter_exchange", where, r.DeadLetterQueue)
	case r.DeadLetterQueue == "":
		v.fail("%s: dead_letter_exchange %q needs a dead_letter_queue", where, r.DeadLetterExchange)
	default:
		if v.c.Exchanges[r.DeadLetterExchange] == nil {
			v.fail("%s: dead_letter_exchange %q is not declared in [exchanges]", where, r.DeadLetterExchange)
		}
		v.queue(where, r, "dead_letter_queue", r.DeadLetterQueue)
	}
}

// queue checks a queue name of route r and that no other queue has it.
func (v *validator) queue(where string, r *Route, field, q string) {
	switch {
	case q == "":
		v.fail("%s: %s is required", where, field)
	case !queueRE.MatchString(q):
		v.fail("%s: %s %q may only contain letters, digits and _ . : -", where, field, q)
	case v.queueOwner[q] != "":
		v.fail("%s: %s %q is already used by %s", where, field, q, v.queueOwner[q])
	default:
		v.queueOwner[q] = fmt.Sprintf("route %q", r.Name)
	}
}

func (v *validator) queueOptions(where string, r *Route) {
	switch r.QueueType {
	case "":
		r.QueueType = Classic
	case Classic, Quorum:
	default:
		v.fail("%s: queue_type %q is not classic or quorum", where, r.QueueType)
	}
	if r.DeliveryLimit < 0 {
		v.fail("%s: delivery_limit must not be negative", where)
	}
	if r.DeliveryLimit > 0 && r.QueueType != Quorum {
		v.fail("%s: delivery_limit needs queue_type = \"quorum\"", where)
	}
}

// deadLetterExchanges checks the exchanges dead letters go to: never the
// publish exchange (dead letters would be routed back into route queues),
// and a fanout one may serve only one DLQ, or every dead letter would be
// copied into each of them.
func (v *validator) deadLetterExchanges() {
	dlqsByExchange := map[string][]string{}
	for _, r := range v.c.Routes {
		if r.DeadLetterExchange != "" && v.c.Exchanges[r.DeadLetterExchange] != nil {
			dlqsByExchange[r.DeadLetterExchange] = append(dlqsByExchange[r.DeadLetterExchange], r.DeadLetterQueue)
		}
	}
	for _, name := range sortedKeys(dlqsByExchange) {
		dlqs := dlqsByExchange[name]
		if name == v.publishExchange {
			v.fail("dead_letter_exchange %q is the exchange routes are bound to: dead letters would be routed back into route queues", name)
			continue
		}
		if v.c.Exchanges[name].Type == Fanout && len(dlqs) > 1 {
			v.fail("dead_letter_exchange %q is a fanout exchange shared by %s: every dead letter would be copied into each of them; use a direct exchange (each route dead-letters with its DLQ's name as routing key)", name, strings.Join(dlqs, ", "))
		}
	}
}

// role checks consumers[i]: a unique name, routes that exist, instances.
func (v *validator) role(i int, role *Role, seenRoles map[string]bool) {
	where := fmt.Sprintf("consumers[%d]", i)
	if role.Name != "" {
		where += fmt.Sprintf(" (%s)", role.Name)
	}
	switch {
	case role.Name == "":
		v.fail("%s: name is required", where)
	case seenRoles[role.Name]:
		v.fail("%s: duplicate consumer role %q", where, role.Name)
	default:
		seenRoles[role.Name] = true
	}
	if len(role.Routes) == 0 {
		v.fail("%s: routes is empty", where)
	}
	seen := map[string]bool{}
	for _, rn := range role.Routes {
		switch {
		case v.routeByName[rn] == nil:
			v.fail("%s: route %q is not declared in [[routes]]", where, rn)
		case seen[rn]:
			v.fail("%s: route %q listed twice", where, rn)
		}
		seen[rn] = true
	}
	switch {
	case role.RawInstances == nil:
		role.Instances = 1
	case *role.RawInstances < 1:
		v.fail("%s: instances must be at least 1", where)
	default:
		role.Instances = *role.RawInstances
	}
}

func checkPattern(exchangeType, key string) error {
	switch exchangeType {
	case Fanout:
		return nil // ignored by a fanout exchange
	case Direct:
		if !keyWordsRE(key, false) {
			return errors.New("must be an event type: lower-case words of a-z, 0-9, _ and - separated by single dots")
		}
	case Topic:
		if !keyWordsRE(key, true) {
			return errors.New("must be lower-case words of a-z, 0-9, _ and -, or * or #, separated by single dots")
		}
	}
	return nil
}

func keyWordsRE(key string, wildcards bool) bool {
	if key == "" {
		return false
	}
	for w := range strings.SplitSeq(key, ".") {
		if wildcards && (w == "*" || w == "#") {
			continue
		}
		if !keyWordRE.MatchString(w) {
			return false
		}
	}
	return true
}

// Route returns the route with the given name, or nil.
func (c *Config) Route(name string) *Route {
	for _, r := range c.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// RouteByQueue returns the route whose queue or dead-letter queue is q,
// or nil.
func (c *Config) RouteByQueue(q string) *Route {
	for _, r := range c.Routes {
		if r.Queue == q || r.DeadLetterQueue == q {
			return r
		}
	}
	return nil
}

// Role returns the consumer role with the given name, or nil.
func (c *Config) Role(name string) *Role {
	for _, r := range c.Consumers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// RoleNames lists the roles, in file order.
func (c *Config) RoleNames() []string {
	names := make([]string, len(c.Consumers))
	for i, r := range c.Consumers {
		names[i] = r.Name
	}
	return names
}

// PublishExchange is the exchange every route is bound to, the one events
// are published to.
func (c *Config) PublishExchange() *Exchange { return c.Exchanges[c.Routes[0].Exchange] }

// DeadLetterQueues lists the dead-letter queues with their routes, in
// route order.
func (c *Config) DeadLetterQueues() []*Route {
	var out []*Route
	for _, r := range c.Routes {
		if r.DeadLetterQueue != "" {
			out = append(out, r)
		}
	}
	return out
}

// Assignment is one route queue a consumer process consumes, with its
// number of competing workers.
type Assignment struct {
	Route   *Route
	Workers int
}

// Plan returns what a consumer process of role consumes: every route the
// role lists, with count workers per queue when count > 0, else the role's
// instances. An unknown role is an error that lists the known ones.
func (c *Config) Plan(role string, count int) ([]Assignment, error) {
	r := c.Role(role)
	if r == nil {
		return nil, fmt.Errorf("unknown consumer role %q (known: %s)", role, strings.Join(c.RoleNames(), ", "))
	}
	workers := r.Instances
	if count > 0 {
		workers = count
	}
	out := make([]Assignment, 0, len(r.Routes))
	for _, name := range r.Routes {
		out = append(out, Assignment{Route: c.Route(name), Workers: workers})
	}
	return out, nil
}

// PlanAll returns an assignment for every route: what an in-process
// transport runs, since nothing else would consume its queues. The given
// role's routes get its workers (or count); other routes get the instances
// of the first role that lists them, or 1.
func (c *Config) PlanAll(role string, count int) ([]Assignment, error) {
	own, err := c.Plan(role, count)
	if err != nil {
		return nil, err
	}
	workers := map[string]int{}
	for _, a := range own {
		workers[a.Route.Name] = a.Workers
	}
	out := make([]Assignment, 0, len(c.Routes))
	for _, r := range c.Routes {
		w, ok := workers[r.Name]
		if !ok {
			w = 1
			if count > 0 {
				w = count
			} else {
				for _, role := range c.Consumers {
					if contains(role.Routes, r.Name) {
						w = role.Instances
						break
					}
				}
			}
		}
		out = append(out, Assignment{Route: r, Workers: w})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
