package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchCommands adds `bench`: a load generator that drives a running
// Chronicle over HTTP and waits until every accepted event is stored.
func benchCommands(register func(*command)) {
	register(&command{
		name: "bench",
		summary: "load a running Chronicle with events and measure accepted/s, stored/s end to end, latency and memory " +
			"(loopback targets only unless --allow-remote)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Duration("duration", 10*time.Second, "how long to send (ignored with --count)")
			fs.Int("count", 0, "send exactly this many events instead of for --duration")
			fs.Int("concurrency", 64, "requests in flight at once")
			fs.Int("batch", 1, "events per request (1: single-event POSTs; up to 1000: JSON array batches)")
			fs.String("mix", "seed", "event mix: seed (random actors/actions/resources, a third each of security.*, user.*, billing.* types), or fixed (one event, like wrk's script)")
			fs.Float64("rate", 0, "open-loop: requests per second to send, on a fixed schedule (0: closed loop, as fast as answers come)")
			fs.Bool("retry", false, "resend a request answered 503 or 429 after its Retry-After, as a well-behaved client would")
			fs.Duration("drain-timeout", 5*time.Minute, "how long to wait for every accepted event to be stored")
			fs.Bool("no-wait", false, "do not wait for the accepted events to be stored")
			fs.Bool("allow-remote", false, "allow a target that is not a loopback address")
			fs.Uint64("seed", 0, "random seed of the event mix (0: random)")
		},
		run: runBench,
	})
}

// benchReport is what bench prints (with --json, as is).
type benchReport struct {
	Target         string         `json:"target"`
	RunID          string         `json:"run_id"`
	Concurrency    int            `json:"concurrency"`
	Batch          int            `json:"batch"`
	Mix            string         `json:"mix"`
	Requests       int64          `json:"requests"`
	Sent           int64          `json:"events_sent"`
	Accepted       int64          `json:"events_accepted"`
	Rejected       int64          `json:"events_rejected"`
	Errors         map[string]int `json:"errors"`
	Retries        int            `json:"retries,omitempty"`
	LoadSeconds    float64        `json:"load_seconds"`
	DrainSeconds   float64        `json:"drain_seconds"`
	AcceptedPerSec float64        `json:"accepted_per_second"`
	StoredPerSec   float64        `json:"stored_per_second_end_to_end"`
	Stored         int64          `json:"events_stored"`
	Lost           int64          `json:"events_lost"`
	LatencyMs      latencies      `json:"latency_ms"`
	PeakRSSBytes   int64          `json:"service_peak_rss_bytes,omitempty"`
	RSSStartBytes  int64          `json:"service_rss_start_bytes,omitempty"`
	RSSEndBytes    int64          `json:"service_rss_end_bytes,omitempty"`
}

type latencies struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func runBench(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	conc, batch := flagValue[int](fs, "concurrency"), flagValue[int](fs, "batch")
	count, dur := flagValue[int](fs, "count"), flagValue[time.Duration](fs, "duration")
	mix := flagValue[string](fs, "mix")
	switch {
	case conc < 1 || conc > 10000:
		return usagef("--concurrency must be from 1 to 10000")
	case batch < 1 || batch > 1000:
		return usagef("--batch must be from 1 to 1000")
	case count < 0:
		return usagef("--count must not be negative")
	case count == 0 && dur <= 0:
		return usagef("--duration must be positive")
	case mix != "seed" && mix != "fixed":
		return usagef("--mix must be seed or fixed")
	}
	cl, err := clientFromFlags(env, fs, conc)
	if err != nil {
		return err
	}
	defer cl.close()
	if !flagValue[bool](fs, "allow-remote") && !isLoopback(cl.base) {
		return usagef("refusing to load %s: not a loopback address (add --allow-remote if you mean it)", cl.base.Host)
	}
	seed := flagValue[uint64](fs, "seed")
	if seed == 0 {
		seed = rand.Uint64()
	}
	runID := fmt.Sprintf("bench-%d-%04x", time.Now().Unix(), seed&0xffff)
	rep := &benchReport{Target: cl.String(), RunID: runID, Concurrency: conc, Batch: batch, Mix: mix, Errors: map[string]int{}}

	// Peak memory of the service, sampled from its /metrics.
	rssCtx, stopRSS := context.WithCancel(ctx)
	rssDone := make(chan struct{})
	go func() { defer close(rssDone); sampleRSS(rssCtx, cl, rep) }()

	gen := &benchGen{runID: runID, mix: mix}
	var (
		mu        sync.Mutex
		lat       []time.Duration
		sent      atomic.Int64
		remaining = int64(count)
		budget    atomic.Int64
	)
	budget.Store(remaining)
	loadCtx, cancel := context.WithCancel(ctx)
	if count == 0 {
		loadCtx, cancel = context.WithTimeout(ctx, dur)
	}
	defer cancel()
	// Open loop: request k is due at start + k/rate, whenever the previous
	// answers came, so a slow service does not slow the offered load.
	rate := flagValue[float64](fs, "rate")
	var seq atomic.Int64
	retry := flagValue[bool](fs, "retry")
	start := time.Now()
	stopProgress := benchProgress(env, &sent, start)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			var buf bytes.Buffer
			var mine []time.Duration
			for loadCtx.Err() == nil {
				n := batch
				if count > 0 {
					left := budget.Add(-int64(batch))
					if left+int64(batch) <= 0 {
						break
					}
					if left < 0 {
						n = int(int64(batch) + left)
					}
				}
				t0 := time.Now()
				if rate > 0 {
					due := start.Add(time.Duration(float64(seq.Add(1)-1) / rate * float64(time.Second)))
					select {
					case <-time.After(time.Until(due)):
					case <-loadCtx.Done():
						continue
					}
					t0 = due // latency counts from when the request was due
				}
				buf.Reset()
				gen.body(&buf, rng, n, batch > 1)
				acc, rej, kind := postEvents(loadCtx, cl, buf.Bytes(), n, batch > 1)
				for retry && (kind == "503" || kind == "429") && loadCtx.Err() == nil {
					mu.Lock()
					rep.Retries++
					mu.Unlock()
					time.Sleep(time.Second)
					acc, rej, kind = postEvents(loadCtx, cl, buf.Bytes(), n, batch > 1)
				}
				d := time.Since(t0)
				if kind == "canceled" {
					break
				}
				mine = append(mine, d)
				sent.Add(int64(n))
				mu.Lock()
				rep.Requests++
				rep.Accepted += int64(acc)
				rep.Rejected += int64(rej)
				if kind != "" {
					rep.Errors[kind]++
				}
				mu.Unlock()
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	stopProgress()
	load := time.Since(start)
	rep.Sent = sent.Load()
	rep.LoadSeconds = load.Seconds()
	rep.AcceptedPerSec = float64(rep.Accepted) / load.Seconds()
	rep.LatencyMs = summarize(lat)

	if !flagValue[bool](fs, "no-wait") && rep.Accepted > 0 {
		drainStart := time.Now()
		stored, err := waitStored(ctx, cl, runID, rep.Accepted, flagValue[time.Duration](fs, "drain-timeout"))
		rep.DrainSeconds = time.Since(drainStart).Seconds()
		rep.Stored = stored
		if lost := rep.Accepted - stored; lost > 0 {
			rep.Lost = lost
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "bench: %v\n", err)
		}
		rep.StoredPerSec = float64(rep.Accepted) / (load.Seconds() + rep.DrainSeconds)
	}
	stopRSS()
	<-rssDone
	if flagValue[bool](fs, "json") {
		if err := writeJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else {
		printBench(env.Stdout, rep)
	}
	if rep.Lost > 0 {
		return fmt.Errorf("%d accepted events were not stored within the drain timeout", rep.Lost)
	}
	return nil
}

// isLoopback reports whether u names this machine.
func isLoopback(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// benchGen writes event bodies. Every event of a run carries the run id
// as correlation_id, so the service can count what it stored.
type benchGen struct {
	runID string
	mix   string
}

var (
	benchActors    = []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "eve@example.com", "frank@example.com"}
	benchActions   = []string{"login", "logout", "create", "update", "delete", "view", "export", "charge"}
	benchResources = []string{"document", "project", "report", "invoice", "session", "account"}
	benchTypes     = []string{"security", "user", "billing"}
)

func (g *benchGen) body(b *bytes.Buffer, rng *rand.Rand, n int, array bool) {
	if array {
		b.WriteByte('[')
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if g.mix == "fixed" {
			fmt.Fprintf(b, `{"actor":"user:000042@example.com","action":"document.update","resource_type":"document","resource_id":"doc-00000042","event_type":"audit.document.update","correlation_id":%q,"metadata":{"ip":"192.0.2.17","changed":"title"}}`, g.runID)
			continue
		}
		action := benchActions[rng.IntN(len(benchActions))]
		fmt.Fprintf(b, `{"actor":%q,"action":%q,"resource_type":%q,"resource_id":"r-%06d","event_type":"%s.%s","correlation_id":%q,"metadata":{"ip":"192.0.2.%d","agent":"chronicle-bench"}}`,
			benchActors[rng.IntN(len(benchActors))], action, benchResources[rng.IntN(len(benchResources))],
			rng.IntN(1_000_000), benchTypes[rng.IntN(len(benchTypes))], action, g.runID, rng.IntN(255))
	}
	if array {
		b.WriteByte(']')
	}
}

// postEvents sends one request and classifies the answer: events accepted
// and rejected, and the kind of error if any.
func postEvents(ctx context.Context, cl *client, body []byte, n int, batch bool) (accepted, rejected int, kind string) {
	u, _ := cl.resolve("/events")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, n, "request"
	}
	req.Header.Set("Content-Type", "application/json")
	if cl.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+cl.apiKey)
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, "canceled"
		}
		return 0, n, "transport"
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted && !batch:
		io.Copy(io.Discard, resp.Body)
		return 1, 0, ""
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusUnprocessableEntity && batch:
		var r struct{ Accepted, Rejected int }
		if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&r); err != nil {
			return 0, n, "bad_response"
		}
		kind := ""
		if r.Rejected > 0 {
			kind = "422"
		}
		return r.Accepted, r.Rejected, kind
	default:
		io.Copy(io.Discard, resp.Body)
		return 0, n, strconv.Itoa(resp.StatusCode)
	}
}

// waitStored polls the service's count of the run's events until it
// reaches want and stops growing, or timeout passes.
func waitStored(ctx context.Context, cl *client, runID string, want int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	var n int64
	for {
		var out struct {
			Count int64 `json:"count"`
		}
		_, err := cl.do(ctx, http.MethodGet, "/events/count?correlation_id="+url.QueryEscape(runID), nil, &out)
		if err == nil {
			n = out.Count
			if n >= want {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return n, fmt.Errorf("count stored events: %w", err)
			}
			return n, fmt.Errorf("after %v, %d of %d accepted events are stored", timeout, n, want)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// sampleRSS reads process_resident_memory_bytes from the service's
// /metrics every half second and keeps the first, last and highest.
func sampleRSS(ctx context.Context, cl *client, rep *benchReport) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if v, err := readRSS(ctx, cl); err == nil {
			if rep.RSSStartBytes == 0 {
				rep.RSSStartBytes = v
			}
			rep.RSSEndBytes = v
			rep.PeakRSSBytes = max(rep.PeakRSSBytes, v)
		} else if errors.Is(err, errNoMetrics) {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

var errNoMetrics = errors.New("no process metrics")

func readRSS(ctx context.Context, cl *client) (int64, error) {
	u, _ := cl.resolve("/metrics")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := cl.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errNoMetrics
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, errNoMetrics
}

func summarize(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i].Microseconds()) / 1000
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

func printBench(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "target         %s (run %s)\n", r.Target, r.RunID)
	fmt.Fprintf(w, "load           %d requests of %d event(s), %d in flight, mix %s, %.1fs\n", r.Requests, r.Batch, r.Concurrency, r.Mix, r.LoadSeconds)
	fmt.Fprintf(w, "events         sent %d, accepted %d, rejected %d\n", r.Sent, r.Accepted, r.Rejected)
	fmt.Fprintf(w, "accepted/s     %.0f\n", r.AcceptedPerSec)
	if r.DrainSeconds > 0 || r.Stored > 0 {
		fmt.Fprintf(w, "stored         %d (drained in %.2fs after the load), lost %d\n", r.Stored, r.DrainSeconds, r.Lost)
		fmt.Fprintf(w, "stored/s e2e   %.0f  (accepted / (load + drain))\n", r.StoredPerSec)
	}
	fmt.Fprintf(w, "latency ms     p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.LatencyMs.P50, r.LatencyMs.P90, r.LatencyMs.P99, r.LatencyMs.Max)
	if r.Retries > 0 {
		fmt.Fprintf(w, "retries        %d (answers 503/429 resent after 1s)\n", r.Retries)
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s×%d", k, r.Errors[k])
		}
		fmt.Fprintf(w, "errors         %s\n", strings.Join(parts, " "))
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "service RSS    start %.0f MiB, peak %.0f MiB, end %.0f MiB\n",
			float64(r.RSSStartBytes)/(1<<20), float64(r.PeakRSSBytes)/(1<<20), float64(r.RSSEndBytes)/(1<<20))
	}
}

// benchProgress shows events sent so far on stderr: redrawn in place on a
// terminal, a line a second otherwise. The returned func stops it.
func benchProgress(env *Env, sent *atomic.Int64, start time.Time) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		every := time.Second
		if env.IsTerminal {
			every = 250 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-done:
				if env.IsTerminal {
					fmt.Fprintln(env.Stderr)
				}
				return
			}
			el := time.Since(start)
			line := fmt.Sprintf("bench: %5.1fs  %d events sent  %.0f/s", el.Seconds(), sent.Load(), float64(sent.Load())/el.Seconds())
			if env.IsTerminal {
				fmt.Fprintf(env.Stderr, "\r%s", line)
			} else {
				fmt.Fprintln(env.Stderr, line)
			}
		}
	}()
	return func() { close(done); <-stopped }
}
