package e2e

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
	"github.com/chronicle-audit/chronicle/internal/tcpproxy"
)

// flooder posts events from several goroutines until stopped, and keeps
// the ids that got 202 and how many answers were 503 (which may or may
// not have been stored: the client was told to retry).
type flooder struct {
	p           *proc
	mu          sync.Mutex
	accepted    []string
	unavailable int
	failures    int
	stop        chan struct{}
	wg          sync.WaitGroup
}

// startFlood starts workers posting as fast as answers come, for at most
// limit (every loop is bounded in time).
func startFlood(p *proc, workers int, limit time.Duration) *flooder {
	f := &flooder{p: p, stop: make(chan struct{})}
	deadline := time.Now().Add(limit)
	for w := range workers {
		f.wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-f.stop:
					return
				default:
				}
				r, err := p.try("POST", "/events", fmt.Sprintf(`{"actor":"w%d@example.com","action":"login","resource_type":"security","resource_id":"%d"}`, w, i))
				f.mu.Lock()
				switch {
				case err != nil:
					f.failures++ // connection refused or cut: not accepted
				case r.Status == 202:
					var a struct{ ID string }
					r.json(p.t, &a)
					f.accepted = append(f.accepted, a.ID)
				case r.Status == 503:
					f.unavailable++
					if r.Header.Get("Retry-After") == "" {
						p.t.Errorf("503 without Retry-After: %s", r.Body)
					}
				default:
					p.t.Errorf("POST: %d %s", r.Status, r.Body)
				}
				f.mu.Unlock()
				if err != nil || r.Status != 202 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return f
}

// halt stops the flood and returns what it saw.
func (f *flooder) halt() (accepted []string, unavailable, failures int) {
	close(f.stop)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, f.unavailable, f.failures
}

// Fault (d): SIGTERM to a full in-process service in the middle of a
// flood. It stops intake, drains its queues into SQLite and exits 0; after
// a restart every accepted event is there, once.
func TestFaultSIGTERMMidFlood(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db")}
	p := serve(t, env)
	f := startFlood(p, 16, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	code := p.stop(syscall.SIGTERM, 60*time.Second)
	accepted, unavailable, failures := f.halt()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.stderr.String())
	}
	q := serve(t, env)
	t.Logf("SIGTERM mid-flood: %d accepted, %d answered 503 while draining, %d refused connections", len(accepted), unavailable, failures)
	storedOnce(t, q, accepted, unavailable+16)
}

// storedOnceInPG compares, in the database itself, the accepted ids with
// what is stored: every accepted id exactly once, and at most slack more
// rows (requests whose answer was lost or was a 503).
func storedOnceInPG(t *testing.T, c *cluster, accepted []string, slack int) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("%d accepted events in PostgreSQL", len(accepted)), func() bool {
		return pgtest.Count(t, c.db, `SELECT count(*) FROM audit_events`) >= len(accepted)
	})
	time.Sleep(500 * time.Millisecond) // redeliveries in flight land too
	rows := pgtest.Count(t, c.db, `SELECT count(*) FROM audit_events`)
	found := pgtest.Count(t, c.db, `SELECT count(*) FROM audit_events WHERE id = ANY($1::uuid[])`, accepted)
	distinct := pgtest.Count(t, c.db, `SELECT count(DISTINCT id) FROM audit_events`)
	t.Logf("compared: %d accepted, %d of them stored, %d rows (%d distinct ids), slack %d", len(accepted), found, rows, distinct, slack)
	if found != len(accepted) {
		t.Fatalf("%d accepted events are missing", len(accepted)-found)
	}
	if distinct != rows {
		t.Fatalf("duplicates: %d rows for %d ids", rows, distinct)
	}
	if rows > len(accepted)+slack {
		t.Fatalf("%d rows for %d accepted events (+%d slack)", rows, len(accepted), slack)
	}
}

func dlqDepths(t *testing.T, c *cluster) int {
	n := 0
	for _, q := range rabbitmqtest.Queues(t, c.vhost) {
		if strings.HasSuffix(q.Name, ".dlq") {
			n += q.Messages
		}
	}
	return n
}

// Fault (a), and the ack discipline of the RabbitMQ transport: SIGKILL a
// consumer with unacked deliveries in hand, mid-flood; after a new consumer
// starts, every accepted event is stored exactly once.
func TestFaultKillConsumerRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	victim := c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 1)
	f := startFlood(p, 8, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	victim.stop(syscall.SIGKILL, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	accepted, unavailable, _ := f.halt()
	c.consumer("analytics")
	storedOnceInPG(t, c, accepted, unavailable)
}

// Fault (b), and the RabbitMQ transport's recovery: force-close every
// broker connection during a flood; the processes reconnect by themselves
// and every accepted event is stored exactly once.
func TestFaultBrokerConnectionsRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 1)
	f := startFlood(p, 8, 30*time.Second)
	eventually(t, 15*time.Second, "connections listed", func() bool { return len(rabbitmqtest.Connections(t, c.vhost)) >= 3 })
	time.Sleep(500 * time.Millisecond)
	closed := rabbitmqtest.CloseConnections(t, c.vhost)
	time.Sleep(1500 * time.Millisecond)
	accepted, unavailable, _ := f.halt()
	t.Logf("closed %d connections", closed)
	storedOnceInPG(t, c, accepted, unavailable)
}

// Fault (c): terminate the database connections during a flood; nothing
// is lost, duplicated or dead-lettered.
func TestFaultDatabaseConnectionsRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 1)
	f := startFlood(p, 8, 30*time.Second)
	terminated := 0
	for range 3 {
		time.Sleep(600 * time.Millisecond)
		terminated += pgtest.TerminateBackends(t, c.dbName)
	}
	time.Sleep(500 * time.Millisecond)
	accepted, unavailable, _ := f.halt()
	t.Logf("terminated %d database connections", terminated)
	storedOnceInPG(t, c, accepted, unavailable)
	if n := dlqDepths(t, c); n != 0 {
		t.Fatalf("the database outage dead-lettered %d messages", n)
	}
}

// A longer database outage: consumers stop acking and retry, /health says
// the store is down, and when it is back everything is stored, nothing
// dead-lettered.
func TestDatabaseOutageRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	px := tcpproxy.New(t, pgHostPort(t, c.db))
	px.Open()
	viaProxy := strings.Replace(c.db, pgHostPort(t, c.db), px.Addr, 1)
	consumer := c.consumer("analytics", "DATABASE_URL", viaProxy)
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 1)
	f := startFlood(p, 4, 30*time.Second)
	time.Sleep(800 * time.Millisecond)
	px.Cut()
	eventually(t, 20*time.Second, "the consumer's /health to say the store is down", func() bool {
		r, err := consumer.try("GET", "/health", "")
		return err == nil && r.Status == 503 && strings.Contains(string(r.Body), "postgres")
	})
	time.Sleep(1500 * time.Millisecond)
	var qs []struct {
		Queue string `json:"queue"`
		Depth int    `json:"depth"`
	}
	p.do("GET", "/queues", "").json(t, &qs)
	px.Open()
	accepted, unavailable, _ := f.halt()
	consumer.waitHealthy(30 * time.Second)
	failures := metric(t, consumer, "chronicle_store_write_failures_total")
	t.Logf("during the outage: queues %v; %v failed store writes retried", qs, failures)
	if failures == 0 {
		t.Fatal("the consumer never saw the outage")
	}
	storedOnceInPG(t, c, accepted, unavailable)
	if n := dlqDepths(t, c); n != 0 {
		t.Fatalf("the database outage dead-lettered %d messages", n)
	}
}

func pgHostPort(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		t.Fatalf("this test needs a host:port DATABASE_URL, not %q", dbURL)
	}
	return u.Host
}

// metric reads one unlabelled metric from a process's /metrics.
// metric sums every series of the metric name in p's /metrics; a name
// with labels ({…}) names one series.
func metric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	r := p.do("GET", "/metrics", "")
	sum, found := 0.0, false
	for _, line := range strings.Split(string(r.Body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !(strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{") && !strings.HasSuffix(name, "}")) {
			continue
		}
		f, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric %s: %v", line, err)
		}
		sum, found = sum+f, true
	}
	if !found {
		t.Fatalf("no metric %s", name)
	}
	return sum
}
