package routing

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if got := c.PublishExchange().Name; got != "audit_events" {
		t.Errorf("publish exchange = %q", got)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("built-in configuration has warnings: %v", c.Warnings)
	}
	// Every route has its own DLQ, reached through a direct exchange.
	for _, r := range c.Routes {
		if r.DeadLetterQueue == "" {
			t.Errorf("route %s has no DLQ", r.Name)
		}
		if c.Exchanges[r.DeadLetterExchange].Type != Direct {
			t.Errorf("route %s dead-letters through a %s exchange", r.Name, c.Exchanges[r.DeadLetterExchange].Type)
		}
	}
	want := map[string]int{"security": 2, "analytics": 1, "billing": 1, "users": 1, "default": 3}
	for name, n := range want {
		if r := c.Role(name); r == nil || r.Instances != n {
			t.Errorf("role %s = %+v, want %d instances", name, r, n)
		}
	}
}

func TestRouterDefault(t *testing.T) {
	t.Parallel()
	r := NewRouter(Default())
	tests := []struct {
		eventType string
		queues    []string
	}{
		{"security.login", []string{"chronicle.all", "chronicle.security"}},
		{"user.created", []string{"chronicle.all", "chronicle.users"}},
		{"billing.charge", []string{"chronicle.all", "chronicle.billing"}},
		{"document.viewed", []string{"chronicle.all"}},
		{"security", []string{"chronicle.all", "chronicle.security"}},
		{"securityx.login", []string{"chronicle.all"}},
	}
	for _, tt := range tests {
		var got []string
		for _, rt := range r.Routes(tt.eventType) {
			got = append(got, rt.Queue)
		}
		if !slices.Equal(got, tt.queues) {
			t.Errorf("Routes(%q) = %v, want %v", tt.eventType, got, tt.queues)
		}
		// Cached answers are the same.
		if again := r.Routes(tt.eventType); len(again) != len(got) {
			t.Errorf("cached Routes(%q) differs", tt.eventType)
		}
	}
}

func TestRouterUnrouted(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`
[exchanges.x]
type = "topic"
[[routes]]
name = "s"
exchange = "x"
queue = "q.s"
routing_key = "security.*"
`), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(c)
	if got := r.Routes("security.login.failed"); len(got) != 0 {
		t.Errorf("security.login.failed routed to %v", got)
	}
	if got := r.Routes("security.login"); len(got) != 1 {
		t.Errorf("security.login routed to %v", got)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "no dead_letter_queue") {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

func TestRouterFanoutAndDirect(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind string
		key  string
		want int
	}{{Fanout, "anything.at.all", 2}, {Direct, "a.b", 1}, {Direct, "a.c", 0}} {
		c, err := Parse([]byte(`
[exchanges.x]
type = "`+tt.kind+`"
[[routes]]
name = "one"
exchange = "x"
queue = "q1"
routing_key = "a.b"
[[routes]]
name = "two"
exchange = "x"
queue = "q2"
routing_key = "z.z"
`), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(NewRouter(c).Routes(tt.key)); got != tt.want {
			t.Errorf("%s exchange: %q went to %d routes, want %d", tt.kind, tt.key, got, tt.want)
		}
	}
}

const okRoute = `
[exchanges.audit]
type = "topic"
durable = true
[exchanges.dlx]
type = "direct"
[[routes]]
name = "all"
exchange = "audit"
queue = "q.all"
routing_key = "#"
dead_letter_exchange = "dlx"
dead_letter_queue = "q.all.dlq"
`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, toml, want string
	}{
		{"ErrSyntax", "[exchanges.x\ntype=1", "bad.toml:2: expected"},
		{"ErrUnknownKey", okRoute + "\n[[consumers]]\nname = \"a\"\nroutes = [\"all\"]\ninstanses = 2\n", "unknown key consumers.instanses"},
		{"ErrNoExchanges", "", "no [exchanges] declared"},
		{"ErrExchangeType", "[exchanges.x]\ntype = \"headers\"\n", `exchange "x": type "headers" is not one of topic, fanout, direct`},
		{"ErrExchangeTypeMissing", "[exchanges.x]\ndurable = true\n", `exchange "x": type is required`},
		{"ErrNoRoutes", "[exchanges.x]\ntype = \"topic\"\n", "no [[routes]] declared"},
		{"ErrUnknownExchange", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"nope\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\n", `routes[1] (b): exchange "nope" is not declared in [exchanges]`},
		{"ErrDuplicateRoute", okRoute + "[[routes]]\nname = \"all\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\n", `routes[1] (all): duplicate route name "all"`},
		{"ErrDuplicateQueue", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.all\"\nrouting_key = \"b.#\"\n", `routes[1] (b): queue "q.all" is already used by route "all"`},
		{"ErrUnroutedQueue", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"chronicle.unrouted\"\nrouting_key = \"b.#\"\n", `is already used by the unrouted queue`},
		{"ErrRouteName", okRoute + "[[routes]]\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\n", "routes[1]: name is required"},
		{"ErrEmptyWord", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b..c\"\n", `routes[1] (b): routing_key "b..c": must be lower-case words`},
		{"ErrUpperCase", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"Security.#\"\n", `routing_key "Security.#"`},
		{"ErrEmptyKey", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\n", `routing_key "": must be`},
		{"ErrPartialWildcard", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"sec*.#\"\n", `routing_key "sec*.#"`},
		{"ErrTwoExchanges", okRoute + "[exchanges.other]\ntype = \"topic\"\n[[routes]]\nname = \"b\"\nexchange = \"other\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\n", `every route must be bound to the one exchange`},
		{"ErrDLQWithoutExchange", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\ndead_letter_queue = \"q.b.dlq\"\n", `dead_letter_queue "q.b.dlq" needs a dead_letter_exchange`},
		{"ErrDLXUndeclared", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\ndead_letter_exchange = \"nope\"\ndead_letter_queue = \"q.b.dlq\"\n", `dead_letter_exchange "nope" is not declared`},
		{"ErrSharedDLQ", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\ndead_letter_exchange = \"dlx\"\ndead_letter_queue = \"q.all.dlq\"\n", `dead_letter_queue "q.all.dlq" is already used by route "all"`},
		{"ErrFanoutDLX", strings.Replace(okRoute, `type = "direct"`, `type = "fanout"`, 1) + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\ndead_letter_exchange = \"dlx\"\ndead_letter_queue = \"q.b.dlq\"\n", `dead_letter_exchange "dlx" is a fanout exchange shared by q.all.dlq, q.b.dlq`},
		{"ErrDLXIsPublishExchange", okRoute + "[[routes]]\nname = \"b\"\nexchange = \"audit\"\nqueue = \"q.b\"\nrouting_key = \"b.#\"\ndead_letter_exchange = \"audit\"\ndead_letter_queue = \"q.b.dlq\"\n", `dead_letter_exchange "audit" is the exchange routes are bound to`},
		{"ErrQueueType", okRoute + "queue_type = \"stream\"\n", `queue_type "stream" is not classic or quorum`},
		{"ErrDeliveryLimitClassic", okRoute + "delivery_limit = 5\n", `delivery_limit needs queue_type = "quorum"`},
		{"ErrUnknownRouteInRole", okRoute + "[[consumers]]\nname = \"r\"\nroutes = [\"all\", \"ghost\"]\n", `consumers[0] (r): route "ghost" is not declared in [[routes]]`},
		{"ErrDuplicateRole", okRoute + "[[consumers]]\nname = \"r\"\nroutes = [\"all\"]\n[[consumers]]\nname = \"r\"\nroutes = [\"all\"]\n", `consumers[1] (r): duplicate consumer role "r"`},
		{"ErrInstances", okRoute + "[[consumers]]\nname = \"r\"\nroutes = [\"all\"]\ninstances = 0\n", `consumers[0] (r): instances must be at least 1`},
		{"ErrEmptyRole", okRoute + "[[consumers]]\nname = \"r\"\nroutes = []\n", `consumers[0] (r): routes is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.toml), "bad.toml")
			if err == nil {
				t.Fatalf("Parse accepted it; want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseQuorum(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(okRoute+"queue_type = \"quorum\"\ndelivery_limit = 5\n[[consumers]]\nname = \"r\"\nroutes = [\"all\"]\n"), "ok.toml")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routes[0]; r.QueueType != Quorum || r.DeliveryLimit != 5 {
		t.Errorf("route = %+v", r)
	}
	if c.Role("r").Instances != 1 {
		t.Errorf("instances default = %d", c.Role("r").Instances)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, DefaultTOML(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != path || len(c.Routes) != 4 {
		t.Errorf("Load = %s with %d routes", c.Source, len(c.Routes))
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("Load(missing) error = %v", err)
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	c := Default()
	plan, err := c.Plan("security", 0)
	if err != nil || len(plan) != 1 || plan[0].Route.Queue != "chronicle.security" || plan[0].Workers != 2 {
		t.Fatalf("Plan(security) = %+v, %v", plan, err)
	}
	plan, _ = c.Plan("security", 5)
	if plan[0].Workers != 5 {
		t.Errorf("count override: %d workers", plan[0].Workers)
	}
	if _, err := c.Plan("ghost", 0); err == nil || !strings.Contains(err.Error(), `unknown consumer role "ghost" (known: security, analytics, billing, users, default)`) {
		t.Errorf("Plan(ghost) error = %v", err)
	}
	all, err := c.PlanAll("analytics", 0)
	if err != nil || len(all) != 4 {
		t.Fatalf("PlanAll = %+v, %v", all, err)
	}
	got := map[string]int{}
	for _, a := range all {
		got[a.Route.Queue] = a.Workers
	}
	want := map[string]int{"chronicle.all": 1, "chronicle.security": 2, "chronicle.users": 1, "chronicle.billing": 1}
	for q, n := range want {
		if got[q] != n {
			t.Errorf("PlanAll: %s has %d workers, want %d", q, got[q], n)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(string(DefaultTOML()))
	f.Add(okRoute)
	f.Add("[exchanges.x]\ntype=\"topic\"\n[[routes]]\nname=\"a\"\nexchange=\"x\"\nqueue=\"q\"\nrouting_key=\"#\"\n[[consumers]]\nname=\"c\"\nroutes=[\"a\"]\ninstances=-1\n")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := Parse([]byte(data), "fuzz.toml")
		if err != nil {
			return
		}
		// A configuration that validates must be usable.
		r := NewRouter(c)
		r.Routes("security.login")
		for _, role := range c.Consumers {
			if _, err := c.Plan(role.Name, 0); err != nil {
				t.Fatalf("valid config, but Plan(%s): %v", role.Name, err)
			}
		}
	})
}
