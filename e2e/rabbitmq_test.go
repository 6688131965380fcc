package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
	"github.com/chronicle-audit/chronicle/internal/tcpproxy"
)

// cluster is a set of chronicle processes sharing one vhost and one store.
type cluster struct {
	t      *testing.T
	url    string
	vhost  string
	db     string // DATABASE_URL, for PostgreSQL clusters
	dbName string
	env    map[string]string
}

func newCluster(t *testing.T) *cluster {
	u, vh := rabbitmqtest.Vhost(t)
	return &cluster{t: t, url: u, vhost: vh, env: map[string]string{
		"CHRONICLE_TRANSPORT":   "rabbitmq",
		"RABBITMQ_URL":          u,
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "shared.db"),
	}}
}

// newPGCluster is a cluster whose processes share a PostgreSQL database of
// the test's own.
func newPGCluster(t *testing.T) *cluster {
	c := newCluster(t)
	c.db, c.dbName = pgtest.NewDatabase(t)
	c.env["CHRONICLE_STORE"] = "postgres"
	c.env["DATABASE_URL"] = c.db
	delete(c.env, "CHRONICLE_SQLITE_PATH")
	return c
}

func (c *cluster) with(kv ...string) map[string]string {
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// producer starts a producer (API only).
func (c *cluster) producer() *proc {
	return serve(c.t, c.with("CHRONICLE_MODE", "producer"))
}

// consumer starts a consumer of role with a health port, and waits until
// it is healthy (connected, consuming).
func (c *cluster) consumer(role string, kv ...string) *proc {
	env := c.with(append([]string{"CHRONICLE_MODE", "consumer", "CHRONICLE_CONSUMER_ROLE", role}, kv...)...)
	return serve(c.t, env)
}

// waitConsumers waits until queue has n consumers, as the producer's
// GET /queues reports.
func waitConsumers(t *testing.T, p *proc, queue string, n int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%d consumers on %s", n, queue), func() bool {
		var qs []struct {
			Queue     string `json:"queue"`
			Consumers int    `json:"consumers"`
			Depth     int    `json:"depth"`
		}
		p.do("GET", "/queues", "").json(t, &qs)
		for _, q := range qs {
			if q.Queue == queue {
				return q.Consumers == n
			}
		}
		return false
	})
}

// storedOnce checks that every accepted id is stored exactly once, as the
// producer reads the shared store.
func storedOnce(t *testing.T, p *proc, accepted []string, slack int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d accepted events stored", len(accepted)), func() bool {
		return len(p.allEvents("")) >= len(accepted)
	})
	got := p.allEvents("")
	count := map[string]int{}
	for _, e := range got {
		count[e.ID]++
	}
	for _, id := range accepted {
		if count[id] != 1 {
			t.Fatalf("accepted event %s stored %d times", id, count[id])
		}
	}
	if len(got) > len(accepted)+slack {
		t.Fatalf("stored %d events for %d accepted (+%d that may have lost their answer)", len(got), len(accepted), slack)
	}
	t.Logf("accepted %d, stored %d, each accepted event exactly once", len(accepted), len(got))
}

// The original system's datatype-channel demo across processes: security consumers
// get security events, analytics gets everything; each event is stored
// once.
func TestRabbitDatatypeChannels(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	security := c.consumer("security", "CHRONICLE_CONSUMER_COUNT", "2")
	analytics := c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.security", 2)
	waitConsumers(t, p, "chronicle.all", 1)
	var ids []string
	for _, body := range []string{
		`{"actor":"alice@example.com","action":"login","resource_type":"auth","resource_id":"s-1","event_type":"security.login"}`,
		`{"actor":"bob@example.com","action":"created","resource_type":"user","resource_id":"u-1"}`,
		`{"actor":"carol@example.com","action":"charge","resource_type":"billing","resource_id":"i-1"}`,
	} {
		var a struct{ ID string }
		r := p.do("POST", "/events", body)
		r.expect(t, 202, "accepted")
		r.json(t, &a)
		ids = append(ids, a.ID)
	}
	storedOnce(t, p, ids, 0)
	// Nobody consumes users or billing: those copies wait in their queues.
	var qs []struct {
		Queue string `json:"queue"`
		Depth int    `json:"depth"`
	}
	eventually(t, 10*time.Second, "queue depths", func() bool {
		p.do("GET", "/queues", "").json(t, &qs)
		depth := map[string]int{}
		for _, q := range qs {
			depth[q.Queue] = q.Depth
		}
		return depth["chronicle.users"] == 1 && depth["chronicle.billing"] == 1 && depth["chronicle.security"] == 0 && depth["chronicle.all"] == 0
	})
	security.do("GET", "/health", "").expect(t, 200, `"transport":"rabbitmq"`)
	analytics.do("POST", "/events", seedEvent).expect(t, 404, "not found")
}

// Two consumer processes of one role compete for one queue; every event is
// stored exactly once.
func TestRabbitCompetingConsumerProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.consumer("analytics")
	c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 2)
	accepted := postConcurrently(t, p, 16, 50)
	storedOnce(t, p, accepted, 0)
}

// A malformed payload published straight to the exchange is dead-lettered
// with its reason, and the consumer keeps going.
func TestRabbitMalformedPayload(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	consumer := c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 1)
	conn, err := amqp.Dial(c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := ch.Publish("audit_events", "document.viewed", false, false, amqp.Publishing{MessageId: "poison-1", Body: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	// A well-formed event whose actor is not UTF-8: dead-lettered, never
	// stored with U+FFFD in its place.
	notUTF8 := "{\"id\":\"0195f0a4-0000-7000-8000-00000000abcd\",\"timestamp\":\"2026-01-02T03:04:05Z\",\"actor\":\"\xff\xfe\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\",\"event_type\":\"document.viewed\"}"
	if err := ch.Publish("audit_events", "document.viewed", false, false, amqp.Publishing{MessageId: "poison-2", Body: []byte(notUTF8)}); err != nil {
		t.Fatal(err)
	}
	var a struct{ ID string }
	p.do("POST", "/events", seedEvent).json(t, &a)
	storedOnce(t, p, []string{a.ID}, 0)
	eventually(t, 10*time.Second, "the poison messages in chronicle.all.dlq", func() bool {
		for _, q := range rabbitmqtest.Queues(t, c.vhost) {
			if q.Name == "chronicle.all.dlq" {
				return q.Messages == 2
			}
		}
		return false
	})
	if r := p.do("GET", "/events/0195f0a4-0000-7000-8000-00000000abcd", ""); r.Status != 404 {
		t.Fatalf("an event that is not UTF-8 was stored: %d %s", r.Status, r.Body)
	}
	r := p.do("GET", "/dlq/chronicle.all.dlq", "")
	r.expect(t, 200, `invalid text: field \"actor\" is not valid UTF-8`)
	// The consumer process says what it stored and dead-lettered, by queue
	// and reason.
	eventually(t, 10*time.Second, "the consumer's counters", func() bool {
		return metric(t, consumer, `chronicle_events_dead_lettered_total{queue="chronicle.all",reason="parse_error"}`) == 1 &&
			metric(t, consumer, `chronicle_events_dead_lettered_total{queue="chronicle.all",reason="invalid_text"}`) == 1 &&
			metric(t, consumer, `chronicle_events_stored_total{queue="chronicle.all"}`) >= 1
	})
	checkMetrics(t, consumer)
	checkMetrics(t, p)
}

// A broker that is not there yet: the service starts, says it is
// unavailable, and works once the broker appears.
func TestRabbitUnreachableAtStart(t *testing.T) {
	t.Parallel()
	u, _ := rabbitmqtest.Vhost(t)
	px := tcpproxy.New(t, "127.0.0.1:5672")
	env := map[string]string{
		"CHRONICLE_TRANSPORT":   "rabbitmq",
		"RABBITMQ_URL":          strings.Replace(u, "127.0.0.1:5672", px.Addr, 1),
		"CHRONICLE_PORT":        strconv.Itoa(freePort(t)),
		"CHRONICLE_LISTEN_HOST": "127.0.0.1",
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "c.db"),
	}
	p := run(t, env, "serve")
	eventually(t, 20*time.Second, "the API to answer", func() bool {
		r, err := p.try("GET", "/health", "")
		return err == nil && r.Status == 503
	})
	r := p.do("POST", "/events", seedEvent)
	r.expect(t, 503, `"error":"RabbitMQ is unreachable`)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	px.Open()
	p.waitHealthy(30 * time.Second)
	p.do("POST", "/events", seedEvent).expect(t, 202, "accepted")
}

func TestRabbitWrongCredentials(t *testing.T) {
	t.Parallel()
	_, vh := rabbitmqtest.Vhost(t)
	p := run(t, map[string]string{
		"CHRONICLE_TRANSPORT":   "rabbitmq",
		"RABBITMQ_URL":          strings.Replace(rabbitmqtest.AMQPBase(), "guest:guest@", "guest:not-the-password@", 1) + vh,
		"CHRONICLE_PORT":        strconv.Itoa(freePort(t)),
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "c.db"),
	}, "serve")
	if code := p.wait(30 * time.Second); code == 0 {
		t.Fatal("started with wrong credentials")
	}
	if s := p.stderr.String(); !strings.Contains(s, "refused the login") || strings.Contains(s, "not-the-password") {
		t.Fatalf("stderr: %s", s)
	}
}

// A consumer serves no API, and no HTTP at all unless CHRONICLE_PORT is set.
func TestRabbitConsumerWithoutPort(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := run(t, c.with("CHRONICLE_MODE", "consumer", "CHRONICLE_CONSUMER_ROLE", "users"), "serve")
	q := c.producer()
	waitConsumers(t, q, "chronicle.users", 1)
	if strings.Contains(p.stderr.String(), "listening") {
		t.Fatalf("consumer without CHRONICLE_PORT listens:\n%s", p.stderr.String())
	}
	if code := p.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("consumer exit code %d", code)
	}
}
