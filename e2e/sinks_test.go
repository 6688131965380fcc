package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/routing"
)

// The outbound sinks of a real process, delivering to real HTTP receivers
// on loopback and to real files.

const (
	sinkSecretRaw = "whsec_c2lua3Mtc2lnbmluZy1zZWNyZXQtZm9yLXRlc3Rz"
	sinkSecret    = "sinks-signing-secret-for-tests" // its base64 decoded
)

// sinkConfig writes the built-in routing file plus sinks to a file.
func sinkConfig(t *testing.T, sinks string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chronicle.toml")
	if err := os.WriteFile(path, append(routing.DefaultTOML(), []byte("\n"+sinks)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hookRecord is one event as a chronicle-format webhook batch holds it.
type hookRecord struct {
	ID  string `json:"id"`
	Seq int64  `json:"seq"`
}

// hookReceiver is a webhook receiver that checks each request's Standard
// Webhooks signature itself (crypto/hmac over "id.timestamp.body") and can
// misbehave: answer 500, hang past the sink's timeout, drop the
// connection, or answer 429 with Retry-After.
type hookReceiver struct {
	t     *testing.T
	srv   *httptest.Server
	chaos func() string // "", "500", "hang", "drop" or "429"
	delay time.Duration

	mu       sync.Mutex
	accepted []acceptedBatch // in arrival order
	// unknown: attempts whose outcome the sender could not know (it got
	// no answer, yet the receiver had the batch): their records may
	// arrive twice.
	unknown     int
	failures    int
	failedIDs   map[string]bool
	badRequests int
}

type acceptedBatch struct {
	id      string
	records []hookRecord
}

func newHookReceiver(t *testing.T, chaos func() string) *hookReceiver {
	h := &hookReceiver{t: t, chaos: chaos, failedIDs: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, []byte(sinkSecret))
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if sig != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) || id == "" || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		h.mu.Lock()
		h.badRequests++
		h.mu.Unlock()
		h.t.Errorf("request %q: bad signature %q (timestamp %q)", id, sig, ts)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var recs []hookRecord
	if err := json.Unmarshal(body, &recs); err != nil {
		h.t.Errorf("request %q: body is not a JSON array of events: %v", id, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	what := ""
	if h.chaos != nil {
		what = h.chaos()
	}
	h.mu.Lock()
	switch what {
	case "500", "429":
		h.failures++
		h.failedIDs[id] = true
	case "hang", "drop": // the batch arrived, the answer does not
		h.failures++
		h.failedIDs[id] = true
		h.unknown += len(recs)
		h.accepted = append(h.accepted, acceptedBatch{id: id, records: recs})
	default:
		h.accepted = append(h.accepted, acceptedBatch{id: id, records: recs})
	}
	h.mu.Unlock()
	switch what {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
	case "429":
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case "hang":
		time.Sleep(1500 * time.Millisecond) // past the sink's timeout (500ms)
	case "drop":
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}
}

// seqs returns every record received, in arrival order.
func (h *hookReceiver) seqs() []hookRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRecord
	for _, b := range h.accepted {
		out = append(out, b.records...)
	}
	return out
}

// distinct counts the distinct seqs received.
func (h *hookReceiver) distinct() int {
	seen := map[int64]bool{}
	for _, r := range h.seqs() {
		seen[r.Seq] = true
	}
	return len(seen)
}

// checkOrder checks that the records arrived in log order with no gap:
// each batch starts at most one past the highest seq seen before it (a
// lower start is a batch sent again), and counts the records that arrived
// again.
func (h *hookReceiver) checkOrder(t *testing.T) (duplicates int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	high := int64(-1)
	for _, b := range h.accepted {
		for i, r := range b.records {
			switch {
			case i > 0 && r.Seq <= b.records[i-1].Seq:
				t.Fatalf("batch %s is not in seq order at %d", b.id, r.Seq)
			case r.Seq > high+1:
				t.Fatalf("gap: seq %d arrived after %d (batch %s)", r.Seq, high, b.id)
			case r.Seq <= high:
				duplicates++
			default:
				high = r.Seq
			}
		}
	}
	return duplicates
}

// postBatches stores n events through POST /events batches of 1000.
func postBatches(t *testing.T, p *proc, n int) {
	t.Helper()
	for done := 0; done < n; {
		size := min(1000, n-done)
		var b strings.Builder
		b.WriteByte('[')
		for i := range size {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"s-%d"}`, done+i)
		}
		b.WriteByte(']')
		r, err := p.try("POST", "/events", b.String())
		if err != nil || r.Status == 503 || r.Status == 429 {
			time.Sleep(100 * time.Millisecond) // full queues: send it again
			continue
		}
		r.expect(t, 202, `"accepted":`+strconv.Itoa(size))
		done += size
	}
}

func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(string(p.do("GET", "/metrics", "").Body)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestSinkFloodThroughChaos: 20,000 events to a receiver that fails a
// third of the requests in every way it can: every event arrives, in
// order, signed; duplicates are exactly the batches whose answer was
// lost; Chronicle counts every failure.
func TestSinkFloodThroughChaos(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("chaos seed %d", seed)
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 7))
	kinds := map[string]int{}
	calls := 0
	h := newHookReceiver(t, func() string {
		rmu.Lock()
		defer rmu.Unlock()
		calls++
		x := rng.Float64()
		what := ""
		switch {
		case calls <= 8 && calls%2 == 0: // each kind at least once
			what = []string{"500", "drop", "hang", "429"}[calls/2-1]
		case x < 0.15:
			what = "500"
		case x < 0.23:
			what = "drop"
		case x < 0.27:
			what = "hang"
		case x < 0.30:
			what = "429"
		}
		kinds[what]++
		return what
	})
	cfg := sinkConfig(t, fmt.Sprintf(`
[[sinks]]
name = "siem"
type = "webhook"
url = "%s/hook?token=abc"
secret_env = "SIEM_SECRET"
batch_size = 200
batch_wait = "50ms"
timeout = "500ms"
backoff_min = "10ms"
backoff_max = "200ms"
`, h.srv.URL))
	p := serve(t, map[string]string{"CHRONICLE_CONFIG": cfg, "SIEM_SECRET": sinkSecretRaw})
	const n = 20000
	postBatches(t, p, n)
	eventually(t, 90*time.Second, "every event at the receiver", func() bool { return h.distinct() >= n })
	eventually(t, 10*time.Second, "the cursor at the log's end", func() bool {
		var sinks []struct{ Cursor, Lag int64 }
		p.do("GET", "/sinks", "").json(t, &sinks)
		return sinks[0].Cursor == n && sinks[0].Lag == 0
	})
	dups := h.checkOrder(t)
	distinct := h.distinct()
	h.mu.Lock()
	defer h.mu.Unlock()
	rmu.Lock()
	defer rmu.Unlock()
	t.Logf("requests by outcome %v; %d duplicates; %d failures", kinds, dups, h.failures)
	if kinds["500"] == 0 || kinds["drop"] == 0 || kinds["hang"] == 0 || kinds["429"] == 0 {
		t.Fatalf("not every kind of failure happened: %v", kinds)
	}
	if distinct != n || dups != h.unknown {
		t.Fatalf("%d distinct events, %d duplicates; want %d, and as many duplicates as records whose answer was lost (%d)", distinct, dups, n, h.unknown)
	}
	for id := range h.failedIDs {
		if !slices.ContainsFunc(h.accepted, func(b acceptedBatch) bool { return b.id == id }) {
			t.Errorf("batch %s failed and was never accepted under the same webhook-id", id)
		}
	}
	if got := metricValue(t, p, `chronicle_sink_delivery_failures_total{sink="siem"}`); int(got) != h.failures {
		t.Errorf("chronicle_sink_delivery_failures_total = %v, the receiver failed %d requests", got, h.failures)
	}
	if got := metricValue(t, p, `chronicle_sink_events_delivered_total{sink="siem"}`); got != n {
		t.Errorf("chronicle_sink_events_delivered_total = %v, want %d", got, n)
	}
	if strings.Contains(p.stderr.String(), "c2lua3M") || strings.Contains(p.stderr.String(), "token=abc") {
		t.Error("the log shows the signing secret or the URL's query")
	}
	if !strings.Contains(p.stderr.String(), "sink: delivery failed; retrying") {
		t.Error("the failures are not logged")
	}
	checkMetrics(t, p)
}

// TestSinkKill9: kill -9 in the middle of delivery, restart on the same
// file: delivery resumes from the stored cursor, nothing is missing, and
// at most the batches in flight arrive twice.
func TestSinkKill9(t *testing.T) {
	t.Parallel()
	h := newHookReceiver(t, nil)
	h.delay = 30 * time.Millisecond
	cfg := sinkConfig(t, fmt.Sprintf(`
[[sinks]]
name = "siem"
type = "webhook"
url = "%s/hook"
secret_env = "SIEM_SECRET"
pattern = "security.#"
batch_size = 50
batch_wait = "10ms"
`, h.srv.URL))
	env := map[string]string{"CHRONICLE_CONFIG": cfg, "SIEM_SECRET": sinkSecretRaw,
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db")}
	p := serve(t, env)
	const n = 5000
	postBatches(t, p, n)
	// The user event must come after every security event in the log
	// (seq is store order, not request order), so that the security
	// events' seqs are 0..n-1 with no gap for the receiver to see.
	eventually(t, 60*time.Second, "every security event stored", func() bool {
		var c struct{ Count int64 }
		p.do("GET", "/events/count", "").json(t, &c)
		return c.Count >= n
	})
	p.do("POST", "/events", `{"actor":"bob","action":"created","resource_type":"user","resource_id":"u1"}`).expect(t, 202, "accepted")
	eventually(t, 30*time.Second, "some events delivered", func() bool { return h.distinct() >= 1000 })
	p.stop(syscall.SIGKILL, 10*time.Second)
	before := h.distinct()
	if before >= n {
		t.Fatalf("everything was delivered before the kill (%d)", before)
	}
	env["CHRONICLE_PORT"] = strconv.Itoa(freePort(t))
	p2 := serve(t, env)
	eventually(t, 60*time.Second, "every security event after the restart", func() bool { return h.distinct() >= n })
	dups := h.checkOrder(t)
	if dups > 2*50 {
		t.Errorf("%d duplicates: more than the batches in flight at the kill", dups)
	}
	for _, r := range h.seqs() {
		if r.Seq >= n {
			t.Fatalf("seq %d (a user event) was delivered to a security.# sink", r.Seq)
		}
	}
	t.Logf("%d events delivered before kill -9, %d duplicates after the restart", before, dups)
	var health struct {
		Sinks []struct{ Name, Status string }
	}
	p2.do("GET", "/health", "").json(t, &health)
	if len(health.Sinks) != 1 || health.Sinks[0].Name != "siem" {
		t.Errorf("/health sinks = %+v", health.Sinks)
	}
}

// TestSinkFailingIsVisible: a receiver that is down leaves /health 200,
// shows the sink failing there, in GET /sinks and in `chronicle sinks`;
// a replay sends a range again without moving the cursor.
func TestSinkFailingIsVisible(t *testing.T) {
	t.Parallel()
	var down sync.Mutex
	isDown := true
	h := newHookReceiver(t, func() string {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return "500"
		}
		return ""
	})
	cfg := sinkConfig(t, fmt.Sprintf(`
[[sinks]]
name = "siem"
type = "webhook"
url = "%s/hook"
secret_env = "SIEM_SECRET"
format = "chronicle"
batch_wait = "10ms"
backoff_min = "10ms"
backoff_max = "100ms"
`, h.srv.URL))
	p := serve(t, map[string]string{"CHRONICLE_CONFIG": cfg, "SIEM_SECRET": sinkSecretRaw})
	postBatches(t, p, 30)
	eventually(t, 10*time.Second, "the sink failing in /health", func() bool {
		r := p.do("GET", "/health", "")
		return r.Status == 200 && strings.Contains(string(r.Body), `"status":"failing"`) && strings.Contains(string(r.Body), "500 Internal Server Error")
	})
	out := runCLI(t, 0, "sinks", "--url", p.url)
	if !strings.Contains(out, "siem") || !strings.Contains(out, "failing") || !strings.Contains(out, "500 Internal Server Error") {
		t.Fatalf("chronicle sinks:\n%s", out)
	}
	down.Lock()
	isDown = false
	down.Unlock()
	eventually(t, 10*time.Second, "delivery after the receiver is back", func() bool { return h.distinct() == 30 })
	eventually(t, 10*time.Second, "the cursor at 30", func() bool { return strings.Contains(runCLI(t, 0, "sinks", "--url", p.url), "delivering") })
	out = runCLI(t, 0, "sinks", "replay", "siem", "--from", "10", "--to", "20", "--url", p.url)
	if !strings.Contains(out, "will send seq 10 to 19 again") || !strings.Contains(out, "cursor stays at 30") {
		t.Fatalf("chronicle sinks replay:\n%s", out)
	}
	eventually(t, 10*time.Second, "the replay", func() bool { return len(h.seqs()) == 40 })
	var sinks []struct{ Cursor int64 }
	p.do("GET", "/sinks", "").json(t, &sinks)
	if sinks[0].Cursor != 30 {
		t.Fatalf("cursor after the replay = %d, want 30", sinks[0].Cursor)
	}
	runCLI(t, 2, "sinks", "replay", "siem", "--url", p.url)
	if out := runCLI(t, 1, "sinks", "replay", "ghost", "--from", "0", "--url", p.url); !strings.Contains(out, `no sink named "ghost"`) {
		t.Fatalf("replay of an unknown sink: %s", out)
	}
}

// TestFileSinkProcess: a file sink of a real process: NDJSON files that
// hold every matching event once, in log order, closed at SIGTERM.
func TestFileSinkProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	cfg := sinkConfig(t, fmt.Sprintf(`
[[sinks]]
name = "archive"
type = "file"
path = %q
format = "cloudevents"
batch_size = 50
batch_wait = "20ms"
rotate_bytes = 65536
`, dir))
	p := serve(t, map[string]string{"CHRONICLE_CONFIG": cfg})
	postBatches(t, p, 3000)
	eventually(t, 30*time.Second, "the cursor at 3000", func() bool {
		var sinks []struct{ Cursor int64 }
		p.do("GET", "/sinks", "").json(t, &sinks)
		return sinks[0].Cursor == 3000
	})
	if code := p.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".ndjson") || !strings.HasPrefix(e.Name(), "archive-") {
			t.Fatalf("unexpected file %s (left open?)", e.Name())
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if len(data) > 65536 {
			t.Errorf("%s is %d bytes, past rotate_bytes", e.Name(), len(data))
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
			var ce struct {
				SpecVersion string `json:"specversion"`
				Sequence    string `json:"sequence"`
			}
			if err := json.Unmarshal([]byte(line), &ce); err != nil || ce.SpecVersion != "1.0" {
				t.Fatalf("%s: %q: %v", e.Name(), line, err)
			}
			if ce.Sequence != strconv.FormatInt(next, 10) {
				t.Fatalf("%s: sequence %s, want %d", e.Name(), ce.Sequence, next)
			}
			next++
		}
	}
	if next != 3000 || len(entries) < 10 {
		t.Fatalf("%d events in %d files; want 3000, rotated", next, len(entries))
	}
}

// TestSinkConfigRefused: a bad sink stops start-up (exit 2) with the file,
// the sink and the field named, and never the secret.
func TestSinkConfigRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ sinks, env, want string }{
		{"[[sinks]]\nname = \"siem\"\ntype = \"kafka\"\n", "", `sinks[0] (siem): type "kafka" is not webhook or file`},
		{"[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\nsecret_env = \"SIEM_SECRET\"\n", "",
			"sinks[0] (siem): secret_env: the environment variable SIEM_SECRET is not set"},
		{"[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"https://x.example/\"\nsecret_env = \"SIEM_SECRET\"\n", "not-a-whsec-secret-at-all",
			`sinks[0] (siem): secret_env: SIEM_SECRET must start with "whsec_"`},
		{"[[sinks]]\nname = \"archive\"\ntype = \"file\"\nformat = \"xml\"\n", "", `sinks[0] (archive): path is required`},
	} {
		cfg := sinkConfig(t, tt.sinks)
		env := map[string]string{"CHRONICLE_CONFIG": cfg, "CHRONICLE_PORT": strconv.Itoa(freePort(t))}
		if tt.env != "" {
			env["SIEM_SECRET"] = tt.env
		}
		p := run(t, env, "serve")
		if code := p.wait(10 * time.Second); code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.sinks, code)
		}
		stderr := p.stderr.String()
		if !strings.Contains(stderr, cfg) || !strings.Contains(stderr, tt.want) || (tt.env != "" && strings.Contains(stderr, tt.env)) {
			t.Errorf("stderr %q does not name %s and %q (or shows the secret)", stderr, cfg, tt.want)
		}
	}
}

// TestSinkPostgresOneDeliverer: two processes on one PostgreSQL database
// run the same sink: one delivers it (it holds the sink's advisory lock),
// the other stands by, nothing arrives twice; kill -9 the deliverer and
// the other takes over from the cursor.
func TestSinkPostgresOneDeliverer(t *testing.T) {
	t.Parallel()
	h := newHookReceiver(t, nil)
	cfg := sinkConfig(t, fmt.Sprintf(`
[[sinks]]
name = "siem"
type = "webhook"
url = "%s/hook"
secret_env = "SIEM_SECRET"
batch_size = 100
batch_wait = "20ms"
`, h.srv.URL))
	c := newPGCluster(t)
	env := c.with("CHRONICLE_CONFIG", cfg, "SIEM_SECRET", sinkSecretRaw)
	a := serve(t, env)
	b := serve(t, env)
	postBatches(t, a, 2000)
	eventually(t, 60*time.Second, "2000 events at the receiver", func() bool { return h.distinct() >= 2000 })
	status := func(p *proc) string {
		var sinks []struct{ Status string }
		p.do("GET", "/sinks", "").json(t, &sinks)
		return sinks[0].Status
	}
	var deliverer, standby *proc
	eventually(t, 10*time.Second, "one deliverer and one standby", func() bool {
		sa, sb := status(a), status(b)
		switch {
		case sa == "delivering" && sb == "standby":
			deliverer, standby = a, b
		case sb == "delivering" && sa == "standby":
			deliverer, standby = b, a
		}
		return deliverer != nil
	})
	if dups := h.checkOrder(t); dups != 0 {
		t.Fatalf("%d duplicates with two processes and no failure", dups)
	}
	deliverer.stop(syscall.SIGKILL, 10*time.Second)
	postBatches(t, standby, 1000)
	eventually(t, 60*time.Second, "3000 events after the take-over", func() bool { return h.distinct() >= 3000 })
	dups := h.checkOrder(t)
	if dups > 100 {
		t.Fatalf("%d duplicates after the take-over: more than a batch", dups)
	}
	if s := status(standby); s != "delivering" {
		t.Fatalf("the survivor's sink is %s", s)
	}
	t.Logf("take-over after kill -9: %d duplicates", dups)
}
