package httpapi_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/internal/storetest"
)

// storeEvents stores n events straight into the bundle's store, actors
// taking turns, and returns them.
func storeEvents(t *testing.T, b *bundle, n int) []*chronicle.Event {
	t.Helper()
	events := make([]*chronicle.Event, n)
	for i := range events {
		events[i] = storetest.NewEvent(time.Duration(i)*time.Millisecond, func(e *chronicle.Event) {
			e.Actor = []string{"alice@example.com", "bob@example.com"}[i%2]
			e.Metadata = map[string]string{"n": fmt.Sprint(i), "quote": `say "hi", then
leave`}
			if i%3 == 0 {
				e.OccurredAt = e.Timestamp.Add(-time.Second)
			}
		})
	}
	if err := b.store.StoreEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	return events
}

// get fetches path, returning the answer with its body read whole (and
// so its HTTP trailers).
func get(t *testing.T, b *bundle, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(b.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

func ndjson(t *testing.T, body string) ([]*chronicle.Event, api.ExportTrailer) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	var trailer api.ExportTrailer
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &trailer); err != nil || !strings.HasPrefix(lines[len(lines)-1], `{"trailer":`) {
		t.Fatalf("last line %q is not a trailer", lines[len(lines)-1])
	}
	var events []*chronicle.Event
	for _, l := range lines[:len(lines)-1] {
		var e chronicle.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		events = append(events, &e)
	}
	return events, trailer
}

func TestExport(t *testing.T) {
	t.Parallel()
	b := setup(t, 100, false)
	stored := storeEvents(t, b, 2500)

	t.Run("NDJSON", func(t *testing.T) {
		resp, body := get(t, b, "/events/export")
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type %q", ct)
		}
		events, trailer := ndjson(t, body)
		if len(events) != len(stored) || trailer.Trailer.Count != int64(len(stored)) || *trailer.Trailer.LastSeq != int64(len(stored)-1) {
			t.Fatalf("%d events, trailer %+v", len(events), trailer.Trailer)
		}
		for i, e := range events {
			if *e.Seq != int64(i) || e.ID != stored[i].ID {
				t.Fatalf("line %d: seq %d id %s", i, *e.Seq, e.ID)
			}
		}
		if c := resp.Trailer.Get(api.ExportCountTrailer); c != "2500" {
			t.Errorf("HTTP trailer count %q", c)
		}
		if l := resp.Trailer.Get(api.ExportLastSeqTrailer); l != "2499" {
			t.Errorf("HTTP trailer last seq %q", l)
		}
	})

	t.Run("Filtered", func(t *testing.T) {
		_, body := get(t, b, "/events/export?actor=BOB@example.com&from_seq=100&to_seq=1101&occurred_since=2000-01-01T00:00:00Z")
		events, trailer := ndjson(t, body)
		var want []string
		for _, e := range stored[100:1101] {
			if e.Actor == "bob@example.com" && !e.OccurredAt.IsZero() {
				want = append(want, e.ID)
			}
		}
		var got []string
		for _, e := range events {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) || trailer.Trailer.Count != int64(len(want)) {
			t.Fatalf("got %d events (trailer %d), want %d", len(got), trailer.Trailer.Count, len(want))
		}
		_, body = get(t, b, "/events/export?actor=nobody")
		if events, trailer := ndjson(t, body); len(events) != 0 || trailer.Trailer.Count != 0 || trailer.Trailer.LastSeq != nil {
			t.Fatalf("an export of nothing: %d events, trailer %+v", len(events), trailer.Trailer)
		}
	})

	t.Run("CSVEqualsNDJSON", func(t *testing.T) {
		// A redacted event has its tombstone and leaf hash in both.
		expect200(t, b.do(t, "POST", "/events/"+stored[10].ID+"/redact", `{"reason":"erasure, \"now\""}`))
		_, body := get(t, b, "/events/export?to_seq=1500")
		want, wantTrailer := ndjson(t, body)
		if want[10].Redacted == nil || len(want[10].LeafHash) != 32 {
			t.Fatalf("the redacted event exported as %+v", want[10])
		}
		resp, body := get(t, b, "/events/export?format=csv&to_seq=1500")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q", ct)
		}
		if !strings.Contains(body, "\r\n") {
			t.Error("CSV rows do not end in CRLF")
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v", err)
		}
		if !slices.Equal(rows[0], api.CSVColumns) {
			t.Fatalf("header %v", rows[0])
		}
		var got []*chronicle.Event
		for i, rec := range rows[1 : len(rows)-1] {
			e, tr, err := api.ParseCSVRecord(rec)
			if err != nil || tr != nil {
				t.Fatalf("row %d: %v %v", i+1, err, tr)
			}
			got = append(got, e)
		}
		_, trailer, err := api.ParseCSVRecord(rows[len(rows)-1])
		if err != nil || trailer == nil || trailer.Trailer.Count != wantTrailer.Trailer.Count || *trailer.Trailer.LastSeq != *wantTrailer.Trailer.LastSeq {
			t.Fatalf("trailer row %v: %v", rows[len(rows)-1], err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d CSV rows, %d NDJSON lines", len(got), len(want))
		}
		for i := range want {
			a, _ := json.Marshal(got[i])
			b, _ := json.Marshal(want[i])
			if string(a) != string(b) {
				t.Fatalf("row %d:\n csv    %s\n ndjson %s", i, a, b)
			}
		}
	})

	t.Run("Errors", func(t *testing.T) {
		expect(t, b.do(t, "GET", "/events/export?format=xml", ""), 400, "format must be ndjson or csv")
		expect(t, b.do(t, "GET", "/events/export?actorr=x", ""), 400, `unknown query parameter ..actorr..`)
		expect(t, b.do(t, "GET", "/events/export?limit=5", ""), 400, `unknown query parameter ..limit..`)
		expect(t, b.do(t, "GET", "/events/export?from_seq=-1", ""), 400, "from_seq must be an integer")
		expect(t, b.do(t, "GET", "/events/export?since=yesterday", ""), 400, "since must be an RFC 3339 time")
	})
}

// sse reads Server-Sent Events messages from a response body.
type sse struct {
	r *bufio.Reader
}

type message struct {
	event, id, data string
	comment         bool
}

func (s *sse) next(t *testing.T) message {
	t.Helper()
	var m message
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if m.data != "" || m.event != "" || m.comment {
				return m
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			m.comment = true
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			m.data = value
		}
	}
}

// nextEvent skips comments and returns the next event message.
func (s *sse) nextEvent(t *testing.T) (message, *chronicle.Event) {
	t.Helper()
	for i := 0; i < 100; i++ {
		m := s.next(t)
		if m.comment && m.data == "" {
			continue
		}
		if m.event != "" {
			return m, nil
		}
		var e chronicle.Event
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			t.Fatalf("data %q: %v", m.data, err)
		}
		return m, &e
	}
	t.Fatal("no event in 100 messages")
	return message{}, nil
}

func openStream(t *testing.T, b *bundle, path, lastID string) (*http.Response, *sse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, &sse{r: bufio.NewReader(resp.Body)}
}

func TestStream(t *testing.T) {
	t.Parallel()
	b := setup(t, 100, false, func(c *httpapi.Config) {
		c.StreamPoll = 10 * time.Millisecond
		c.StreamHeartbeat = 50 * time.Millisecond
	})
	before := storeEvents(t, b, 10)

	// From now: only events stored after the stream started.
	resp, s := openStream(t, b, "/events/stream?actor=bob@example.com", "")
	defer resp.Body.Close()
	if m := s.next(t); !m.comment {
		t.Fatalf("first message %+v, want a comment saying where the stream starts", m)
	}
	after := storeEvents(t, b, 10)
	var lastID string
	for i := 1; i < 10; i += 2 {
		m, e := s.nextEvent(t)
		if e == nil || e.ID != after[i].ID || m.id != fmt.Sprint(*e.Seq) || *e.Seq != int64(10+i) {
			t.Fatalf("message %+v: want event %s at seq %d", m, after[i].ID, 10+i)
		}
		lastID = m.id
		if i == 5 {
			break
		}
	}
	// Heartbeats while nothing is stored (events 7 and 9 come first).
	for i := 0; ; i++ {
		if m := s.next(t); m.comment && m.id == "" {
			break
		}
		if i > 3 {
			t.Fatal("no heartbeat")
		}
	}
	resp.Body.Close()

	// Resume after the last id received: no gap, no duplicate.
	_, s = openStream(t, b, "/events/stream?actor=bob@example.com&from_seq=0", lastID)
	for _, i := range []int{7, 9} {
		if _, e := s.nextEvent(t); e == nil || e.ID != after[i].ID {
			t.Fatalf("after Last-Event-ID %s: got %+v, want %s", lastID, e, after[i].ID)
		}
	}

	// from_seq replays the log from a place.
	_, s2 := openStream(t, b, "/events/stream?from_seq=3", "")
	for _, want := range append(before[3:], after...) {
		if _, e := s2.nextEvent(t); e == nil || e.ID != want.ID {
			t.Fatalf("from_seq=3: got %+v, want %s", e, want.ID)
		}
	}

	// A shutdown ends every stream with a message saying so.
	b.api.Drain()
	for i := 0; ; i++ {
		m := s.next(t)
		if m.event == "shutdown" {
			break
		}
		if i > 100 {
			t.Fatal("no shutdown message")
		}
	}
	if _, err := s.r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after the shutdown message: %v, want the end of the stream", err)
	}
}

func TestStreamErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, 100, false)
	expect(t, b.do(t, "GET", "/events/stream?actorr=x", ""), 400, `unknown query parameter ..actorr..`)
	expect(t, b.do(t, "GET", "/events/stream?from_seq=x", ""), 400, `from_seq must be an integer`)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", b.srv.URL+"/events/stream", nil)
	req.Header.Set("Last-Event-ID", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("Last-Event-ID abc: %d, want 400", resp.StatusCode)
	}
}
