package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodCommands adds the flood commands.
func floodCommands(register func(*command)) {
	register(&command{
		name:    "flood",
		args:    "[--slow] [N]",
		summary: "send N random events (default 10) concurrently, or one every 500ms with --slow; prints a summary",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Int("concurrency", 10, "requests in flight at once")
			fs.Bool("slow", false, "send one event at a time, every --interval (the seed's flood-slow: watch the competing consumers take turns)")
			fs.Duration("interval", 500*time.Millisecond, "pause between events with --slow")
			fs.Uint64("seed", 0, "seed of the random events, for a reproducible flood (default: random)")
			fs.Int("batch", 1, "events per request: above 1, events go in JSON arrays (one journal commit or confirm round each)")
		},
		run: runFlood,
	})
}

// Bounds of flood's arguments: enough for any load test, small enough
// that a typo cannot run for days.
const (
	maxFloodEvents      = 10_000_000
	maxFloodConcurrency = 1000
)

// floodSummary is what a flood reports, also its --json output.
type floodSummary struct {
	// Requested is N.
	Requested int `json:"requested"`
	// Sent counts the requests made (fewer than Requested when
	// interrupted).
	Sent int `json:"sent"`
	// Accepted counts 2xx answers.
	Accepted int `json:"accepted"`
	// Rejected counts 4xx answers: the service refused the event.
	Rejected int `json:"rejected"`
	// Errors counts transport errors and 5xx answers: the service could
	// not take the event.
	Errors         int     `json:"errors"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// EventsPerSecond is accepted events per second of the whole flood.
	EventsPerSecond float64 `json:"events_per_second"`
	// Latencies are over every request that got an answer.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// Failures lists each distinct failure with how often it happened.
	Failures []floodFailure `json:"failures,omitempty"`
}

type floodFailure struct {
	Error string `json:"error"`
	Count int    `json:"count"`
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
	var ae *apiError
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

func (s *floodStats) summary(requested int, elapsed time.Duration) floodSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := floodSummary{
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
	sum.LatencyP50Ms = round3(ms(percentile(lat, 0.50)))
	sum.LatencyP99Ms = round3(ms(percentile(lat, 0.99)))
	for _, msg := range s.order {
		sum.Failures = append(sum.Failures, floodFailure{Error: msg, Count: s.failures[msg]})
	}
	return sum
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func runFlood(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	n := 10
	switch len(pos) {
	case 0:
	case 1:
		n, err = strconv.Atoi(pos[0])
		if err != nil || n < 1 || n > maxFloodEvents {
			return usagef("N must be a number of events from 1 to %d, not %q", maxFloodEvents, pos[0])
		}
	default:
		return usagef("unexpected argument %q", pos[1])
	}
	conc := flagValue[int](fs, "concurrency")
	if conc < 1 || conc > maxFloodConcurrency {
		return usagef("--concurrency must be from 1 to %d, not %d", maxFloodConcurrency, conc)
	}
	slow := flagValue[bool](fs, "slow")
	batch := flagValue[int](fs, "batch")
	if batch < 1 || batch > 1000 {
		return usagef("--batch must be from 1 to 1000, not %d", batch)
	}
	if slow && batch > 1 {
		return usagef("--slow sends one event at a time: drop --batch")
	}
	interval := flagValue[time.Duration](fs, "interval")
	if slow && interval <= 0 {
		return usagef("--interval must be positive, not %v", interval)
	}
	if slow {
		conc = 1
	}
	c, err := clientFromFlags(env, fs, conc)
	if err != nil {
		return err
	}
	defer c.close()

	rng := newRand(flagValue[uint64](fs, "seed"))
	stats := &floodStats{latencies: make([]time.Duration, 0, n), failures: map[string]int{}}
	send := func(ev eventInput) {
		start := time.Now()
		_, err := postEvent(ctx, c, ev)
		stats.record(time.Since(start), err)
	}

	start := time.Now()
	prog := newFloodProgress(env.Stderr, env.IsTerminal, n, stats, start)
	progDone := make(chan struct{})
	stopProg := make(chan struct{})
	go func() { defer close(progDone); prog.run(stopProg) }()

	if slow {
		tick := time.NewTicker(interval)
		defer tick.Stop()
	slowLoop:
		for i := range n {
			if i > 0 {
				select {
				case <-tick.C:
				case <-ctx.Done():
					break slowLoop
				}
			}
			send(randomEvent(rng))
		}
	} else {
		// Events are drawn here, in one goroutine, since the generator is
		// not safe for concurrent use; workers only send.
		jobs := make(chan []eventInput)
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for evs := range jobs {
					if len(evs) == 1 && batch == 1 {
						send(evs[0])
					} else {
						sendBatch(ctx, c, evs, stats)
					}
				}
			})
		}
	dispatch:
		for sent := 0; sent < n; {
			evs := make([]eventInput, 0, min(batch, n-sent))
			for len(evs) < cap(evs) {
				evs = append(evs, randomEvent(rng))
			}
			select {
			case jobs <- evs:
				sent += len(evs)
			case <-ctx.Done():
				break dispatch
			}
		}
		close(jobs)
		wg.Wait()
	}
	elapsed := time.Since(start)
	close(stopProg)
	<-progDone

	sum := stats.summary(n, elapsed)
	if flagValue[bool](fs, "json") {
		if err := writeJSON(env.Stdout, sum); err != nil {
			return err
		}
	} else {
		printFloodSummary(env.Stdout, sum)
		for _, f := range sum.Failures {
			fmt.Fprintf(env.Stderr, "chronicle flood: %d× %s\n", f.Count, f.Error)
		}
	}
	switch {
	case ctx.Err() != nil && sum.Sent < n:
		return fmt.Errorf("interrupted after %d of %d events (%d accepted)", sum.Sent, n, sum.Accepted)
	case sum.Accepted < n:
		return fmt.Errorf("%d of %d events were not accepted", n-sum.Accepted, n)
	}
	return nil
}

// sendBatch posts events as one JSON array and records each event's
// outcome from the per-event results.
func sendBatch(ctx context.Context, c *client, evs []eventInput, stats *floodStats) {
	start := time.Now()
	var resp struct {
		Results []struct {
			ID     string `json:"id"`
			Error  string `json:"error"`
			Reason string `json:"reason"`
		} `json:"results"`
	}
	_, err := c.do(ctx, "POST", "/events", evs, &resp)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 422 {
		_ = json.Unmarshal(ae.Body, &resp)
		err = nil
	}
	d := time.Since(start)
	if err != nil || len(resp.Results) != len(evs) {
		if err == nil {
			err = fmt.Errorf("the service answered %d results for %d events", len(resp.Results), len(evs))
		}
		for range evs {
			stats.record(d, err)
		}
		return
	}
	for _, r := range resp.Results {
		if r.ID != "" {
			stats.record(d, nil)
		} else {
			stats.record(d, &apiError{Status: 422, Message: r.Error + ": " + r.Reason})
		}
	}
}

func printFloodSummary(w io.Writer, s floodSummary) {
	fmt.Fprintf(w, "sent      %d\n", s.Sent)
	fmt.Fprintf(w, "accepted  %d\n", s.Accepted)
	fmt.Fprintf(w, "rejected  %d\n", s.Rejected)
	fmt.Fprintf(w, "errors    %d\n", s.Errors)
	fmt.Fprintf(w, "elapsed   %.3fs\n", s.ElapsedSeconds)
	fmt.Fprintf(w, "rate      %.1f events/s\n", s.EventsPerSecond)
	fmt.Fprintf(w, "latency   p50 %.2fms  p99 %.2fms\n", s.LatencyP50Ms, s.LatencyP99Ms)
}

// floodProgress shows how far a flood has got on stderr: on a terminal a
// bar redrawn in place at most every barEvery, otherwise a plain line at
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

func newFloodProgress(w io.Writer, tty bool, total int, stats *floodStats, start time.Time) *floodProgress {
	return &floodProgress{w: w, tty: tty, total: total, stats: stats, start: start}
}

// run draws until stop closes, then draws the final state on a terminal
// and ends the bar's line.
func (p *floodProgress) run(stop <-chan struct{}) {
	every := lineEvery
	if p.tty {
		every = barEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw()
		case <-stop:
			if p.tty {
				p.draw()
				fmt.Fprintln(p.w)
			}
			return
		}
	}
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
