package cli

import (
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/loadgen"
)

func TestBench(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := startLiveService(t)
		r := execCLI(t, s.vars(), "bench", "--count", "40", "--concurrency", "4", "--batch", "10", "--json").expect(t, ExitOK)
		var rep loadgen.BenchReport
		r.decode(t, &rep)
		if rep.Requests != 4 || rep.Sent != 40 || rep.Accepted != 40 || rep.Stored != 40 || rep.Lost != 0 || rep.Target != s.url {
			t.Errorf("report %+v", rep)
		}
		r = execCLI(t, s.vars(), "bench", "--count", "5", "--concurrency", "1").expect(t, ExitOK)
		for _, want := range []string{"target         " + s.url, "events         sent 5, accepted 5, rejected 0", "stored         5", "latency ms     p50"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("ErrBadArgs", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"CHRONICLE_URL": "http://127.0.0.1:1"}
		for _, args := range [][]string{
			{"bench", "--concurrency", "0"},
			{"bench", "--concurrency", "10001"},
			{"bench", "--batch", "0"},
			{"bench", "--duration", "0s"},
			{"bench", "--count", "-1"},
			{"bench", "--mix", "random"},
			{"bench", "extra"},
		} {
			execCLI(t, vars, args...).expect(t, ExitUsage)
		}
		r := execCLI(t, map[string]string{"CHRONICLE_URL": "http://192.0.2.1:8080"}, "bench").expect(t, ExitUsage)
		if !strings.Contains(r.stderr, "not a loopback address (add --allow-remote") {
			t.Errorf("stderr %q", r.stderr)
		}
	})
}
