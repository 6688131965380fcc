package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/postgres"
)

func adminURL() string                              { return pgtest.AdminURL() }
func admin(t testing.TB) *pgx.Conn                  { return pgtest.Admin(t) }
func newDatabase(t testing.TB) (dbURL, name string) { return pgtest.NewDatabase(t) }
func withDatabase(t testing.TB, u, name string) string {
	return pgtest.WithDatabase(t, u, name)
}

// testLogger sends logs to t.Log and, when buf is not nil, to buf too.
func testLogger(t testing.TB, buf *testlog.Buffer) *slog.Logger {
	if buf == nil {
		return testlog.New(t, slog.LevelDebug)
	}
	return testlog.New(t, slog.LevelDebug, buf)
}

// openURL opens a store on dbURL, closed at cleanup. Tests use small pools:
// many run at once against one server.
func openURL(t testing.TB, dbURL string, opts postgres.Options) *postgres.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 4
	}
	s, err := postgres.Open(context.Background(), dbURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// open returns a migrated store on a new database.
func open(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dbURL, name := newDatabase(t)
	return openURL(t, dbURL, postgres.Options{}), name
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serverAddr is where the test PostgreSQL listens: a TCP address, or a
// Unix socket path when the admin URL uses one.
func serverAddr(t testing.TB) (network, addr string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(adminURL())
	if err != nil {
		t.Fatalf("CHRONICLE_TEST_DATABASE_URL: %v", err)
	}
	port := strconv.Itoa(int(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", cfg.Host + "/.s.PGSQL." + port
	}
	return "tcp", net.JoinHostPort(cfg.Host, port)
}

// viaAddr returns dbURL (a URL for the test server) with its host and port
// replaced by addr, a loopback TCP address.
func viaAddr(t testing.TB, dbURL, addr string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + cfg.Database, RawQuery: "sslmode=disable&connect_timeout=2"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// proxy forwards TCP connections from a loopback address to the test
// server, so a test can make the server appear later.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// startProxy listens on addr (retrying briefly: the port was free a moment
// ago) and forwards every connection to the test server.
func startProxy(t testing.TB, addr string) *proxy {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	network, target := serverAddr(t)
	p := &proxy{ln: ln}
	p.wg.Go(func() {
		for { // ends when Close closes the listener
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout(network, target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// eventually polls cond every 20ms until it is true or d has passed.
func eventually(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %v", what, d, err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
