package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/tcpproxy"
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
