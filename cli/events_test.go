package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/api"
)

func TestEvents(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	before := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	actors := []string{"alice@example.com", "bob@example.com", "carol@example.com", "bob@example.com", "dave@example.com"}
	var ids []string
	for i, a := range actors {
		args := []string{"post", "--actor", a, "--resource-id", "doc-" + string(rune('a'+i))}
		if i == 4 {
			args = append(args, "--event-type", "user.created", "--entity-key", "org:acme")
		}
		ids = append(ids, strings.TrimSpace(execCLI(t, s.vars(), args...).expect(t, ExitOK).stdout))
	}
	s.waitStored(t, len(actors))
	// Newest first: the reverse of posting order (ids are time-ordered).
	newestFirst := make([]string, len(ids))
	for i, id := range ids {
		newestFirst[len(ids)-1-i] = id
	}

	listedIDs := func(t *testing.T, r cliRun) []string {
		t.Helper()
		var evs []storedEvent
		r.decode(t, &evs)
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.ID
		}
		return out
	}

	t.Run("Human", func(t *testing.T) {
		r := execCLI(t, s.vars(), "events").expect(t, ExitOK)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("%d lines, want 5:\n%s", len(lines), r.stdout)
		}
		f := strings.Fields(lines[0])
		if len(f) != 6 || f[1] != "user.created" || f[2] != "dave@example.com" || f[3] != "login" || f[4] != "security/doc-e" || f[5] != ids[4] {
			t.Errorf("newest line %q, want: timestamp event_type actor action resource id", lines[0])
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("line %q does not start with a timestamp: %v", lines[0], err)
		}
		if r.stderr != "" {
			t.Errorf("stderr %q", r.stderr)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		r := execCLI(t, s.vars(), "events", "--json").expect(t, ExitOK)
		if got := listedIDs(t, r); strings.Join(got, ",") != strings.Join(newestFirst, ",") {
			t.Errorf("ids %v, want %v", got, newestFirst)
		}
		r = execCLI(t, s.vars(), "events", "--json", "--actor", "nobody@example.com").expect(t, ExitOK)
		if strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("no match printed %q, want []", r.stdout)
		}
		r = execCLI(t, s.vars(), "events", "--actor", "nobody@example.com").expect(t, ExitOK)
		if r.stdout != "" || !strings.Contains(r.stderr, "no events") {
			t.Errorf("no match: stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--actor", "BOB@example.com"}, []string{ids[3], ids[1]}},
			{[]string{"--event-type", "user.created"}, []string{ids[4]}},
			{[]string{"--entity-key", "org:acme"}, []string{ids[4]}},
			{[]string{"--resource-id", "doc-c"}, []string{ids[2]}},
			{[]string{"--resource-id", ""}, nil},
			{[]string{"--resource-type", "security", "--action", "login", "--limit", "1"}, []string{ids[4]}},
			{[]string{"--since", before}, newestFirst},
			{[]string{"--since", "1h"}, newestFirst},
			{[]string{"--until", before}, nil},
			{[]string{"--correlation-id", "none"}, nil},
		} {
			r := execCLI(t, s.vars(), append([]string{"events", "--json"}, tc.args...)...).expect(t, ExitOK)
			if got := listedIDs(t, r); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("events %v: ids %v, want %v", tc.args, got, tc.want)
			}
		}
	})

	t.Run("Pages", func(t *testing.T) {
		r := execCLI(t, s.vars(), "events", "--limit", "2").expect(t, ExitOK)
		if n := strings.Count(r.stdout, "\n"); n != 2 || !strings.Contains(r.stderr, "--all") {
			t.Errorf("--limit 2: %d lines, stderr %q; want 2 and a hint", n, r.stderr)
		}
		r = execCLI(t, s.vars(), "events", "--all", "--limit", "2", "--json").expect(t, ExitOK)
		if got := listedIDs(t, r); strings.Join(got, ",") != strings.Join(newestFirst, ",") {
			t.Errorf("--all over pages of 2: ids %v, want %v", got, newestFirst)
		}
		r = execCLI(t, s.vars(), "events", "--all", "--limit", "2").expect(t, ExitOK)
		if n := strings.Count(r.stdout, "\n"); n != 5 || r.stderr != "" {
			t.Errorf("--all human: %d lines, stderr %q; want 5 and nothing", n, r.stderr)
		}
		r = execCLI(t, s.vars(), "events", "--all", "--actor", "bob@example.com", "--limit", "1", "--json").expect(t, ExitOK)
		if got := listedIDs(t, r); strings.Join(got, ",") != ids[3]+","+ids[1] {
			t.Errorf("--all keeps filters across pages: ids %v", got)
		}
	})

	t.Run("ErrBadFlags", func(t *testing.T) {
		for _, args := range [][]string{
			{"events", "--limit", "0"},
			{"events", "--limit", "1001"},
			{"events", "--since", "yesterday"},
			{"events", "--until", "2026-13-01"},
			{"events", "extra"},
			{"events", "--nope"},
		} {
			execCLI(t, s.vars(), args...).expect(t, ExitUsage)
		}
	})
}

func TestHealth(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		r := execCLI(t, s.vars(), "health").expect(t, ExitOK)
		if r.stdout != "healthy (transport inproc, store sqlite, 0 entities)\n" {
			t.Errorf("health printed %q", r.stdout)
		}
		var h api.Health
		execCLI(t, s.vars(), "health", "--json").expect(t, ExitOK).decode(t, &h)
		if h.Status != "healthy" || h.Transport != "inproc" || h.Store != "sqlite" || h.Entities == nil {
			t.Errorf("health --json: %+v", h)
		}
		execCLI(t, s.vars(), "health", "extra").expect(t, ExitUsage)

		s.stop(t)
		r = execCLI(t, s.vars(), "health", "--json").expect(t, ExitFailure)
		r.decode(t, &h)
		if h.Status != "unreachable" || !strings.Contains(h.Error, "cannot reach") {
			t.Errorf("stopped service: %+v", h)
		}
	})

	t.Run("Unhealthy", func(t *testing.T) {
		t.Parallel()
		url := fakeService(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"unhealthy","transport":"rabbitmq","store":"postgres","error":"store: connection refused"}`)
		})
		r := execCLI(t, nil, "health", "--url", url).expect(t, ExitFailure)
		if r.stdout != "unhealthy (transport rabbitmq, store postgres): store: connection refused\n" {
			t.Errorf("stdout %q", r.stdout)
		}
		if !strings.Contains(r.stderr, "503") {
			t.Errorf("stderr %q does not name the status", r.stderr)
		}
		var h api.Health
		execCLI(t, nil, "health", "--url", url, "--json").expect(t, ExitFailure).decode(t, &h)
		if h.Status != "unhealthy" || h.Error != "store: connection refused" {
			t.Errorf("health --json: %+v", h)
		}
	})
}
