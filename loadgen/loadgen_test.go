package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle/client"
)

// fakeService stands in for Chronicle: it accepts single events and
// batches, counts what it "stored" by correlation id, and serves a
// resident-memory metric.
type fakeService struct {
	// answer, when set, chooses the status of the n-th POST (from 1);
	// 0 accepts.
	answer func(n int64) int
	// storeLess stores that many fewer events than it accepts.
	storeLess int64

	posts  atomic.Int64
	mu     sync.Mutex
	stored map[string]int64
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "POST" && r.URL.Path == "/events":
		f.post(w, r)
	case r.URL.Path == "/events/count":
		f.mu.Lock()
		n := max(f.stored[r.URL.Query().Get("correlation_id")]-f.storeLess, 0)
		f.mu.Unlock()
		fmt.Fprintf(w, `{"count":%d}`, n)
	case r.URL.Path == "/metrics":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.097152e+07\n")
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not found"}`)
	}
}

func (f *fakeService) post(w http.ResponseWriter, r *http.Request) {
	n := f.posts.Add(1)
	if f.answer != nil {
		if status := f.answer(n); status != 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"refused with %d"}`, status)
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	type event struct {
		Actor         string `json:"actor"`
		CorrelationID string `json:"correlation_id"`
	}
	var evs []event
	batch := bytes.HasPrefix(body, []byte("["))
	if batch {
		json.Unmarshal(body, &evs)
	} else {
		evs = make([]event, 1)
		json.Unmarshal(body, &evs[0])
	}
	var results []string
	accepted := 0
	f.mu.Lock()
	if f.stored == nil {
		f.stored = map[string]int64{}
	}
	for i, e := range evs {
		if e.Actor == "" {
			results = append(results, fmt.Sprintf(`{"index":%d,"error":"validation_failed","reason":"actor is required"}`, i))
			continue
		}
		accepted++
		f.stored[e.CorrelationID]++
		results = append(results, fmt.Sprintf(`{"index":%d,"id":"e-%d-%d"}`, i, n, i))
	}
	f.mu.Unlock()
	switch {
	case !batch && accepted == 1:
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"status":"accepted","id":"e-%d"}`, n)
	case !batch:
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"error":"validation_failed","reason":"actor is required"}`)
	default:
		status, word := http.StatusAccepted, "accepted"
		if accepted == 0 {
			status, word = http.StatusUnprocessableEntity, "rejected"
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%q,"accepted":%d,"rejected":%d,"results":[%s]}`, word, accepted, len(evs)-accepted, strings.Join(results, ","))
	}
}

// setup starts f and returns a client of it that sends each request once.
func setup(t *testing.T, f *fakeService) *client.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.Options{MaxAttempts: 1, Conns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestFlood(t *testing.T) {
	t.Parallel()
	type counts struct{ Requested, Sent, Accepted, Rejected, Errors int }
	for _, tc := range []struct {
		name   string
		opts   FloodOptions
		answer func(n int64) int
		want   counts
		err    string
	}{
		{"OK", FloodOptions{Events: 50, Concurrency: 5}, nil, counts{Requested: 50, Sent: 50, Accepted: 50}, ""},
		{"Defaults", FloodOptions{}, nil, counts{Requested: 10, Sent: 10, Accepted: 10}, ""},
		{"Batch", FloodOptions{Events: 25, Batch: 10, Concurrency: 2}, nil, counts{Requested: 25, Sent: 25, Accepted: 25}, ""},
		{"Slow", FloodOptions{Events: 3, Slow: true, Interval: 10 * time.Millisecond}, nil, counts{Requested: 3, Sent: 3, Accepted: 3}, ""},
		{"Refusals", FloodOptions{Events: 12, Concurrency: 1}, func(n int64) int { return []int{0, 400, 503}[n%3] },
			counts{Requested: 12, Sent: 12, Accepted: 4, Rejected: 4, Errors: 4}, "8 of 12 events were not accepted"},
		{"BatchRefused", FloodOptions{Events: 20, Batch: 10, Concurrency: 1}, func(n int64) int { return []int{0, 503}[n%2] },
			counts{Requested: 20, Sent: 20, Accepted: 10, Errors: 10}, "10 of 20 events were not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeService{answer: tc.answer}
			sum, err := Flood(t.Context(), setup(t, f), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := counts{Requested: sum.Requested, Sent: sum.Sent, Accepted: sum.Accepted, Rejected: sum.Rejected, Errors: sum.Errors}
			if got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
			if err := sum.Err(); (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Errorf("Err() = %v, want %q", err, tc.err)
			}
			if sum.Accepted > 0 && (sum.LatencyP50Ms <= 0 || sum.LatencyP99Ms < sum.LatencyP50Ms || sum.EventsPerSecond <= 0) {
				t.Errorf("summary %+v: latencies and rate do not add up", sum)
			}
			if tc.answer != nil && (len(sum.Failures) == 0 || !strings.Contains(sum.Failures[0].Error, "refused with")) {
				t.Errorf("failures %+v", sum.Failures)
			}
		})
	}
}

func TestFloodInterrupted(t *testing.T) {
	t.Parallel()
	c := setup(t, &fakeService{})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	sum, err := Flood(ctx, c, FloodOptions{Events: 100, Slow: true, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent >= 100 || sum.Err() == nil || !strings.HasPrefix(sum.Err().Error(), "interrupted after") {
		t.Errorf("summary %+v, %v: want an interrupted flood", sum, sum.Err())
	}
}

func TestFloodProgress(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	_, err := Flood(t.Context(), setup(t, &fakeService{}), FloodOptions{Events: 40, Progress: &out, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "\r[") || !strings.Contains(s, "40/40 100%") || !strings.HasSuffix(s, "\n") {
		t.Errorf("progress %q", s)
	}
}

func TestFloodOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts FloodOptions
		want string
	}{
		{"ErrEvents", FloodOptions{Events: MaxFloodEvents + 1}, "N must be"},
		{"ErrNegativeEvents", FloodOptions{Events: -1}, "N must be"},
		{"ErrConcurrency", FloodOptions{Concurrency: 1001}, "--concurrency must be from 1 to 1000, not 1001"},
		{"ErrBatch", FloodOptions{Batch: 1001}, "--batch must be from 1 to 1000"},
		{"ErrSlowBatch", FloodOptions{Slow: true, Batch: 2}, "--slow sends one event at a time: drop --batch"},
		{"ErrInterval", FloodOptions{Slow: true, Interval: -time.Second}, "--interval must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := client.New("127.0.0.1:1", client.Options{})
			_, err := Flood(t.Context(), c, tc.opts)
			var oe *OptionsError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want an *OptionsError saying %q", err, tc.want)
			}
		})
	}
}

func TestBench(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   BenchOptions
		fake   *fakeService
		check  func(t *testing.T, r *BenchReport)
		errStr string
	}{
		{"Count", BenchOptions{Count: 50, Concurrency: 4}, &fakeService{}, func(t *testing.T, r *BenchReport) {
			if r.Requests != 50 || r.Sent != 50 || r.Accepted != 50 || r.Stored != 50 || r.Lost != 0 || len(r.Errors) != 0 {
				t.Errorf("report %+v", r)
			}
		}, ""},
		{"CountBatches", BenchOptions{Count: 23, Batch: 5, Concurrency: 3, Mix: MixFixed}, &fakeService{}, func(t *testing.T, r *BenchReport) {
			if r.Requests != 5 || r.Sent != 23 || r.Accepted != 23 || r.Stored != 23 {
				t.Errorf("report %+v", r)
			}
		}, ""},
		{"Duration", BenchOptions{Duration: 200 * time.Millisecond, Concurrency: 2, NoWait: true}, &fakeService{}, func(t *testing.T, r *BenchReport) {
			if r.Accepted == 0 || r.Accepted != r.Sent || r.Stored != 0 || r.LoadSeconds < 0.1 || r.LoadSeconds > 5 {
				t.Errorf("report %+v", r)
			}
		}, ""},
		{"OpenLoop", BenchOptions{Count: 10, Concurrency: 10, Rate: 100}, &fakeService{}, func(t *testing.T, r *BenchReport) {
			if r.Accepted != 10 || r.LoadSeconds < 0.05 {
				t.Errorf("10 requests at 100/s in %.3fs: %+v", r.LoadSeconds, r)
			}
		}, ""},
		{"Errors", BenchOptions{Count: 9, Concurrency: 1}, &fakeService{answer: func(n int64) int { return []int{0, 503, 429}[n%3] }}, func(t *testing.T, r *BenchReport) {
			if r.Accepted != 3 || r.Errors["503"] != 3 || r.Errors["429"] != 3 || r.Retries != 0 {
				t.Errorf("report %+v", r)
			}
		}, ""},
		{"Retry", BenchOptions{Count: 2, Concurrency: 1, Retry: true}, &fakeService{answer: func(n int64) int { return []int{503, 0}[n%2] }}, func(t *testing.T, r *BenchReport) {
			if r.Accepted != 2 || r.Retries != 1 || len(r.Errors) != 0 {
				t.Errorf("report %+v", r)
			}
		}, ""},
		{"Lost", BenchOptions{Count: 5, Concurrency: 1, DrainTimeout: 200 * time.Millisecond}, &fakeService{storeLess: 2}, func(t *testing.T, r *BenchReport) {
			if r.Stored != 3 || r.Lost != 2 {
				t.Errorf("report %+v", r)
			}
		}, "2 accepted events were not stored within the drain timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var progress syncBuffer
			tc.opts.Progress = &progress
			r, err := Bench(t.Context(), setup(t, tc.fake), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
			if r.PeakRSSBytes != 20<<20 || r.RSSStartBytes != 20<<20 {
				t.Errorf("RSS %d/%d, want 20 MiB", r.RSSStartBytes, r.PeakRSSBytes)
			}
			if !strings.HasPrefix(r.RunID, "bench-") || r.LatencyMs.P50 <= 0 || r.LatencyMs.Max < r.LatencyMs.P99 {
				t.Errorf("report %+v", r)
			}
			if err := r.Err(); (err == nil) != (tc.errStr == "") || err != nil && err.Error() != tc.errStr {
				t.Errorf("Err() = %v, want %q", err, tc.errStr)
			}
			if tc.errStr != "" && !strings.Contains(progress.String(), "bench: after") {
				t.Errorf("progress %q does not say what was stored", progress.String())
			}
		})
	}
}

func TestBenchOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		opts      BenchOptions
		want      string
	}{
		{"ErrConcurrency", "127.0.0.1:1", BenchOptions{Concurrency: 10001}, "--concurrency must be from 1 to 10000"},
		{"ErrBatch", "127.0.0.1:1", BenchOptions{Batch: -1}, "--batch must be from 1 to 1000"},
		{"ErrCount", "127.0.0.1:1", BenchOptions{Count: -1}, "--count must not be negative"},
		{"ErrDuration", "127.0.0.1:1", BenchOptions{Duration: -time.Second}, "--duration must be positive"},
		{"ErrMix", "127.0.0.1:1", BenchOptions{Mix: "random"}, "--mix must be seed or fixed"},
		{"ErrRate", "127.0.0.1:1", BenchOptions{Rate: -1}, "--rate must not be negative"},
		{"ErrRemote", "audit.example.com:8080", BenchOptions{}, "refusing to load audit.example.com:8080: not a loopback address (add --allow-remote if you mean it)"},
		{"ErrRemoteIP", "http://192.0.2.1", BenchOptions{}, "not a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tc.url, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Bench(t.Context(), c, tc.opts)
			var oe *OptionsError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want an *OptionsError saying %q", err, tc.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://localhost:8080", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.8.9.10", true},
		{"http://[::1]:8080", true},
		{"http://192.0.2.1:8080", false},
		{"http://localhost.example.com", false},
	} {
		c, err := client.New(tc.url, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(c.BaseURL()); got != tc.want {
			t.Errorf("isLoopback(%s) = %v", tc.url, got)
		}
	}
}

func TestRandomEvent(t *testing.T) {
	t.Parallel()
	a, b := RandomEvent(NewRand(42)), RandomEvent(NewRand(42))
	if a.Actor != b.Actor || a.Action != b.Action || a.ResourceType != b.ResourceType || a.ResourceID != b.ResourceID {
		t.Errorf("the same seed gave %+v and %+v", a, b)
	}
	rng := NewRand(0)
	for range 100 {
		e := RandomEvent(rng)
		if !slices.Contains(sampleActors, e.Actor) || !slices.Contains(sampleActions, e.Action) ||
			!slices.Contains(sampleResourceTypes, e.ResourceType) || !strings.HasPrefix(e.ResourceID, e.ResourceType+"-") {
			t.Fatalf("%+v is not drawn from the sample lists", e)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, ms(i))
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"Empty", nil, 0.5, 0},
		{"One", []time.Duration{ms(7)}, 0.99, ms(7)},
		{"P50", lat, 0.50, ms(50)},
		{"P99", lat, 0.99, ms(99)},
		{"P100", lat, 1, ms(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(p=%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if got := latencies([]time.Duration{ms(3), ms(1), 1500 * time.Microsecond}); got != (Latencies{P50: 1.5, P90: 3, P99: 3, Max: 3}) {
		t.Errorf("latencies = %+v", got)
	}
}

// syncBuffer is a buffer that progress goroutines may write to.
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
