package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

func TestExportCommand(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	actors := []string{"alice@example.com", "bob@example.com", "bob@example.com", "carol@example.com"}
	var ids []string
	for _, a := range actors {
		ids = append(ids, strings.TrimSpace(execCLI(t, s.vars(), "post", "--actor", a, "--metadata", `note=a "quoted", comma`).expect(t, ExitOK).stdout))
	}
	s.waitStored(t, len(actors))

	r := execCLI(t, s.vars(), "export").expect(t, ExitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 || lines[4] != `{"trailer":{"count":4,"last_seq":3}}` {
		t.Fatalf("export:\n%s", r.stdout)
	}
	for i, l := range lines[:4] {
		var e chronicle.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.ID != ids[i] || *e.Seq != int64(i) {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr is not a terminal, yet: %q", r.stderr)
	}

	r = execCLI(t, s.vars(), "export", "--format", "csv", "--actor", "bob@example.com").expect(t, ExitOK)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("csv export (%v):\n%s", err, r.stdout)
	}
	for i, rec := range rows[1:3] {
		e, _, err := api.ParseCSVRecord(rec)
		if err != nil || e.ID != ids[i+1] || e.Metadata["note"] != `a "quoted", comma` {
			t.Fatalf("row %d %v: %v", i+1, rec, err)
		}
	}
	if _, tr, err := api.ParseCSVRecord(rows[3]); err != nil || tr == nil || tr.Trailer.Count != 2 || *tr.Trailer.LastSeq != 2 {
		t.Fatalf("trailer row %v: %v", rows[3], err)
	}

	// On a terminal, a progress line on stderr, and the export on stdout
	// all the same.
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"export", "--from-seq", "2"}, &Env{Stdout: &stdout, Stderr: &stderr,
		LookupEnv: mapLookup(s.vars()), StderrIsTerminal: true})
	if code != ExitOK || !strings.Contains(stderr.String(), "2 events, last seq 3") || strings.Count(stdout.String(), "\n") != 3 {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr.String(), stdout.String())
	}

	execCLI(t, s.vars(), "export", "--format", "xml").expect(t, ExitUsage)
	execCLI(t, s.vars(), "export", "--since", "yesterday").expect(t, ExitUsage)
}

// syncBuffer is a buffer a command writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTailCommand(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	old := strings.TrimSpace(execCLI(t, s.vars(), "post", "--actor", "bob@example.com").expect(t, ExitOK).stdout)
	s.waitStored(t, 1)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"tail", "--json", "--actor", "bob@example.com", "--from-seq", "0"},
			&Env{Stdout: &stdout, Stderr: &stderr, LookupEnv: mapLookup(s.vars())})
	}()
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok(stdout.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; stdout:\n%s\nstderr:\n%s", what, stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the stored event", func(out string) bool { return strings.Contains(out, old) })
	execCLI(t, s.vars(), "post", "--actor", "alice@example.com").expect(t, ExitOK)
	fresh := strings.TrimSpace(execCLI(t, s.vars(), "post", "--actor", "bob@example.com").expect(t, ExitOK).stdout)
	waitFor("the new event", func(out string) bool { return strings.Contains(out, fresh) })
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("tail ended with %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("tail printed %d lines, want bob's 2:\n%s", len(lines), stdout.String())
	}
	for i, id := range []string{old, fresh} {
		var e chronicle.Event
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil || e.ID != id {
			t.Fatalf("line %d %q: %v, want %s", i, lines[i], err, id)
		}
	}
}
