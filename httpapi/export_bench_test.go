package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/internal/pgtest"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/postgres"
	"github.com/chronicle-audit/chronicle/sqlite"
)

// BenchmarkExport measures GET /events/export over the SQLite and the
// PostgreSQL store: CHRONICLE_TEST_EXPORT_EVENTS events (default
// 100,000; the README's figures use 1,000,000) are stored straight into
// the store first, untimed, ten actors taking turns and one event in
// 10,000 with a correlation id of its own. Each export runs through a
// real HTTP server and client in this process and is read line by line;
// it reports events/s, the process's peak RSS during the export
// (VmHWM, reset before it) and that peak less the RSS before it.
//
//	CHRONICLE_TEST_EXPORT_EVENTS=1000000 go test -run '^$' -bench Export -benchtime 1x -timeout 2h ./httpapi/
//
// (PostgreSQL: CHRONICLE_TEST_DATABASE_URL, as scripts/test.sh sets it.)
func BenchmarkExport(b *testing.B) {
	n := 100_000
	if v := os.Getenv("CHRONICLE_TEST_EXPORT_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("CHRONICLE_TEST_EXPORT_EVENTS=%q: want a positive integer", v)
		}
	}
	stores := map[string]func(b *testing.B) chronicle.Store{
		"sqlite": func(b *testing.B) chronicle.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "export.db"), sqlite.Options{Logger: testlog.Warn(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(b *testing.B) chronicle.Store {
			dbURL, _ := pgtest.NewDatabase(b)
			s, err := postgres.Open(context.Background(), dbURL, postgres.Options{Logger: testlog.Warn(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run("store="+name, func(b *testing.B) {
			s := stores[name](b)
			loadExport(b, s, n)
			srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: s, Logger: testlog.Warn(b)}))
			defer srv.Close()
			for _, c := range []struct {
				name, query string
				want        int
			}{
				{"ndjson", "", n},
				{"csv", "format=csv", n},
				{"actor", "actor=actor3@example.com", (n + 6) / 10},
				{"correlation", "correlation_id=rare-0", 1},
			} {
				b.Run(c.name, func(b *testing.B) {
					for range b.N {
						exportOnce(b, srv.URL+"/events/export?"+c.query, c.want)
					}
				})
			}
		})
	}
}

// loadExport stores n events in batches, then waits until the log holds
// them all.
func loadExport(b *testing.B, s chronicle.Store, n int) {
	b.Helper()
	start := time.Now()
	const batch = 1000
	events := make([]*chronicle.Event, 0, batch)
	for i := 0; i < n; i++ {
		events = append(events, storetest.NewEvent(time.Duration(i)*time.Microsecond, func(e *chronicle.Event) {
			e.Actor = fmt.Sprintf("actor%d@example.com", i%10)
			e.ResourceID = fmt.Sprintf("doc-%d", i%5000)
			e.Metadata = map[string]string{"ip": "192.0.2.17", "n": strconv.Itoa(i)}
			if i%10_000 == 0 {
				e.CorrelationID = "rare-" + strconv.Itoa(i)
			}
		}))
		if len(events) == batch || i == n-1 {
			if err := s.StoreEvents(context.Background(), events); err != nil {
				b.Fatal(err)
			}
			events = events[:0]
		}
	}
	deadline := time.Now().Add(30 * time.Minute)
	for {
		size, err := s.LogSize(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if size == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the log holds %d of %d events", size, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("%d events stored and in the log in %v", n, time.Since(start).Round(time.Second))
}

// exportOnce reads one export whole, line by line, checks its count, and
// reports its rate and the memory it took.
func exportOnce(b *testing.B, url string, want int) {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	before := procStatus(b, "VmRSS")
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lines int
	var last []byte
	for sc.Scan() {
		lines++
		last = append(last[:0], sc.Bytes()...)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	trailer := fmt.Sprintf(`"count":%d`, want)
	if !bytes.Contains(last, []byte(trailer)) && !strings.Contains(string(last), strings.ReplaceAll(trailer, `"`, `""`)) {
		b.Fatalf("the export ends with %q, want a trailer with %s", last, trailer)
	}
	peak := procStatus(b, "VmHWM")
	b.ReportMetric(float64(want)/el.Seconds(), "events/s")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(peak-before)/1024, "RSS-growth-MiB")
}

// resetPeakRSS resets the process's VmHWM to its current RSS.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(b *testing.B, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
