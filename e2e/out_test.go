package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Events out with the real binary: an export as NDJSON and as CSV, the
// live tail across a restart, and a client that stops reading.

// postBatch posts events built by mk(i) for i in [from, to) as one batch.
func postBatch(t *testing.T, p *proc, from, to int, mk func(i int) string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i := from; i < to; i++ {
		if i > from {
			b.WriteString(",")
		}
		b.WriteString(mk(i))
	}
	b.WriteString("]")
	p.do("POST", "/events", b.String()).expect(t, 202, fmt.Sprintf(`"accepted":%d`, to-from))
}

// exportCLI runs chronicle export with args and returns its stdout.
func exportCLI(t *testing.T, p *proc, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"export", "--url", p.url}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chronicle export %v: %v\n%s", args, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("chronicle export %v wrote on stderr, which is not a terminal: %s", args, stderr.String())
	}
	return out
}

// A CSV export, read back with a CSV library, holds field for field what
// the NDJSON export holds.
func TestExportCSVEqualsNDJSON(t *testing.T) {
	t.Parallel()
	p := serve(t, nil)
	const n = 3000
	occurred := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	for from := 0; from < n; from += 1000 {
		postBatch(t, p, from, from+1000, func(i int) string {
			e := map[string]any{"actor": fmt.Sprintf("user%d@example.com", i%7), "action": []string{"login", "update", "delete"}[i%3],
				"resource_type": "document", "resource_id": fmt.Sprintf("doc-%d", i),
				"metadata": map[string]string{"n": strconv.Itoa(i), "note": "a \"quoted\", comma\nand a line", "ünï": "çödé"}}
			if i%2 == 0 {
				e["occurred_at"] = occurred
				e["entity_key"] = "org:acme"
			}
			b, _ := json.Marshal(e)
			return string(b)
		})
	}
	eventually(t, 30*time.Second, "every event stored", func() bool {
		var c struct{ Count int }
		p.do("GET", "/events/count", "").json(t, &c)
		return c.Count == n
	})

	for _, filter := range [][]string{nil, {"--action", "update", "--occurred-since", "24h"}} {
		nd := exportCLI(t, p, filter...)
		cs := exportCLI(t, p, append([]string{"--format", "csv"}, filter...)...)

		lines := strings.Split(strings.TrimSuffix(string(nd), "\n"), "\n")
		var want []map[string]any
		for _, l := range lines[:len(lines)-1] {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("NDJSON line %q: %v", l, err)
			}
			want = append(want, m)
		}
		var trailer struct {
			Trailer struct {
				Count   int    `json:"count"`
				LastSeq *int64 `json:"last_seq"`
			} `json:"trailer"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &trailer); err != nil || trailer.Trailer.Count != len(want) {
			t.Fatalf("NDJSON trailer %q: %v", lines[len(lines)-1], err)
		}
		if filter == nil && len(want) != n {
			t.Fatalf("the whole export holds %d events, want %d", len(want), n)
		}
		if filter != nil && (len(want) == 0 || len(want) >= n/3) {
			t.Fatalf("the filtered export holds %d events", len(want))
		}

		rows, err := csv.NewReader(strings.NewReader(string(cs))).ReadAll()
		if err != nil {
			t.Fatalf("encoding/csv cannot read the CSV export: %v", err)
		}
		header, body, last := rows[0], rows[1:len(rows)-1], rows[len(rows)-1]
		if last[0] != "trailer" || !strings.Contains(last[slices.Index(header, "metadata")], fmt.Sprintf(`"count":%d`, len(want))) {
			t.Fatalf("CSV trailer row %q", last)
		}
		if len(body) != len(want) {
			t.Fatalf("%d CSV rows, %d NDJSON lines", len(body), len(want))
		}
		for i, rec := range body {
			got := map[string]any{}
			for j, col := range header {
				v := rec[j]
				switch {
				case v == "":
					continue
				case col == "seq":
					got[col], _ = strconv.ParseFloat(v, 64) // as JSON numbers decode
				case col == "metadata" || col == "redacted":
					var m any
					if err := json.Unmarshal([]byte(v), &m); err != nil {
						t.Fatalf("row %d: %s is not JSON: %v", i, col, err)
					}
					got[col] = m
				default:
					got[col] = v
				}
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want[i])
			if string(a) != string(b) {
				t.Fatalf("row %d differs:\n csv    %s\n ndjson %s", i, a, b)
			}
		}
	}
}

// sseReader reads the messages of an event stream.
type sseReader struct{ r *bufio.Reader }

type sseMessage struct {
	event, id, data string
	comment         bool
}

// next returns the next message, or an error when the stream ends.
func (s sseReader) next() (sseMessage, error) {
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if m != (sseMessage{}) {
				return m, nil
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

func openSSE(t *testing.T, ctx context.Context, url, lastID string) (*http.Response, sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
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
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp, sseReader{bufio.NewReader(resp.Body)}
}

// The live tail resumes with Last-Event-ID across a restart of the
// server, with no gap and no duplicate; the server's graceful stop ends
// open streams with a message rather than waiting on them; chronicle
// tail, running throughout, reconnects by itself.
func TestStreamResumesAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		"CHRONICLE_PORT":             strconv.Itoa(freePort(t)),
		"CHRONICLE_SQLITE_PATH":      filepath.Join(dir, "chronicle.db"),
		"CHRONICLE_SIGNING_KEY_FILE": filepath.Join(dir, "chronicle.key"),
		"CHRONICLE_LISTEN_HOST":      "127.0.0.1",
	}
	p := run(t, env, "serve")
	p.waitHealthy(30 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	tail := exec.CommandContext(ctx, binary, "tail", "--json", "--url", p.url, "--actor", "tailed@example.com", "--from-seq", "0")
	tail.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	tailOut, tailErr := &syncBuffer{}, &syncBuffer{}
	tail.Stdout, tail.Stderr = tailOut, tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		tail.Process.Kill()
		tail.Wait()
	}()

	mkEvent := func(i int) string {
		actor := "tailed@example.com"
		if i%4 == 3 {
			actor = "other@example.com"
		}
		return fmt.Sprintf(`{"actor":%q,"action":"step","resource_type":"job","resource_id":"%d"}`, actor, i)
	}
	resp, s := openSSE(t, ctx, p.url+"/events/stream?from_seq=0", "")
	postBatch(t, p, 0, 100, mkEvent)
	var got []event // in the order streamed
	lastID := ""
	read := func(s sseReader, upTo int) {
		t.Helper()
		for len(got) < upTo {
			m, err := s.next()
			if err != nil {
				t.Fatalf("the stream ended after %d events: %v", len(got), err)
			}
			if m.data == "" {
				continue
			}
			var e event
			if err := json.Unmarshal([]byte(m.data), &e); err != nil {
				t.Fatal(err)
			}
			// ids are the log's seqs: 0, 1, 2… with no gap and none twice.
			if m.id != strconv.Itoa(len(got)) {
				t.Fatalf("event %d of the stream has id %q", len(got), m.id)
			}
			got, lastID = append(got, e), m.id
		}
	}
	read(s, 60)
	// Stop the server with the stream open: it ends the stream with a
	// message and exits in time.
	if code := p.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM with a stream open", code)
	}
	sawShutdown := false
	for {
		m, err := s.next()
		if err != nil {
			break
		}
		if m.event == "shutdown" {
			sawShutdown = true
		}
	}
	resp.Body.Close()
	if !sawShutdown {
		t.Error("the stream ended without its shutdown message")
	}

	p = run(t, env, "serve")
	p.waitHealthy(30 * time.Second)
	postBatch(t, p, 100, 200, mkEvent)
	_, s = openSSE(t, ctx, p.url+"/events/stream", lastID)
	read(s, 200)
	seen := map[string]bool{}
	var want []string // the tailed actor's, in log order
	for _, e := range got {
		if seen[e.ResourceID] {
			t.Fatalf("resource %s streamed twice", e.ResourceID)
		}
		seen[e.ResourceID] = true
		if e.Actor == "tailed@example.com" {
			want = append(want, e.ResourceID)
		}
	}
	if len(seen) != 200 || len(want) != 150 {
		t.Fatalf("%d distinct events streamed, %d of the tailed actor", len(seen), len(want))
	}

	// chronicle tail printed the tailed actor's events, in log order,
	// each once, reconnecting by itself after the restart.
	eventually(t, 30*time.Second, "chronicle tail to print every tailed event", func() bool {
		return strings.Count(tailOut.String(), "\n") >= len(want)
	})
	var printed []string
	for _, l := range strings.Split(strings.TrimSpace(tailOut.String()), "\n") {
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		printed = append(printed, e.ResourceID)
	}
	if !slices.Equal(printed, want) {
		t.Fatalf("chronicle tail printed %v\nwant %v\nstderr: %s", printed, want, tailErr.String())
	}
	if !strings.Contains(tailErr.String(), "reconnecting") {
		t.Errorf("chronicle tail did not say it reconnects: %q", tailErr.String())
	}
}

// A client that stops reading its stream does not slow ingestion, and is
// disconnected once a write has waited CHRONICLE_STALL_TIMEOUT.
func TestStreamStalledClient(t *testing.T) {
	t.Parallel()
	p := serve(t, map[string]string{"CHRONICLE_STALL_TIMEOUT": "1s"})
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events/stream?from_seq=0 HTTP/1.1\r\nHost: chronicle\r\nAccept: text/event-stream\r\n\r\n")

	// Far more than the socket buffers hold, while the client reads
	// nothing.
	const n, batch = 12000, 400
	big := strings.Repeat("x", 2000)
	for from := 0; from < n; from += batch {
		postBatch(t, p, from, from+batch, func(i int) string {
			return fmt.Sprintf(`{"actor":"a@example.com","action":"fill","resource_type":"r","resource_id":"%d","metadata":{"pad":%q}}`, i, big)
		})
	}
	eventually(t, 60*time.Second, "every event stored while the stream stalls", func() bool {
		var c struct{ Count int }
		p.do("GET", "/events/count", "").json(t, &c)
		return c.Count == n
	})
	eventually(t, 30*time.Second, "the server to disconnect the stalled stream", func() bool {
		return strings.Contains(p.stderr.String(), "the client does not read; disconnected")
	})
	// What the kernel buffered still arrives, then the end: the server
	// closed the connection rather than holding it.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("after %d bytes: %v, want the end of the stream", got, err)
	}
	if got >= int64(n*len(big)) {
		t.Fatalf("the client got %d bytes: the whole log, so it was never stalled", got)
	}
	if m := string(p.do("GET", "/metrics", "").Body); !strings.Contains(m, "chronicle_event_streams_stalled_total 1") {
		t.Errorf("the stalled stream is not counted in the metrics")
	}
	// The service goes on: a new stream gets new events.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, s := openSSE(t, ctx, p.url+"/events/stream", "")
	defer resp.Body.Close()
	p.do("POST", "/events", `{"actor":"after@example.com","action":"a","resource_type":"r","resource_id":"x"}`).expect(t, 202, "accepted")
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("new stream: %v", err)
		}
		if strings.Contains(m.data, "after@example.com") {
			break
		}
	}
}

// On PostgreSQL with several processes (two API processes, two
// consumers storing concurrently, each with an integrator that may take
// over), a stream on either API process sends every event once, in the
// log's order, whichever process stored it.
func TestStreamAcrossProcessesOnPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	a, b := c.producer(), c.producer()
	c.consumer("default")
	c.consumer("default")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, sa := openSSE(t, ctx, a.url+"/events/stream?from_seq=0&action=step", "")
	_, sb := openSSE(t, ctx, b.url+"/events/stream?from_seq=0&action=step", "")
	const n = 600
	for from := 0; from < n; from += 100 {
		p := a
		if from%200 == 100 {
			p = b
		}
		postBatch(t, p, from, from+100, func(i int) string {
			return fmt.Sprintf(`{"actor":"a@example.com","action":"step","resource_type":"job","resource_id":"%d"}`, i)
		})
	}
	read := func(s sseReader) []string {
		t.Helper()
		var ids []string
		for len(ids) < n {
			m, err := s.next()
			if err != nil {
				t.Fatalf("the stream ended after %d events: %v", len(ids), err)
			}
			if m.data == "" {
				continue
			}
			if m.id != strconv.Itoa(len(ids)) {
				t.Fatalf("event %d of the stream has id %q: a gap or a duplicate", len(ids), m.id)
			}
			var e event
			json.Unmarshal([]byte(m.data), &e)
			ids = append(ids, e.ResourceID)
		}
		return ids
	}
	fromA, fromB := read(sa), read(sb)
	if !slices.Equal(fromA, fromB) {
		t.Fatal("the two processes stream the log in different orders")
	}
	seen := map[string]bool{}
	for _, id := range fromA {
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events of %d", len(seen), n)
	}
}
