package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/loadgen"
)

func TestFlood(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		r := execCLITerminal(t, s.vars(), true, "flood", "200").expect(t, ExitOK)
		for _, want := range []string{"sent      200\n", "accepted  200\n", "rejected  0\n", "errors    0\n", "events/s", "p50", "p99"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, r.stdout)
			}
		}
		// On a terminal: a bar redrawn in place, ending complete.
		if !strings.Contains(r.stderr, "\r[") || !strings.Contains(r.stderr, "200/200 100%") || !strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("progress bar on stderr: %q", r.stderr)
		}
		evs := s.waitStored(t, 200)
		time.Sleep(100 * time.Millisecond) // nothing more may arrive
		if evs = s.storedEvents(t); len(evs) != 200 {
			t.Errorf("%d events stored, want exactly 200", len(evs))
		}
		ids := map[string]bool{}
		for _, e := range evs {
			ids[e.ID] = true
		}
		if len(ids) != 200 {
			t.Errorf("%d distinct ids stored, want 200", len(ids))
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		r := execCLI(t, s.vars(), "flood", "30", "--concurrency", "3", "--json", "--seed", "9").expect(t, ExitOK)
		var sum loadgen.FloodSummary
		r.decode(t, &sum)
		if sum.Requested != 30 || sum.Sent != 30 || sum.Accepted != 30 || sum.Rejected != 0 || sum.Errors != 0 {
			t.Errorf("summary %+v, want 30 sent and accepted", sum)
		}
		if sum.EventsPerSecond <= 0 || sum.LatencyP50Ms <= 0 || sum.LatencyP99Ms < sum.LatencyP50Ms || sum.ElapsedSeconds <= 0 {
			t.Errorf("summary %+v: rates and latencies do not add up", sum)
		}
		if r.stderr != "" {
			t.Errorf("stderr %q: no progress lines expected within a second", r.stderr)
		}
		s.waitStored(t, 30)
	})

	t.Run("Slow", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		// Long enough (≥ 1s) for one plain progress line off a terminal.
		start := time.Now()
		r := execCLI(t, s.vars(), "flood", "--slow", "--interval", "250ms", "6").expect(t, ExitOK)
		if el := time.Since(start); el < 1250*time.Millisecond {
			t.Errorf("6 events every 250ms took %v, want at least 1.25s", el)
		}
		if !strings.Contains(r.stdout, "accepted  6\n") {
			t.Errorf("summary:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "flood: ") || strings.Contains(r.stderr, "\r") {
			t.Errorf("stderr %q: want plain progress lines", r.stderr)
		}
		s.waitStored(t, 6)
	})

	t.Run("ClassifiesFailures", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		url := fakeService(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch n.Add(1) % 4 {
			case 1:
				w.WriteHeader(http.StatusUnprocessableEntity)
				io.WriteString(w, `{"error":"validation_failed","reason":"actor is required"}`)
			case 2:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"error":"queue chronicle.all is full"}`)
			default:
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, `{"status":"accepted","id":"x"}`)
			}
		})
		r := execCLI(t, nil, "flood", "40", "--url", url, "--json").expect(t, ExitFailure)
		var sum loadgen.FloodSummary
		r.decode(t, &sum)
		if sum.Sent != 40 || sum.Accepted != 20 || sum.Rejected != 10 || sum.Errors != 10 {
			t.Errorf("summary %+v, want 20 accepted, 10 rejected, 10 errors", sum)
		}
		if len(sum.Failures) != 2 || sum.Failures[0].Count+sum.Failures[1].Count != 20 {
			t.Errorf("failures %+v, want the two messages counted", sum.Failures)
		}
		if !strings.Contains(r.stderr, "20 of 40 events were not accepted") {
			t.Errorf("stderr %q", r.stderr)
		}
		r = execCLI(t, nil, "flood", "4", "--url", url).expect(t, ExitFailure)
		if !strings.Contains(r.stderr, "actor is required") || !strings.Contains(r.stderr, "is full") {
			t.Errorf("stderr %q does not list the failures", r.stderr)
		}
	})

	t.Run("ErrBadArgs", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"flood", "abc"},
			{"flood", "0"},
			{"flood", "-5"},
			{"flood", "1", "2"},
			{"flood", "--concurrency", "0", "5"},
			{"flood", "5", "--concurrency", "100000"},
			{"flood", "--slow", "--interval", "0s", "3"},
			{"flood", "3", "--nope"},
		} {
			// The service is never reached: nothing listens on port 1.
			execCLI(t, map[string]string{"CHRONICLE_URL": "http://127.0.0.1:1"}, args...).expect(t, ExitUsage)
		}
	})
}

func TestFloodBatch(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	r := execCLI(t, s.vars(), "flood", "250", "--batch", "100", "--json").expect(t, ExitOK)
	var sum struct{ Sent, Accepted int }
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Sent != 250 || sum.Accepted != 250 {
		t.Fatalf("flood --batch: %s (%v)", r.stdout, err)
	}
	execCLI(t, s.vars(), "flood", "10", "--batch", "0").expect(t, ExitUsage)
	execCLI(t, s.vars(), "flood", "10", "--batch", "5", "--slow").expect(t, ExitUsage)
}
