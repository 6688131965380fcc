package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/routing"
)

func TestInfo(t *testing.T) {
	t.Parallel()

	r := execCLI(t, nil, "info").expect(t, ExitOK)
	for _, want := range []string{"CHRONICLE_TRANSPORT inproc", "CHRONICLE_STORE sqlite", "CHRONICLE_URL http://localhost:8080", "CHRONICLE_LISTEN_HOST 127.0.0.1"} {
		found := false
		for _, line := range strings.Split(r.stdout, "\n") {
			found = found || strings.Join(strings.Fields(line), " ") == want
		}
		if !found {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}

	secrets := map[string]string{
		"CHRONICLE_STORE":     "postgres",
		"CHRONICLE_TRANSPORT": "rabbitmq",
		"DATABASE_URL":        "postgres://chronicle:pg-secret@db:5432/chronicle",
		"RABBITMQ_PASS":       "mq-secret",
		"CHRONICLE_API_KEY":   "key-secret",
		"CHRONICLE_URL":       "http://user:url-secret@127.0.0.1:9",
	}
	for _, args := range [][]string{{"info"}, {"info", "--json"}} {
		r := execCLI(t, secrets, args...).expect(t, ExitOK)
		if strings.Contains(r.stdout, "secret") {
			t.Errorf("%v shows a secret:\n%s", args, r.stdout)
		}
	}
	// A password given as a query parameter is masked too, by info and by
	// migrate's errors.
	inQuery := map[string]string{"CHRONICLE_STORE": "postgres", "DATABASE_URL": "postgres://chronicle@127.0.0.1:1/chronicle?password=pg-secret&connect_timeout=1"}
	if r := execCLI(t, inQuery, "info"); strings.Contains(r.stdout+r.stderr, "pg-secret") {
		t.Errorf("info shows a password given as ?password=:\n%s", r.stdout)
	}
	if r := execCLI(t, inQuery, "migrate", "status", "--timeout", "3s"); strings.Contains(r.stdout+r.stderr, "pg-secret") || r.code == ExitOK {
		t.Errorf("migrate against an unreachable database: exit %d, output shows the password or succeeded:\n%s%s", r.code, r.stdout, r.stderr)
	}
	var settings []config.Setting
	execCLI(t, secrets, "info", "--json").expect(t, ExitOK).decode(t, &settings)
	got := map[string]string{}
	for _, s := range settings {
		got[s.Name] = s.Value
	}
	if got["CHRONICLE_STORE"] != "postgres" || got["CHRONICLE_API_KEY"] == "" || !strings.HasPrefix(got["DATABASE_URL"], "postgres://chronicle:") {
		t.Errorf("info --json: %v", got)
	}

	r = execCLI(t, map[string]string{"CHRONICLE_PORT": "http"}, "info").expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "CHRONICLE_PORT") {
		t.Errorf("a bad variable: stderr %q does not name it", r.stderr)
	}
	execCLI(t, nil, "info", "extra").expect(t, ExitUsage)
}

func TestRoutes(t *testing.T) {
	t.Parallel()

	r := execCLI(t, nil, "routes").expect(t, ExitOK)
	for _, want := range []string{
		"all_events       #           chronicle.all       chronicle.all.dlq\n",
		"security_events  security.#  chronicle.security  chronicle.security.dlq\n",
		"user_events      user.#      chronicle.users     chronicle.users.dlq\n",
		"billing_events   billing.#   chronicle.billing   chronicle.billing.dlq\n",
		routing.UnroutedQueue,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("routes lacks %q:\n%s", want, r.stdout)
		}
	}

	var out struct {
		Source        string      `json:"source"`
		Exchange      string      `json:"exchange"`
		Routes        []routeView `json:"routes"`
		UnroutedQueue string      `json:"unrouted_queue"`
	}
	execCLI(t, nil, "routes", "--json").expect(t, ExitOK).decode(t, &out)
	if out.Exchange != "audit_events" || len(out.Routes) != 4 || out.Routes[1].RoutingKey != "security.#" ||
		out.Routes[1].DeadLetterQueue != "chronicle.security.dlq" || out.UnroutedQueue != routing.UnroutedQueue {
		t.Errorf("routes --json: %+v", out)
	}

	// A custom file: its routes, and a warning for a route without a DLQ.
	path := filepath.Join(t.TempDir(), "routing.toml")
	custom := `
[exchanges.events]
type = "topic"

[[routes]]
name = "audits"
exchange = "events"
queue = "audits"
routing_key = "audit.*"

[[consumers]]
name = "default"
routes = ["audits"]
`
	if err := os.WriteFile(path, []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	r = execCLI(t, map[string]string{"CHRONICLE_CONFIG": path}, "routes").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "audits  audit.*  audits  (none)") || !strings.Contains(r.stderr, "warning:") {
		t.Errorf("custom routes: stdout\n%s\nstderr %q", r.stdout, r.stderr)
	}
	execCLI(t, nil, "routes", "--config", path).expect(t, ExitOK)

	r = execCLI(t, nil, "routes", "--config", filepath.Join(t.TempDir(), "missing.toml")).expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "CHRONICLE_CONFIG") {
		t.Errorf("a missing file: stderr %q", r.stderr)
	}
}

func TestConsumers(t *testing.T) {
	t.Parallel()

	r := execCLI(t, nil, "consumers").expect(t, ExitOK)
	for _, want := range []string{
		"security   2          security_events\n",
		"default *  3          all_events, security_events, user_events, billing_events\n",
		"chronicle.billing   billing_events   3\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("consumers lacks %q:\n%s", want, r.stdout)
		}
	}

	type out struct {
		Role     string           `json:"role"`
		Roles    []roleView       `json:"roles"`
		Consumes []assignmentView `json:"consumes"`
	}
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		args     []string
		role     string
		consumes string // queue×workers, comma-separated
	}{
		{"InprocConsumesEveryRoute", nil, []string{"--role", "security"}, "security",
			"chronicle.all×1,chronicle.security×2,chronicle.users×1,chronicle.billing×1"},
		{"Count", nil, []string{"--count", "5"}, "default",
			"chronicle.all×5,chronicle.security×5,chronicle.users×5,chronicle.billing×5"},
		{"RabbitMQRoleOnly", map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "CHRONICLE_CONSUMER_ROLE": "security"}, nil, "security",
			"chronicle.security×2"},
		{"ProducerNone", map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "CHRONICLE_MODE": "producer"}, nil, "default", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o out
			execCLI(t, tc.vars, append([]string{"consumers", "--json"}, tc.args...)...).expect(t, ExitOK).decode(t, &o)
			var got []string
			for _, a := range o.Consumes {
				got = append(got, a.Queue+"×"+strconv.Itoa(a.Workers))
			}
			if o.Role != tc.role || len(o.Roles) != 5 || strings.Join(got, ",") != tc.consumes {
				t.Errorf("consumers --json: role %s, %d roles, consumes %v; want %s, 5, %s", o.Role, len(o.Roles), got, tc.role, tc.consumes)
			}
		})
	}

	r = execCLI(t, nil, "consumers", "--role", "nosuch").expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("unknown role: stderr %q", r.stderr)
	}
}
