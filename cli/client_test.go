package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/service"
)

// liveService is a real Chronicle (SQLite file, in-process transport)
// started in this process on a free loopback port for one test.
type liveService struct {
	url  string
	ep   *service.Service
	once sync.Once
}

// startLiveService starts a service of its own for t and stops it when t
// ends.
func startLiveService(t *testing.T) *liveService {
	t.Helper()
	vars := map[string]string{
		"CHRONICLE_PORT":        "0",
		"CHRONICLE_LISTEN_HOST": "127.0.0.1",
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db"),
		// The log's signing key, generated at start, stays out of the tree.
		"CHRONICLE_SIGNING_KEY_FILE": filepath.Join(t.TempDir(), "chronicle.key"),
	}
	cfg, err := config.FromEnv(mapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testLogWriter{t: t}
	t.Cleanup(logs.stop) // runs after the service's Close below
	ep := service.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	s := &liveService{ep: ep}
	if err := ep.Open(context.Background()); err != nil {
		s.stop(t)
		t.Fatal(err)
	}
	s.url = "http://" + ep.Addr()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop closes the service; later calls do nothing.
func (s *liveService) stop(t *testing.T) {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.ep.Close(ctx); err != nil {
			t.Errorf("close service: %v", err)
		}
	})
}

// vars is the environment a command run against s sees.
func (s *liveService) vars() map[string]string { return map[string]string{"CHRONICLE_URL": s.url} }

// testLogWriter sends the service's logs to t.Log until the test ends.
type testLogWriter struct {
	t       *testing.T
	stopped atomic.Bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	if !w.stopped.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() { w.stopped.Store(true) }

func mapLookup(vars map[string]string) config.Lookup {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// cliRun is what one command printed and returned.
type cliRun struct {
	code           int
	stdout, stderr string
}

// execCLI runs `chronicle args...` through Main with vars as the whole
// environment, bounded in time.
func execCLI(t *testing.T, vars map[string]string, args ...string) cliRun {
	return execCLITerminal(t, vars, false, args...)
}

func execCLITerminal(t *testing.T, vars map[string]string, tty bool, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, args, &Env{Stdout: &stdout, Stderr: &stderr, LookupEnv: mapLookup(vars), IsTerminal: tty})
	return cliRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// expect fails t unless the command exited with code.
func (r cliRun) expect(t *testing.T, code int) cliRun {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (r cliRun) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not the expected JSON: %v\n%s", err, r.stdout)
	}
}

// storedEvent is an event as GET /events returns it, read by the tests
// with their own client so they do not rely on the code under test.
type storedEvent struct {
	ID           string            `json:"id"`
	Actor        string            `json:"actor"`
	Action       string            `json:"action"`
	ResourceType string            `json:"resource_type"`
	ResourceID   string            `json:"resource_id"`
	EventType    string            `json:"event_type"`
	EntityKey    string            `json:"entity_key"`
	Timestamp    string            `json:"timestamp"`
	Metadata     map[string]string `json:"metadata"`
}

var testHTTP = &http.Client{Timeout: 10 * time.Second}

// storedEvents pages through every event of the service.
func (s *liveService) storedEvents(t *testing.T) []storedEvent {
	t.Helper()
	var out []storedEvent
	next := "/events?limit=1000"
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		resp, err := testHTTP.Get(s.url + next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
		}
		var page []storedEvent
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		next = strings.TrimSuffix(strings.TrimPrefix(resp.Header.Get("Link"), "<"), `>; rel="next"`)
	}
	return out
}

// waitStored waits until the service has stored at least n events (202
// means queued; consumers store shortly after) and returns them all.
func (s *liveService) waitStored(t *testing.T, n int) []storedEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs := s.storedEvents(t)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored after 20s, want %d", len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeService answers every request with handler, for answers a real
// service cannot be made to give on demand (503 health, mixed refusals).
func fakeService(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientErrors(t *testing.T) {
	t.Parallel()

	t.Run("StoppedService", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		execCLI(t, s.vars(), "post").expect(t, ExitOK)
		s.stop(t)
		for _, args := range [][]string{{"post"}, {"ingest"}, {"send", "--type", "user"}, {"events"}, {"health"}, {"flood", "3"}} {
			r := execCLI(t, s.vars(), args...).expect(t, ExitFailure)
			if !strings.Contains(r.stderr, "cannot reach Chronicle at "+s.url) {
				t.Errorf("%v: stderr %q does not say the service cannot be reached", args, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("%v: stderr looks like a crash:\n%s", args, r.stderr)
			}
		}
	})

	t.Run("ErrBadURL", func(t *testing.T) {
		t.Parallel()
		r := execCLI(t, nil, "post", "--url", "ftp://example.com").expect(t, ExitUsage)
		if !strings.Contains(r.stderr, "--url") {
			t.Errorf("stderr %q does not name --url", r.stderr)
		}
		r = execCLI(t, map[string]string{"CHRONICLE_URL": "http://"}, "health").expect(t, ExitUsage)
		if !strings.Contains(r.stderr, "CHRONICLE_URL") {
			t.Errorf("stderr %q does not name CHRONICLE_URL", r.stderr)
		}
	})

	t.Run("URLFlagOverridesVariable", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		vars := map[string]string{"CHRONICLE_URL": "http://127.0.0.1:1"}
		execCLI(t, vars, "health", "--url", strings.TrimPrefix(s.url, "http://")).expect(t, ExitOK)
	})

	t.Run("ErrorAnswer", func(t *testing.T) {
		t.Parallel()
		url := fakeService(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/events" && r.Method == "GET" {
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html><body>Bad gateway</body></html>")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not found: /events"}`)
		})
		r := execCLI(t, nil, "post", "--url", url).expect(t, ExitFailure)
		if !strings.Contains(r.stderr, "404 Not Found: not found: /events") {
			t.Errorf("stderr %q does not carry the status and the service's error", r.stderr)
		}
		r = execCLI(t, nil, "events", "--url", url).expect(t, ExitFailure)
		if !strings.Contains(r.stderr, "502 Bad Gateway: <html><body>Bad gateway</body></html>") {
			t.Errorf("stderr %q does not carry a non-JSON error body", r.stderr)
		}
	})

	t.Run("APIKey", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var got []string
		url := fakeService(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"status":"accepted","id":"x"}`)
		})
		execCLI(t, nil, "post", "--url", url).expect(t, ExitOK)
		execCLI(t, map[string]string{"CHRONICLE_API_KEY": "from-env"}, "post", "--url", url).expect(t, ExitOK)
		execCLI(t, map[string]string{"CHRONICLE_API_KEY": "from-env"}, "post", "--url", url, "--api-key", "from-flag").expect(t, ExitOK)
		mu.Lock()
		defer mu.Unlock()
		want := []string{"", "Bearer from-env", "Bearer from-flag"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Authorization headers %q, want %q", got, want)
		}
	})

	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		for _, cmd := range []string{"post", "ingest", "send", "flood", "events", "health", "info", "routes", "consumers"} {
			r := execCLI(t, nil, cmd, "-h").expect(t, ExitOK)
			if !strings.Contains(r.stderr, "usage: chronicle "+cmd) {
				t.Errorf("%s -h: %q", cmd, r.stderr)
			}
		}
	})
}
