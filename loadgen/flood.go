package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
)

// Bounds of FloodOptions: enough for any load test, small enough that a
// typo cannot run for days.
const (
	MaxFloodEvents      = 10_000_000
	MaxFloodConcurrency = 1000
	MaxBatch            = 1000
)

// FloodOptions say what Flood sends.
type FloodOptions struct {
	// Events is how many events to send (the command's N), up to
	// MaxFloodEvents. Defaults to 10.
	Events int
	// Concurrency is how many requests are in flight at once, up to
	// MaxFloodConcurrency. Defaults to 10.
	Concurrency int
	// Batch is how many events each request carries, up to MaxBatch;
	// above 1, events go as JSON arrays. Defaults to 1.
	Batch int
	// Slow sends one event at a time, every Interval, so that competing
	// consumers can be watched taking turns. Defaults to false.
	Slow bool
	// Interval is the pause between events when Slow. Defaults to 500ms.
	Interval time.Duration
	// Seed seeds the random events, for a reproducible flood. Defaults
	// to a random seed.
	Seed uint64
	// Progress, when set, is where the flood shows how far it has got:
	// a bar redrawn in place when Terminal, else a line at most every
	// second. Defaults to none.
	Progress io.Writer
	// Terminal says Progress is a terminal. Defaults to false.
	Terminal bool
}

func (o *FloodOptions) withDefaults() {
	o.Events = cmp.Or(o.Events, 10)
	o.Concurrency = cmp.Or(o.Concurrency, 10)
	o.Batch = cmp.Or(o.Batch, 1)
	o.Interval = cmp.Or(o.Interval, 500*time.Millisecond)
	if o.Slow {
		o.Concurrency = 1
	}
}

func (o *FloodOptions) validate() error {
	switch {
	case o.Events < 1 || o.Events > MaxFloodEvents:
		return optionsErrorf("N must be a number of events from 1 to %d, not %d", MaxFloodEvents, o.Events)
	case o.Concurrency < 1 || o.Concurrency > MaxFloodConcurrency:
		return optionsErrorf("--concurrency must be from 1 to %d, not %d", MaxFloodConcurrency, o.Concurrency)
	case o.Batch < 1 || o.Batch > MaxBatch:
		return optionsErrorf("--batch must be from 1 to %d, not %d", MaxBatch, o.Batch)
	case o.Slow && o.Batch > 1:
		return optionsErrorf("--slow sends one event at a time: drop --batch")
	case o.Interval < 0:
		return optionsErrorf("--interval must be positive, not %v", o.Interval)
	}
	return nil
}

// FloodSummary is what a flood reports, also the command's --json output.
type FloodSummary struct {
	// Requested is the number of events asked for.
	Requested int `json:"requested"`
	// Sent counts the events sent (fewer than Requested when
	// interrupted).
	Sent int `json:"sent"`
	// Accepted counts the events the service accepted.
	Accepted int `json:"accepted"`
	// Rejected counts 4xx answers: the service refused the event.
	Rejected int `json:"rejected"`
	// Errors counts events that got no answer or a 5xx: the service
	// could not take them.
	Errors         int     `json:"errors"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// EventsPerSecond is accepted events per second of the whole flood.
	EventsPerSecond float64 `json:"events_per_second"`
	// Latencies are over every request that got an answer.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// Failures lists each distinct failure with how often it happened,
	// the first few kinds in the order they were first seen.
	Failures []FloodFailure `json:"failures,omitempty"`
}

// FloodFailure is one kind of failure of a flood.
type FloodFailure struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// Err says whether the flood did its job: nil when every event was
// accepted.
func (s *FloodSummary) Err() error {
	switch {
	case s.Sent < s.Requested:
		return fmt.Errorf("interrupted after %d of %d events (%d accepted)", s.Sent, s.Requested, s.Accepted)
	case s.Accepted < s.Requested:
		return fmt.Errorf("%d of %d events were not accepted", s.Requested-s.Accepted, s.Requested)
	}
	return nil
}

// Flood sends opts.Events random events through c, concurrently or, with
// Slow, one at a time, and summarises the answers. It sends each request
// as c is configured: a client with MaxAttempts 1 sends each once, so
// that every refusal is counted. It stops early when ctx ends; it returns
// an error only for options it refuses (an *OptionsError).
func Flood(ctx context.Context, c *client.Client, opts FloodOptions) (*FloodSummary, error) {
	opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rng := NewRand(opts.Seed)
	stats := &floodStats{latencies: make([]time.Duration, 0, opts.Events), failures: map[string]int{}}
	start := time.Now()
	stopProgress := func() {}
	if opts.Progress != nil {
		p := &floodProgress{w: opts.Progress, tty: opts.Terminal, total: opts.Events, stats: stats, start: start}
		stopProgress = p.run()
	}
	if opts.Slow {
		floodSlow(ctx, c, rng, opts, stats)
	} else {
		floodConcurrent(ctx, c, rng, opts, stats)
	}
	elapsed := time.Since(start)
	stopProgress()
	return stats.summary(opts.Events, elapsed), nil
}

// floodSlow sends one event every opts.Interval.
func floodSlow(ctx context.Context, c *client.Client, rng *rand.Rand, opts FloodOptions, stats *floodStats) {
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for i := range opts.Events {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
		postOne(ctx, c, RandomEvent(rng), stats)
	}
}

// floodConcurrent sends from opts.Concurrency workers. Events are drawn
// here, in one goroutine, since the generator is not safe for concurrent
// use; workers only send.
func floodConcurrent(ctx context.Context, c *client.Client, rng *rand.Rand, opts FloodOptions, stats *floodStats) {
	jobs := make(chan []api.EventInput)
	var wg sync.WaitGroup
	for range opts.Concurrency {
		wg.Go(func() {
			for evs := range jobs {
				if opts.Batch == 1 {
					postOne(ctx, c, evs[0], stats)
				} else {
					postBatch(ctx, c, evs, stats)
				}
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	for sent := 0; sent < opts.Events; {
		evs := make([]api.EventInput, 0, min(opts.Batch, opts.Events-sent))
		for len(evs) < cap(evs) {
			evs = append(evs, RandomEvent(rng))
		}
		select {
		case jobs <- evs:
			sent += len(evs)
		case <-ctx.Done():
			return
		}
	}
}

func postOne(ctx context.Context, c *client.Client, ev api.EventInput, stats *floodStats) {
	start := time.Now()
	_, err := c.Post(ctx, ev)
	stats.record(time.Since(start), err)
}

// postBatch posts events as one JSON array and records each event's
// outcome from the per-event results.
func postBatch(ctx context.Context, c *client.Client, evs []api.EventInput, stats *floodStats) {
	start := time.Now()
	resp, err := c.PostBatch(ctx, evs)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == 422 && resp.Results != nil {
		err = nil // none accepted: the results say why
	}
	d := time.Since(start)
	if err == nil && len(resp.Results) != len(evs) {
		err = fmt.Errorf("the service answered %d results for %d events", len(resp.Results), len(evs))
	}
	if err != nil {
		for range evs {
			stats.record(d, err)
		}
		return
	}
	for _, r := range resp.Results {
		if r.ID != "" {
			stats.record(d, nil)
		} else {
			stats.record(d, &client.Error{Status: 422, Message: r.Error + ": " + r.Reason, Reason: r.Reason})
		}
	}
}

// floodStats collects outcomes from concurrent senders. Counters are
// atomic so the progress display reads them without stopping senders.
type floodStats struct {
	sent, accepted, rejected, errors atomic.Int64

	mu        sync.Mutex
	latencies []time.Duration
	failures  map[string]int
	order     []string // failure messages in first-seen order
}

// maxFailureKinds bounds the distinct failure messages kept: a flood of
// N different messages is summarised by its first few.
const maxFailureKinds = 10

func (s *floodStats) record(latency time.Duration, err error) {
	s.sent.Add(1)
	var ae *client.Error
	answered := err == nil || errors.As(err, &ae)
	switch {
	case err == nil:
		s.accepted.Add(1)
	case ae != nil && ae.Status >= 400 && ae.Status < 500:
		s.rejected.Add(1)
	default:
		s.errors.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if answered {
		s.latencies = append(s.latencies, latency)
	}
	if err != nil {
		msg := err.Error()
		if _, ok := s.failures[msg]; !ok && len(s.order) < maxFailureKinds {
			s.order = append(s.order, msg)
		}
		s.failures[msg]++
	}
}

func (s *floodStats) summary(requested int, elapsed time.Duration) *FloodSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := &FloodSummary{
		Requested:      requested,
		Sent:           int(s.sent.Load()),
		Accepted:       int(s.accepted.Load()),
		Rejected:       int(s.rejected.Load()),
		Errors:         int(s.errors.Load()),
		ElapsedSeconds: round3(elapsed.Seconds()),
	}
	if elapsed > 0 {
		sum.EventsPerSecond = round3(float64(sum.Accepted) / elapsed.Seconds())
	}
	lat := slices.Clone(s.latencies)
	slices.Sort(lat)
	sum.LatencyP50Ms = ms(percentile(lat, 0.50))
	sum.LatencyP99Ms = ms(percentile(lat, 0.99))
	for _, msg := range s.order {
		sum.Failures = append(sum.Failures, FloodFailure{Error: msg, Count: s.failures[msg]})
	}
	return sum
}

// floodProgress shows how far a flood has got: on a terminal a bar
// redrawn in place at most every barEvery, otherwise a plain line at
// most every lineEvery, so logs are not flooded.
type floodProgress struct {
	w     io.Writer
	tty   bool
	total int
	stats *floodStats
	start time.Time
}

const (
	barEvery  = 100 * time.Millisecond
	lineEvery = time.Second
	barWidth  = 30
)

// run draws until the returned func is called, which draws the final
// state on a terminal and ends the bar's line.
func (p *floodProgress) run() (stop func()) {
	every := lineEvery
	if p.tty {
		every = barEvery
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-done:
				if p.tty {
					p.draw()
					fmt.Fprintln(p.w)
				}
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func (p *floodProgress) draw() {
	sent := int(p.stats.sent.Load())
	acc, rej, errs := p.stats.accepted.Load(), p.stats.rejected.Load(), p.stats.errors.Load()
	rate := 0.0
	if el := time.Since(p.start).Seconds(); el > 0 {
		rate = float64(acc) / el
	}
	if !p.tty {
		fmt.Fprintf(p.w, "flood: %d/%d sent, %d accepted, %d rejected, %d errors, %.0f events/s\n", sent, p.total, acc, rej, errs, rate)
		return
	}
	filled := barWidth * sent / max(p.total, 1)
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	fmt.Fprintf(p.w, "\r[%s] %d/%d %3d%%  accepted %d  rejected %d  errors %d  %.0f/s ",
		bar, sent, p.total, 100*sent/max(p.total, 1), acc, rej, errs, rate)
}
