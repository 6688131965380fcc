package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/tcpproxy"
	amqp "github.com/rabbitmq/amqp091-go"
)

// In-process queues on a PostgreSQL that cannot be reached at start-up:
// the service keeps running, says why on /health, refuses events with 503
// and Retry-After, and recovers by itself when the database appears.
func TestInprocPostgresUnreachableAtStart(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewDatabase(t)
	px := tcpproxy.New(t, pgHostPort(t, db))
	port := freePort(t)
	p := run(t, map[string]string{
		"CHRONICLE_PORT":        strconv.Itoa(port),
		"CHRONICLE_LISTEN_HOST": "127.0.0.1",
		"CHRONICLE_STORE":       "postgres",
		"DATABASE_URL":          strings.Replace(db, pgHostPort(t, db), px.Addr, 1),
	}, "serve")
	var health response
	eventually(t, 20*time.Second, "/health to answer", func() bool {
		r, err := p.try("GET", "/health", "")
		health = r
		return err == nil
	})
	if health.Status != 503 || health.Header.Get("Retry-After") == "" || !strings.Contains(string(health.Body), `"error":"PostgreSQL is not available"`) {
		t.Fatalf("/health while the database is down: %d %v %s", health.Status, health.Header, health.Body)
	}
	if strings.Contains(string(health.Body), px.Addr) || strings.Contains(string(health.Body), "root") {
		t.Fatalf("/health shows the database's address or user: %s", health.Body)
	}
	r := p.do("POST", "/events", `{"actor":"a@example.com","action":"login","resource_type":"security","resource_id":"s-1"}`)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("POST /events while the journal cannot be read: %d %s", r.Status, r.Body)
	}
	select {
	case <-p.exited:
		t.Fatalf("chronicle exited: %v\n%s", p.err, p.stderr.String())
	default:
	}
	px.Open()
	p.waitHealthy(30 * time.Second)
	r = p.do("POST", "/events", `{"actor":"a@example.com","action":"login","resource_type":"security","resource_id":"s-1"}`)
	r.expect(t, 202, "accepted")
	var acc struct{ ID string }
	r.json(t, &acc)
	eventually(t, 10*time.Second, "the event stored", func() bool {
		got, err := p.try("GET", "/events/"+acc.ID, "")
		return err == nil && got.Status == 200
	})
}

// The SQLite file and the files beside it are created private.
func TestSQLiteFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "private.db")
	p := serve(t, map[string]string{"CHRONICLE_SQLITE_PATH": path})
	p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`).expect(t, 202, "accepted")
	matches, _ := filepath.Glob(path + "*")
	if len(matches) < 2 {
		t.Fatalf("files: %v", matches)
	}
	for _, f := range matches {
		if mode := fileMode(t, f); mode&0o077 != 0 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(f), mode)
		}
	}
}

// Slow and large uploads against the real binary: 1,100 connections that
// each send one byte of a declared 100 kB body (more than the 1,024
// in-flight slots) lock nobody out, and 128 held 1 MiB uploads leave
// memory bounded by the buffer budget instead of growing with them.
func TestUploadFloodMemory(t *testing.T) {
	t.Parallel()
	p := serve(t, map[string]string{"CHRONICLE_BODY_TIMEOUT": "20s"})
	addr := strings.TrimPrefix(p.url, "http://")
	rssBefore := metric(t, p, "process_resident_memory_bytes")
	hold := func(n int, declared int, send []byte) []net.Conn {
		var conns []net.Conn
		for range n {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", declared)
			c.Write(send)
			conns = append(conns, c)
		}
		return conns
	}
	hold(1100, 100_000, []byte("{"))
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`).expect(t, 202, "accepted")
	}
	big := hold(128, 1<<20, bytes.Repeat([]byte(" "), 768<<10))
	time.Sleep(500 * time.Millisecond)
	p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`).expect(t, 202, "accepted")
	rssHeld := metric(t, p, "process_resident_memory_bytes")
	refused := 0
	for _, c := range big {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if r, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && r.StatusCode == 503 {
			refused++
		}
	}
	t.Logf("RSS %.0f MiB before, %.0f MiB with 1,100 one-byte and 128 x 768 kB uploads held; %d of the large ones refused (budget spent)",
		rssBefore/(1<<20), rssHeld/(1<<20), refused)
	if grew := rssHeld - rssBefore; grew > 200<<20 {
		t.Fatalf("RSS grew by %.0f MiB with uploads held: the buffer budget does not bound memory", grew/(1<<20))
	}
	if refused == 0 {
		t.Fatal("128 x 768 kB held against a 64 MiB budget: none refused")
	}
}

// Four events holding NUL, published straight to RabbitMQ ahead of valid
// ones, on PostgreSQL (which cannot store NUL): they are dead-lettered
// with a reason and the valid events behind them are stored.
func TestNULDoesNotStallRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	c.consumer("analytics", "CHRONICLE_CONSUMER_COUNT", "4")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 4)
	conn, err := amqp.Dial(c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	for i := range 4 {
		id := fmt.Sprintf("0195f0a4-0000-7000-8000-%012d", i)
		body := `{"id":"` + id + `","timestamp":"2026-01-02T03:04:05Z","actor":"a\u0000b","action":"b","resource_type":"c","resource_id":"d","event_type":"document.viewed"}`
		if err := ch.Publish("audit_events", "document.viewed", false, false, amqp.Publishing{MessageId: id, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	accepted := postConcurrently(t, p, 4, 25)
	storedOnce(t, p, accepted, 0)
	eventually(t, 10*time.Second, "the NUL events dead-lettered", func() bool {
		var dl []struct{ Reason string }
		p.do("GET", "/dlq/chronicle.all.dlq", "").json(t, &dl)
		return len(dl) == 4 && strings.Contains(dl[0].Reason, "U+0000")
	})
	p.waitHealthy(5 * time.Second)
}
