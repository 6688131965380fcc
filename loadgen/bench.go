package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/client"
)

// Event mixes of Bench.
const (
	// MixSeed draws random actors, actions and resources, with a third
	// each of security.*, user.* and billing.* event types, so most
	// events go to two routes.
	MixSeed = "seed"
	// MixFixed sends one and the same event, like a wrk script.
	MixFixed = "fixed"
)

// MaxBenchConcurrency bounds BenchOptions.Concurrency.
const MaxBenchConcurrency = 10000

// BenchOptions say how Bench loads the service.
type BenchOptions struct {
	// Duration is how long to send, when Count is 0. Defaults to 10s.
	Duration time.Duration
	// Count, when above 0, sends exactly this many events instead of
	// for Duration. Defaults to 0.
	Count int
	// Concurrency is how many requests are in flight at once, up to
	// MaxBenchConcurrency. Defaults to 64.
	Concurrency int
	// Batch is how many events each request carries, up to MaxBatch;
	// above 1, JSON arrays. Defaults to 1.
	Batch int
	// Mix is MixSeed or MixFixed. Defaults to MixSeed.
	Mix string
	// Rate, above 0, is an open loop: that many requests per second on a
	// fixed schedule, whenever the answers come, with latency counted
	// from each request's scheduled time. Defaults to 0, a closed loop:
	// each worker sends as soon as its last answer came.
	Rate float64
	// Retry resends a request answered 503 or 429 after a second, as a
	// well-behaved client would, and counts the retries. Defaults to
	// false: every answer is counted as it comes.
	Retry bool
	// DrainTimeout bounds the wait for every accepted event to be
	// stored. Defaults to 5m.
	DrainTimeout time.Duration
	// NoWait skips that wait. Defaults to false.
	NoWait bool
	// AllowRemote allows a target that is not a loopback address.
	// Defaults to false: a load test is for a service of one's own.
	AllowRemote bool
	// Seed seeds the event mix. Defaults to a random seed.
	Seed uint64
	// Progress, when set, is where Bench shows events sent so far:
	// redrawn in place when Terminal, else a line a second. It also
	// says when the stored events cannot be counted. Defaults to none.
	Progress io.Writer
	// Terminal says Progress is a terminal. Defaults to false.
	Terminal bool
}

func (o *BenchOptions) withDefaults() {
	o.Duration = cmp.Or(o.Duration, 10*time.Second)
	o.Concurrency = cmp.Or(o.Concurrency, 64)
	o.Batch = cmp.Or(o.Batch, 1)
	o.Mix = cmp.Or(o.Mix, MixSeed)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 5*time.Minute)
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func (o *BenchOptions) validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > MaxBenchConcurrency:
		return optionsErrorf("--concurrency must be from 1 to %d", MaxBenchConcurrency)
	case o.Batch < 1 || o.Batch > MaxBatch:
		return optionsErrorf("--batch must be from 1 to %d", MaxBatch)
	case o.Count < 0:
		return optionsErrorf("--count must not be negative")
	case o.Duration < 0:
		return optionsErrorf("--duration must be positive")
	case o.Mix != MixSeed && o.Mix != MixFixed:
		return optionsErrorf("--mix must be %s or %s", MixSeed, MixFixed)
	case o.Rate < 0:
		return optionsErrorf("--rate must not be negative")
	case o.DrainTimeout < 0:
		return optionsErrorf("--drain-timeout must be positive")
	}
	return nil
}

// BenchReport is what a bench measured, also the command's --json output.
type BenchReport struct {
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
	LatencyMs      Latencies      `json:"latency_ms"`
	PeakRSSBytes   int64          `json:"service_peak_rss_bytes,omitempty"`
	RSSStartBytes  int64          `json:"service_rss_start_bytes,omitempty"`
	RSSEndBytes    int64          `json:"service_rss_end_bytes,omitempty"`
}

// Err says whether the bench's events all arrived: an error when
// accepted events were not stored within the drain timeout.
func (r *BenchReport) Err() error {
	if r.Lost > 0 {
		return fmt.Errorf("%d accepted events were not stored within the drain timeout", r.Lost)
	}
	return nil
}

// Bench loads the service behind c with events, then waits until the
// service has stored every accepted one (GET /events/count of the run's
// correlation id), and reports. It sends each request once, whatever c's
// MaxAttempts, counting every answer; opts.Retry resends refusals. It
// samples the service's resident memory from /metrics meanwhile. ctx
// ending stops the run early. It returns an error only for options it
// refuses (an *OptionsError), a target that is not a loopback address
// among them unless AllowRemote.
func Bench(ctx context.Context, c *client.Client, opts BenchOptions) (*BenchReport, error) {
	opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if u := c.BaseURL(); !opts.AllowRemote && !isLoopback(u) {
		return nil, optionsErrorf("refusing to load %s: not a loopback address (add --allow-remote if you mean it)", u.Host)
	}
	runID := fmt.Sprintf("bench-%d-%04x", time.Now().Unix(), opts.Seed&0xffff)
	rep := &BenchReport{Target: c.String(), RunID: runID, Concurrency: opts.Concurrency, Batch: opts.Batch, Mix: opts.Mix, Errors: map[string]int{}}

	rss := &rssSampler{}
	stopRSS := rss.run(ctx, c)
	load := (&benchRun{c: c, opts: opts, gen: &benchGen{runID: runID, mix: opts.Mix}, rep: rep}).run(ctx)
	if !opts.NoWait && rep.Accepted > 0 {
		drainStart := time.Now()
		stored, err := waitStored(ctx, c, runID, rep.Accepted, opts.DrainTimeout)
		rep.DrainSeconds = time.Since(drainStart).Seconds()
		rep.Stored = stored
		rep.Lost = max(rep.Accepted-stored, 0)
		if err != nil {
			fmt.Fprintf(opts.Progress, "bench: %v\n", err)
		}
		rep.StoredPerSec = float64(rep.Accepted) / (load.Seconds() + rep.DrainSeconds)
	}
	stopRSS()
	rep.RSSStartBytes, rep.RSSEndBytes, rep.PeakRSSBytes = rss.first, rss.last, rss.peak
	return rep, nil
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

// benchRun is the load phase of a bench: workers that send until the
// duration is over or the count is sent.
type benchRun struct {
	c    *client.Client
	opts BenchOptions
	gen  *benchGen
	// budget is the events left to send with a Count; seq numbers the
	// requests of an open loop; sent counts the events sent.
	budget, seq, sent atomic.Int64
	start             time.Time

	mu  sync.Mutex
	rep *BenchReport
	lat []time.Duration
}

// run sends from every worker and fills the report's load figures. It
// returns how long the load took.
func (r *benchRun) run(ctx context.Context) time.Duration {
	r.budget.Store(int64(r.opts.Count))
	loadCtx, cancel := context.WithCancel(ctx)
	if r.opts.Count == 0 {
		loadCtx, cancel = context.WithTimeout(ctx, r.opts.Duration)
	}
	defer cancel()
	r.start = time.Now()
	stopProgress := benchProgress(r.opts.Progress, r.opts.Terminal, &r.sent, r.start)
	var wg sync.WaitGroup
	for w := range r.opts.Concurrency {
		wg.Go(func() { r.work(loadCtx, rand.New(rand.NewPCG(r.opts.Seed, uint64(w)))) })
	}
	wg.Wait()
	stopProgress()
	load := time.Since(r.start)
	r.rep.Sent = r.sent.Load()
	r.rep.LoadSeconds = load.Seconds()
	r.rep.AcceptedPerSec = float64(r.rep.Accepted) / load.Seconds()
	r.rep.LatencyMs = latencies(r.lat)
	return load
}

// work is one worker: it sends requests until ctx ends or the count is
// sent.
func (r *benchRun) work(ctx context.Context, rng *rand.Rand) {
	var buf bytes.Buffer
	var mine []time.Duration
	defer func() {
		r.mu.Lock()
		r.lat = append(r.lat, mine...)
		r.mu.Unlock()
	}()
	batch := r.opts.Batch
	for ctx.Err() == nil {
		n, ok := r.take()
		if !ok {
			return
		}
		t0 := time.Now()
		if r.opts.Rate > 0 {
			// Open loop: request k is due at start + k/rate, whenever the
			// previous answers came, so a slow service does not slow the
			// offered load.
			due := r.start.Add(time.Duration(float64(r.seq.Add(1)-1) / r.opts.Rate * float64(time.Second)))
			if sleep(ctx, time.Until(due)) != nil {
				return
			}
			t0 = due // latency counts from when the request was due
		}
		buf.Reset()
		r.gen.body(&buf, rng, n, batch > 1)
		acc, rej, kind := r.post(ctx, buf.Bytes(), n)
		for r.opts.Retry && (kind == "503" || kind == "429") && sleep(ctx, time.Second) == nil {
			r.mu.Lock()
			r.rep.Retries++
			r.mu.Unlock()
			acc, rej, kind = r.post(ctx, buf.Bytes(), n)
		}
		if kind == "canceled" {
			return
		}
		mine = append(mine, time.Since(t0))
		r.sent.Add(int64(n))
		r.mu.Lock()
		r.rep.Requests++
		r.rep.Accepted += int64(acc)
		r.rep.Rejected += int64(rej)
		if kind != "" {
			r.rep.Errors[kind]++
		}
		r.mu.Unlock()
	}
}

// take returns how many events the next request carries, and false when
// a Count is all sent.
func (r *benchRun) take() (int, bool) {
	batch := r.opts.Batch
	if r.opts.Count == 0 {
		return batch, true
	}
	left := r.budget.Add(-int64(batch))
	switch {
	case left+int64(batch) <= 0:
		return 0, false
	case left < 0:
		return int(int64(batch) + left), true
	}
	return batch, true
}

// post sends one request of n events and classifies the answer: events
// accepted and rejected, and the kind of error if any ("" for none, the
// status such as "503", "422" when a batch had rejections, "transport"
// when no answer came, "canceled" when the load ended first).
func (r *benchRun) post(ctx context.Context, body []byte, n int) (accepted, rejected int, kind string) {
	res, err := r.c.PostRaw(ctx, "application/json", body)
	var ae *client.Error
	switch {
	case err == nil && res.Rejected > 0:
		return res.Accepted, res.Rejected, "422"
	case err == nil:
		return res.Accepted, res.Rejected, ""
	case !errors.As(err, &ae) && ctx.Err() != nil:
		return 0, 0, "canceled"
	case ae != nil && ae.Status == 422 && r.opts.Batch > 1 && res.Accepted+res.Rejected > 0:
		return res.Accepted, res.Rejected, "422"
	case ae != nil:
		return 0, n, strconv.Itoa(ae.Status)
	case res.Status != 0:
		return 0, n, "bad_response"
	}
	return 0, n, "transport"
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
		if g.mix == MixFixed {
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

// waitStored polls the service's count of the run's events until it
// reaches want, or timeout passes.
func waitStored(ctx context.Context, c *client.Client, runID string, want int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	var n int64
	for {
		count, err := c.Count(ctx, client.Query{CorrelationID: runID})
		if err == nil {
			n = count
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
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return n, err
		}
	}
}

// rssSampler keeps the first, last and highest resident memory the
// service reported.
type rssSampler struct {
	first, last, peak int64
}

// run samples process_resident_memory_bytes at once, then every half
// second until the returned func is called (which samples once more), or
// for good when the service has no such metric.
func (s *rssSampler) run(ctx context.Context, c *client.Client) (stop func()) {
	if !s.sample(ctx, c) {
		return func() {}
	}
	loop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sleep(loop, 500*time.Millisecond) == nil && s.sample(loop, c) {
		}
	}()
	return func() {
		cancel()
		<-done
		s.sample(ctx, c)
	}
}

// sample reads the service's resident memory once. It returns false when
// the service has no such metric.
func (s *rssSampler) sample(ctx context.Context, c *client.Client) bool {
	v, err := c.Metric(ctx, "process_resident_memory_bytes")
	var ae *client.Error
	switch {
	case err == nil:
		if s.first == 0 {
			s.first = int64(v)
		}
		s.last = int64(v)
		s.peak = max(s.peak, int64(v))
	case errors.Is(err, chronicle.ErrNotFound) || errors.As(err, &ae):
		return false
	}
	return true
}

// benchProgress shows events sent so far: redrawn in place on a
// terminal, a line a second otherwise. The returned func stops it.
func benchProgress(w io.Writer, tty bool, sent *atomic.Int64, start time.Time) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		every := time.Second
		if tty {
			every = 250 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			}
			el := time.Since(start)
			line := fmt.Sprintf("bench: %5.1fs  %d events sent  %.0f/s", el.Seconds(), sent.Load(), float64(sent.Load())/el.Seconds())
			if tty {
				fmt.Fprintf(w, "\r%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
