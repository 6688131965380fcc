package outbound_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/outbound"
	"github.com/chronicle-audit/chronicle/routing"
)

var secret = []byte("0123456789abcdef01234567") // 24 bytes

// receiver is a webhook endpoint on loopback that checks every request's
// signature on its own (crypto/hmac, not package outbound's) and keeps
// what it accepted.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	// fail, when set, decides to refuse an attempt (by its webhook-id).
	fail     func(id string, attempt int) int
	attempts map[string]int
	batches  []received
}

type received struct {
	id      string
	ctype   string
	records []json.RawMessage
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	sec, err := strconv.ParseInt(ts, 10, 64)
	if sig != want || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute || id == "" {
		r.t.Errorf("bad signature: id %q timestamp %q signature %q, want %q", id, ts, sig, want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[id]++
	if r.fail != nil {
		if code := r.fail(id, r.attempts[id]); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		r.t.Errorf("body is not a JSON array: %v", err)
	}
	r.batches = append(r.batches, received{id: id, ctype: req.Header.Get("Content-Type"), records: recs})
}

func (r *receiver) snapshot() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func (r *receiver) count() int {
	n := 0
	for _, b := range r.snapshot() {
		n += len(b.records)
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storeMixed stores n events, a third each of security.*, user.* and
// billing.* types, and returns them in log order.
func storeMixed(t *testing.T, s chronicle.Store, n int) []*chronicle.Event {
	t.Helper()
	types := []string{"security.login", "user.created", "billing.charge"}
	var events []*chronicle.Event
	for i := range n {
		events = append(events, storetest.NewEvent(time.Duration(i)*time.Millisecond, func(e *chronicle.Event) {
			e.EventType = types[i%3]
			e.Action = strings.Split(types[i%3], ".")[1]
			e.ResourceID = fmt.Sprint(i)
			e.Metadata = map[string]string{"ip": "192.0.2.7", "i": fmt.Sprint(i)}
		}))
	}
	for chunk := range slices.Chunk(events, 100) {
		if err := s.StoreEvents(t.Context(), chunk); err != nil {
			t.Fatal(err)
		}
	}
	return events
}

func webhookSink(url, format, pattern string) *routing.Sink {
	return &routing.Sink{Name: "hook", Type: routing.SinkWebhook, URL: url, Secret: secret, Format: format, Pattern: pattern,
		BatchSize: 50, BatchWait: 20 * time.Millisecond, Timeout: 5 * time.Second,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
}

func start(t *testing.T, s outbound.Store, sinks ...*routing.Sink) *outbound.Manager {
	t.Helper()
	m, err := outbound.New(outbound.Config{Store: s, Sinks: sinks, Source: "chronicle.local/audit-log",
		PollInterval: 5 * time.Millisecond, Standby: 50 * time.Millisecond, Logger: testlog.Warn(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	return m
}

func cursor(t *testing.T, m *outbound.Manager) int64 {
	st, err := m.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st[0].Cursor
}

// TestWebhook: the events that match the pattern arrive in log order,
// signed, in batches of at most batch_size; a refused attempt is retried
// with the same webhook-id; the cursor ends at the log's end.
func TestWebhook(t *testing.T) {
	t.Parallel()
	s := memory.New()
	events := storeMixed(t, s, 600)
	rcv := newReceiver(t)
	rcv.fail = func(id string, attempt int) int {
		if attempt == 1 && strings.HasSuffix(id, "0") {
			return http.StatusInternalServerError
		}
		return 0
	}
	m := start(t, s, webhookSink(rcv.srv.URL, routing.FormatChronicle, "security.#"))
	var want []string
	for _, e := range events {
		if e.EventType == "security.login" {
			want = append(want, e.ID)
		}
	}
	eventually(t, "every security event", func() bool { return rcv.count() >= len(want) })
	eventually(t, "the cursor at the log's end", func() bool { return cursor(t, m) == int64(len(events)) })
	var got []string
	for _, b := range rcv.snapshot() {
		if len(b.records) > 50 || b.ctype != "application/json" {
			t.Errorf("batch %s: %d records, %s", b.id, len(b.records), b.ctype)
		}
		for _, rec := range b.records {
			var e chronicle.Event
			if err := json.Unmarshal(rec, &e); err != nil || e.Seq == nil {
				t.Fatalf("record %s: %v", rec, err)
			}
			got = append(got, e.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("received %d events, want the %d security events in log order", len(got), len(want))
	}
	rcv.mu.Lock()
	retried := 0
	for id, n := range rcv.attempts {
		if strings.HasSuffix(id, "0") && n != 2 {
			t.Errorf("batch %s: %d attempts, want 2 (the same id on the retry)", id, n)
		}
		if n > 1 {
			retried++
		}
	}
	rcv.mu.Unlock()
	st, _ := m.Status(t.Context())
	if st[0].Failures != uint64(retried) || st[0].Delivered != uint64(len(want)) || st[0].Lag != 0 || st[0].Status != "delivering" {
		t.Errorf("status = %+v; want %d failures, %d delivered, lag 0", st[0], retried, len(want))
	}
}

// TestRetryAfter: a 429 with Retry-After holds the next attempt back for
// as long as it says, whatever the backoff.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	s := memory.New()
	storeMixed(t, s, 3)
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	start(t, s, webhookSink(srv.URL, routing.FormatChronicle, "#"))
	eventually(t, "a second attempt", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

// TestCloudEvents validates every CloudEvent sent against the CloudEvents
// 1.0 JSON schema (testdata/cloudevents/spec.json, the specification's).
func TestCloudEvents(t *testing.T) {
	t.Parallel()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	f, err := os.Open("testdata/cloudevents/spec.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("spec.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("spec.json")
	if err != nil {
		t.Fatal(err)
	}
	// The schema must be able to fail.
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"specversion":"1.0","id":"x","type":"t","source":"a b:c","time":"yesterday"}`))
	if schema.Validate(bad) == nil {
		t.Fatal("the schema accepts an event with a bad source and time")
	}

	s := memory.New()
	events := storeMixed(t, s, 60)
	rcv := newReceiver(t)
	start(t, s, webhookSink(rcv.srv.URL, routing.FormatCloudEvents, "#"))
	eventually(t, "every event", func() bool { return rcv.count() >= len(events) })
	i := 0
	for _, b := range rcv.snapshot() {
		if b.ctype != "application/cloudevents-batch+json" {
			t.Errorf("Content-Type %q", b.ctype)
		}
		for _, rec := range b.records {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(v); err != nil {
				t.Fatalf("CloudEvent %s: %v", rec, err)
			}
			var ce struct {
				SpecVersion, ID, Source, Type, Subject, Sequence string
				Data                                             chronicle.Event
			}
			json.Unmarshal(rec, &ce)
			e := events[i]
			if ce.SpecVersion != "1.0" || ce.ID != e.ID || ce.Type != e.EventType || ce.Source != "chronicle.local/audit-log" ||
				ce.Subject != e.ResourceType+"/"+e.ResourceID || ce.Sequence != fmt.Sprint(i) || ce.Data.ID != e.ID || ce.Data.Actor != e.Actor {
				t.Fatalf("CloudEvent %s does not map event %+v", rec, e)
			}
			i++
		}
	}
}

// TestOCSF checks that every OCSF event has the attributes API Activity
// (class 6003) requires, and the mapping.
func TestOCSF(t *testing.T) {
	t.Parallel()
	s := memory.New()
	events := storeMixed(t, s, 30)
	rcv := newReceiver(t)
	start(t, s, webhookSink(rcv.srv.URL, routing.FormatOCSF, "#"))
	eventually(t, "every event", func() bool { return rcv.count() >= len(events) })
	i := 0
	for _, b := range rcv.snapshot() {
		for _, rec := range b.records {
			var o map[string]any
			if err := json.Unmarshal(rec, &o); err != nil {
				t.Fatal(err)
			}
			// Required by the base event and by API Activity.
			for _, attr := range []string{"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time", "metadata", "actor", "api", "src_endpoint"} {
				if _, ok := o[attr]; !ok {
					t.Fatalf("OCSF event lacks required %s: %s", attr, rec)
				}
			}
			var got outbound.OCSFEvent
			json.Unmarshal(rec, &got)
			e := events[i]
			wantActivity := map[string]int{"login": 99, "created": 1, "charge": 99}[e.Action]
			if got.ClassUID != 6003 || got.CategoryUID != 6 || got.ActivityID != wantActivity || got.TypeUID != 600300+wantActivity ||
				got.SeverityID != 1 || got.Time != e.Timestamp.UnixMilli() || got.Metadata.Version != outbound.OCSFVersion ||
				got.Metadata.Product.Name != "Chronicle" || got.Metadata.UID != e.ID || got.Actor.User.Name != e.Actor ||
				got.API.Operation != e.Action || got.SrcEndpoint["ip"] != "192.0.2.7" ||
				len(got.Resources) != 1 || got.Resources[0].UID != e.ResourceID || got.Unmapped["seq"] != float64(i) {
				t.Fatalf("OCSF %s does not map event %+v", rec, e)
			}
			i++
		}
	}
}

// TestReplay: a replay sends the range again with new webhook ids, before
// new events, and leaves the cursor where it was.
func TestReplay(t *testing.T) {
	t.Parallel()
	s := memory.New()
	events := storeMixed(t, s, 100)
	rcv := newReceiver(t)
	m := start(t, s, webhookSink(rcv.srv.URL, routing.FormatChronicle, "#"))
	eventually(t, "every event", func() bool { return rcv.count() >= 100 })
	eventually(t, "the cursor at 100", func() bool { return cursor(t, m) == 100 })
	to := int64(500)
	out, err := m.Replay(t.Context(), "hook", 10, &to)
	if err != nil || out.From != 10 || out.To != 100 || out.Cursor != 100 {
		t.Fatalf("Replay = %+v, %v; want 10 to 100 (cut at the cursor)", out, err)
	}
	eventually(t, "the replay", func() bool { return rcv.count() >= 190 })
	var replayed []string
	for _, b := range rcv.snapshot() {
		if !strings.Contains(b.id, "_replay_") {
			continue
		}
		for _, rec := range b.records {
			var e chronicle.Event
			json.Unmarshal(rec, &e)
			replayed = append(replayed, e.ID)
		}
	}
	var want []string
	for _, e := range events[10:] {
		want = append(want, e.ID)
	}
	if !slices.Equal(replayed, want) {
		t.Fatalf("replayed %d events, want seq 10 to 99 in order", len(replayed))
	}
	if c := cursor(t, m); c != 100 {
		t.Fatalf("cursor after replay = %d, want 100", c)
	}
	for _, bad := range [][2]int64{{-1, 5}, {5, 5}} {
		if _, err := m.Replay(t.Context(), "hook", bad[0], &bad[1]); err == nil {
			t.Errorf("Replay(%d, %d) accepted", bad[0], bad[1])
		}
	}
	if _, err := m.Replay(t.Context(), "nope", 0, nil); err == nil {
		t.Error("Replay of an unknown sink accepted")
	}
}

// TestOneDeliverer: two managers on one store (as two processes on one
// database): one delivers, the other stands by, nothing is sent twice.
func TestOneDeliverer(t *testing.T) {
	t.Parallel()
	s := memory.New()
	storeMixed(t, s, 300)
	rcv := newReceiver(t)
	a := start(t, s, webhookSink(rcv.srv.URL, routing.FormatChronicle, "#"))
	b := start(t, s, webhookSink(rcv.srv.URL, routing.FormatChronicle, "#"))
	eventually(t, "every event", func() bool { return rcv.count() >= 300 })
	time.Sleep(200 * time.Millisecond)
	if n := rcv.count(); n != 300 {
		t.Fatalf("received %d events, want 300 exactly", n)
	}
	sa, _ := a.Status(t.Context())
	sb, _ := b.Status(t.Context())
	if statuses := []string{sa[0].Status, sb[0].Status}; !slices.Contains(statuses, "standby") || !slices.Contains(statuses, "delivering") {
		t.Fatalf("statuses %v, want one delivering and one standby", statuses)
	}
}

// TestFileSink: NDJSON files, rotated by size, closed on stop, named in
// delivery order; a ".part" a crash left is cut after its last whole line
// and closed at the next start, and numbering goes on after it.
func TestFileSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// What a crash left: a file being written, its last line torn.
	crashed := filepath.Join(dir, "archive-000000000007.ndjson.part")
	if err := os.WriteFile(crashed, []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := memory.New()
	events := storeMixed(t, s, 500)
	sink := &routing.Sink{Name: "archive", Type: routing.SinkFile, Path: dir, Format: routing.FormatChronicle, Pattern: "#",
		BatchSize: 40, BatchWait: 10 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		RotateBytes: 32 << 10, RotateEvery: time.Hour}
	m := start(t, s, sink)
	eventually(t, "the cursor at 500", func() bool { return cursor(t, m) == 500 })
	if err := m.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "archive-000000000007.ndjson")); err != nil || string(b) != "{\"id\":\"a\"}\n{\"id\":\"b\"}\n" {
		t.Fatalf("the crashed file = %q, %v; want its two whole lines, closed", b, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	var ids []string
	for _, e := range entries {
		names = append(names, e.Name())
		if e.Name() == "archive-000000000007.ndjson" {
			continue
		}
		if !strings.HasSuffix(e.Name(), ".ndjson") {
			t.Fatalf("file %s left open after stop", e.Name())
		}
		info, _ := e.Info()
		if info.Size() > 32<<10 || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %d bytes, mode %v", e.Name(), info.Size(), info.Mode().Perm())
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
			var ev chronicle.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: line %q: %v", e.Name(), line, err)
			}
			ids = append(ids, ev.ID)
		}
	}
	if len(names) < 4 || names[1] != "archive-000000000008.ndjson" {
		t.Fatalf("files %v: want several, numbered from 8 (after the crashed 7)", names)
	}
	var want []string
	for _, e := range events {
		want = append(want, e.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("the files hold %d events, want the 500 in log order", len(ids))
	}
}

// TestFileSinkRotateEvery: a file is closed rotate_every after it was
// started, though the sink is idle and the file small.
func TestFileSinkRotateEvery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := memory.New()
	storeMixed(t, s, 10)
	sink := &routing.Sink{Name: "archive", Type: routing.SinkFile, Path: dir, Format: routing.FormatOCSF, Pattern: "#",
		BatchSize: 100, BatchWait: time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		RotateBytes: 1 << 20, RotateEvery: 200 * time.Millisecond}
	start(t, s, sink)
	final := filepath.Join(dir, "archive-000000000001.ndjson")
	eventually(t, "the file closed by time", func() bool { _, err := os.Stat(final); return err == nil })
	data, err := os.ReadFile(final)
	if err != nil || strings.Count(string(data), "\n") != 10 {
		t.Fatalf("%s: %d lines, %v; want the 10 events", final, strings.Count(string(data), "\n"), err)
	}
	if _, err := os.Stat(final + ".part"); err == nil {
		t.Fatal("the closed file is still there as .part")
	}
	storeMixed(t, s, 5)
	eventually(t, "a second file", func() bool {
		_, err := os.Stat(filepath.Join(dir, "archive-000000000002.ndjson"))
		return err == nil
	})
}

// TestRedirectIsAFailure: a receiver that redirects has not received the
// batch; the sink does not follow it and keeps retrying.
func TestRedirectIsAFailure(t *testing.T) {
	t.Parallel()
	s := memory.New()
	storeMixed(t, s, 3)
	var mu sync.Mutex
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		methods = append(methods, r.Method+" "+r.URL.Path)
		if r.URL.Path == "/hook" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	m := start(t, s, webhookSink(srv.URL+"/hook", routing.FormatChronicle, "#"))
	eventually(t, "three attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(methods) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	for _, got := range methods {
		if got != "POST /hook" {
			t.Fatalf("requests %v: the redirect was followed", methods)
		}
	}
	st, _ := m.Status(t.Context())
	if st[0].Cursor != 0 || st[0].Status != "failing" || !strings.Contains(st[0].LastError, "302 Found") {
		t.Fatalf("status %+v; want failing at cursor 0 with the 302", st[0])
	}
}
