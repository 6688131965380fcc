// Package outbound is Chronicle's way out: Channel Adapters that stream
// the verifiable log to the sinks of the routing file ([[sinks]]), a
// webhook (a JSON array per batch, signed per Standard Webhooks) or files
// (NDJSON, rotated, fsynced), in the chronicle, CloudEvents or OCSF
// format.
//
// Each sink has one delivery loop. It leases the sink from the store (one
// process delivers a sink at a time), reads the log in seq order after
// the sink's cursor, keeps the events whose event_type matches the
// sink's pattern, batches them (batch_size, batch_wait), delivers a
// batch until it succeeds (capped exponential backoff with jitter,
// honouring Retry-After, forever), and only then moves the cursor in the
// store. Delivery is therefore at least once and in log order: a crash
// between a delivery and its cursor's move sends that batch again.
package outbound

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/routing"
)

// Store is what the sinks need of the store: the log to read and the
// cursors to keep.
type Store interface {
	chronicle.Log
	chronicle.SinkStore
}

// Defaults of Config.
const (
	DefaultPollInterval = 50 * time.Millisecond
	DefaultStandby      = time.Second
	// skipSaveEvery bounds how often a cursor moved only over events
	// that did not match the pattern is stored.
	skipSaveEvery = time.Second
	// readPage events at most are read from the log at once.
	readPage = 1000
)

// Config configures a Manager.
type Config struct {
	// Store holds the log and the cursors. Required.
	Store Store
	// Sinks are the sinks to deliver, from the routing file.
	Sinks []*routing.Sink
	// Source names this Chronicle in the events it sends (CloudEvents
	// source): the log's origin. Defaults to "chronicle".
	Source string
	// HTTPClient sends webhooks; its Timeout is each sink's. Defaults to
	// a new http.Client.
	HTTPClient *http.Client
	// PollInterval is how often a caught-up sink looks for new events.
	// Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// Standby is how often a sink that another process delivers tries to
	// take it over. Defaults to DefaultStandby.
	Standby time.Duration
	// Now is the clock of signatures, batching and rotation. Defaults to
	// time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	if c.Source == "" {
		c.Source = "chronicle"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Standby <= 0 {
		c.Standby = DefaultStandby
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Manager runs one delivery loop per sink.
type Manager struct {
	cfg     Config
	runners []*runner
	byName  map[string]*runner
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a Manager for cfg's sinks; Start starts delivering.
func New(cfg Config) (*Manager, error) {
	cfg.withDefaults()
	m := &Manager{cfg: cfg, byName: map[string]*runner{}, stop: func() {}}
	for _, s := range cfg.Sinks {
		enc, err := encoderFor(s.Format, cfg.Source)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		r := &runner{m: m, sink: s, encode: enc, log: cfg.Logger.With("sink", s.Name), status: "starting"}
		m.runners = append(m.runners, r)
		m.byName[s.Name] = r
	}
	return m, nil
}

// Start starts every sink's delivery loop. A file sink whose directory
// cannot be made is an error.
func (m *Manager) Start() error {
	ctx, stop := context.WithCancel(context.Background())
	m.stop = stop
	for _, r := range m.runners {
		var err error
		switch r.sink.Type {
		case routing.SinkWebhook:
			r.out = newWebhook(r.sink, m.cfg.HTTPClient, m.cfg.Now)
		case routing.SinkFile:
			r.out, err = newFileSink(r.sink, m.cfg.Now)
		default:
			err = fmt.Errorf("sink %s: unknown type %q", r.sink.Name, r.sink.Type)
		}
		if err != nil {
			stop()
			m.wg.Wait()
			return err
		}
		m.cfg.Logger.Info("sink", "sink", r.sink.Name, "type", r.sink.Type, "target", r.target(), "format", r.sink.Format,
			"pattern", r.sink.Pattern, "batch_size", r.sink.BatchSize, "batch_wait", r.sink.BatchWait)
		m.wg.Go(func() { r.run(ctx) })
	}
	return nil
}

// Stop ends every delivery loop: a batch being delivered is abandoned (its
// cursor was not moved, so it is sent again at the next start), and a
// file sink closes its file. It returns when the loops have ended or ctx
// is done.
func (m *Manager) Stop(ctx context.Context) error {
	m.stop()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop sinks: %w", ctx.Err())
	}
}

// Len is the number of sinks.
func (m *Manager) Len() int { return len(m.runners) }

// runner delivers one sink.
type runner struct {
	m      *Manager
	sink   *routing.Sink
	encode encoder
	out    interface {
		deliver(ctx context.Context, b *batch) error
		tick(now time.Time) error
		close() error
	}
	log *slog.Logger
	// ahead are events read from the log and not used yet, in seq
	// order; aheadCaughtUp says whether the read that got them reached
	// the log's end. Only the delivery loop uses them.
	ahead         []*chronicle.Event
	aheadCaughtUp bool

	mu              sync.Mutex
	status          string
	cursor          int64
	state           chronicle.SinkState
	delivered       uint64
	redelivered     uint64
	failures        uint64
	lastError       string
	lastErrorAt     time.Time
	lastDeliveredAt time.Time
}

// batch is a formatted batch: its id (the webhook-id, the same on every
// attempt), its events and their records in the sink's format.
type batch struct {
	id      string
	events  []*chronicle.Event
	records [][]byte
	size    int
}

func (r *runner) target() string {
	if w, ok := r.out.(*webhook); ok {
		return w.shown
	}
	return r.sink.Path
}

func (r *runner) setStatus(s string) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// run leases the sink and delivers it until ctx ends; when another
// process holds it, it stands by and tries again.
func (r *runner) run(ctx context.Context) {
	defer func() {
		if err := r.out.close(); err != nil {
			r.log.Warn("sink: close", "err", err)
		}
		r.setStatus("stopped")
	}()
	var standby bool
	for ctx.Err() == nil {
		lease, err := r.m.cfg.Store.LeaseSink(ctx, r.sink.Name)
		switch {
		case errors.Is(err, chronicle.ErrConflict):
			if !standby {
				r.log.Info("sink: another process delivers it; standing by")
				standby = true
			}
			r.setStatus("standby")
			sleep(ctx, jitter(r.m.cfg.Standby))
			continue
		case err != nil:
			if ctx.Err() == nil {
				r.failed(fmt.Errorf("lease: %w", err))
				sleep(ctx, jitter(r.m.cfg.Standby))
			}
			continue
		}
		standby = false
		r.log.Info("sink: this process delivers it")
		err = r.deliverLeased(ctx, lease)
		lease.Release()
		if ctx.Err() == nil {
			r.failed(err)
			r.log.Warn("sink: delivery stopped; leasing again", "err", err)
			sleep(ctx, jitter(r.m.cfg.Standby))
		}
	}
}

// deliverLeased delivers while the lease holds: replays first, then new
// events after the cursor.
func (r *runner) deliverLeased(ctx context.Context, lease chronicle.SinkLease) error {
	st, err := lease.State(ctx)
	if err != nil {
		return err
	}
	r.ahead = nil
	r.mu.Lock()
	r.cursor, r.state, r.status = st.Cursor, st, "delivering"
	r.mu.Unlock()
	// cursor is the stored cursor; pos is how far the log was read,
	// ahead of it when only events that do not match were passed over.
	cursor, pos := st.Cursor, st.Cursor
	lastSaved := r.m.cfg.Now()
	for ctx.Err() == nil {
		if st.Replaying() {
			next, err := r.replay(ctx, st)
			if err != nil {
				return err
			}
			if err := lease.ReplayProgress(ctx, st.ReplayFrom, st.ReplayTo, next); err != nil {
				return err
			}
		} else {
			b, next, caughtUp, err := r.collect(ctx, pos)
			if err != nil {
				return err
			}
			if b != nil {
				b.id = fmt.Sprintf("%s_%d-%d", r.sink.Name, *b.events[0].Seq, *b.events[len(b.events)-1].Seq)
				if err := r.send(ctx, b); err != nil {
					return err // ctx ended
				}
			}
			pos = next
			if next > cursor && (b != nil || r.m.cfg.Now().Sub(lastSaved) >= skipSaveEvery) {
				if err := lease.Advance(ctx, next); err != nil {
					return err
				}
				cursor, lastSaved = next, r.m.cfg.Now()
				r.mu.Lock()
				r.cursor = cursor
				r.mu.Unlock()
			}
			if err := r.out.tick(r.m.cfg.Now()); err != nil {
				r.failed(err)
			}
			if caughtUp && b == nil {
				sleep(ctx, r.m.cfg.PollInterval)
			}
		}
		if st, err = lease.State(ctx); err != nil {
			return err
		}
		r.mu.Lock()
		r.state = st
		r.mu.Unlock()
	}
	return ctx.Err()
}

// matches reports whether e goes to this sink.
func (r *runner) matches(e *chronicle.Event) bool { return routing.Match(r.sink.Pattern, e.EventType) }

// collect reads the log from cursor and returns the next batch (nil when
// no event after cursor matches yet), the cursor after it, and whether it
// reached the end of the log. A batch that is not full waits up to
// batch_wait for more.
func (r *runner) collect(ctx context.Context, cursor int64) (*batch, int64, bool, error) {
	var events []*chronicle.Event
	var deadline time.Time
	scan := cursor
	for pages := 0; ; pages++ {
		// What the last read left over, when it starts where we are:
		// a page is read once, however many batches it makes.
		page, caughtUp := r.ahead, r.aheadCaughtUp
		r.ahead = nil
		if len(page) == 0 || *page[0].Seq != scan {
			var err error
			if page, err = r.m.cfg.Store.EventsInLog(ctx, scan, math.MaxInt64, readPage); err != nil {
				return nil, cursor, false, err
			}
			caughtUp = len(page) < readPage
		}
		for i, e := range page {
			if e.Seq == nil {
				return nil, cursor, false, fmt.Errorf("the log returned event %s without its seq", e.ID)
			}
			scan = *e.Seq + 1
			if r.matches(e) {
				events = append(events, e)
				if len(events) == r.sink.BatchSize {
					r.ahead, r.aheadCaughtUp = page[i+1:], caughtUp
					b, err := r.format(events)
					return b, scan, false, err
				}
			}
		}
		switch {
		case len(events) == 0 && (caughtUp || pages >= 20):
			return nil, scan, caughtUp, nil
		case len(events) == 0 || !caughtUp:
			continue
		}
		now := r.m.cfg.Now()
		if deadline.IsZero() {
			deadline = now.Add(r.sink.BatchWait)
		}
		if !now.Before(deadline) {
			b, err := r.format(events)
			return b, scan, true, err
		}
		sleep(ctx, min(r.m.cfg.PollInterval, deadline.Sub(now)))
		if ctx.Err() != nil {
			return nil, cursor, false, ctx.Err()
		}
	}
}

// replay sends the next batch of the pending replay and returns how far
// it got.
func (r *runner) replay(ctx context.Context, st chronicle.SinkState) (int64, error) {
	var events []*chronicle.Event
	scan := st.ReplayFrom
	for len(events) < r.sink.BatchSize && scan < st.ReplayTo {
		page, err := r.m.cfg.Store.EventsInLog(ctx, scan, st.ReplayTo, readPage)
		if err != nil {
			return scan, err
		}
		if len(page) == 0 {
			scan = st.ReplayTo
			break
		}
		for _, e := range page {
			scan = *e.Seq + 1
			if r.matches(e) {
				events = append(events, e)
				if len(events) == r.sink.BatchSize {
					break
				}
			}
		}
	}
	if len(events) == 0 {
		return scan, nil
	}
	b, err := r.format(events)
	if err != nil {
		return st.ReplayFrom, err
	}
	b.id = fmt.Sprintf("%s_%d-%d_replay_%s", r.sink.Name, *events[0].Seq, *events[len(events)-1].Seq, randomHex())
	return scan, r.send(ctx, b)
}

func randomHex() string {
	var b [6]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *runner) format(events []*chronicle.Event) (*batch, error) {
	b := &batch{events: events, records: make([][]byte, len(events))}
	for i, e := range events {
		rec, err := r.encode(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		b.records[i] = rec
		b.size += len(rec)
	}
	return b, nil
}

// send delivers b until it is delivered or ctx ends, waiting between
// attempts with capped exponential backoff and jitter, or as long as the
// receiver's Retry-After says.
func (r *runner) send(ctx context.Context, b *batch) error {
	for attempt := 1; ; attempt++ {
		err := r.out.deliver(ctx, b)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			r.mu.Lock()
			r.delivered += uint64(len(b.events))
			if attempt > 1 {
				r.redelivered += uint64(len(b.events))
			}
			r.lastDeliveredAt = r.m.cfg.Now()
			r.status = "delivering"
			r.mu.Unlock()
			if attempt > 1 {
				r.log.Info("sink: batch delivered after retries", "webhook_id", b.id, "attempts", attempt, "events", len(b.events),
					"first_seq", *b.events[0].Seq, "last_seq", *b.events[len(b.events)-1].Seq)
			}
			return nil
		}
		var wait time.Duration
		var de *deliveryError
		if errors.As(err, &de) && de.retryAfter > 0 {
			wait = min(de.retryAfter, time.Hour)
		} else {
			wait = backoff(r.sink.BackoffMin, r.sink.BackoffMax, attempt)
		}
		r.failed(err)
		r.log.Warn("sink: delivery failed; retrying", "webhook_id", b.id, "attempt", attempt, "events", len(b.events),
			"retry_in", wait.Round(time.Millisecond), "err", err)
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// failed records a failed attempt.
func (r *runner) failed(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	r.lastError = err.Error()
	r.lastErrorAt = r.m.cfg.Now().UTC()
	r.status = "failing"
}

// backoff is the wait before attempt+1: lo doubled per attempt, capped at
// hi, with "full jitter" between half and all of it.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := hi
	if attempt < 40 {
		d = min(hi, lo<<(attempt-1))
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Status reports every sink: its configuration, where it stands and how
// its delivery goes. Sinks this process does not deliver are read from
// the store.
func (m *Manager) Status(ctx context.Context) ([]api.Sink, error) {
	size, err := m.cfg.Store.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	states, err := m.cfg.Store.SinkStates(ctx)
	if err != nil {
		return nil, err
	}
	stored := map[string]chronicle.SinkState{}
	for _, st := range states {
		stored[st.Name] = st
	}
	out := make([]api.Sink, 0, len(m.runners))
	for _, r := range m.runners {
		s := r.report()
		st := stored[r.sink.Name]
		s.Cursor = st.Cursor // the store's word, whoever delivers it
		s.LogSize = size
		s.Lag = max(size-s.Cursor, 0)
		if st.Replaying() {
			s.ReplayFrom, s.ReplayTo = &st.ReplayFrom, &st.ReplayTo
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *runner) report() api.Sink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return api.Sink{
		Name: r.sink.Name, Type: r.sink.Type, Format: r.sink.Format, Pattern: r.sink.Pattern, Target: r.target(),
		Status: r.status, Cursor: r.cursor, Delivered: r.delivered, Redelivered: r.redelivered, Failures: r.failures,
		LastError: r.lastError, LastErrorAt: r.lastErrorAt, LastDeliveredAt: r.lastDeliveredAt,
	}
}

// Health reports each sink for /health, from what this process knows (no
// store query): a failing sink is shown, and does not make the service
// unhealthy.
func (m *Manager) Health(logSize int64) []api.SinkHealth {
	out := make([]api.SinkHealth, 0, len(m.runners))
	for _, r := range m.runners {
		s := r.report()
		h := api.SinkHealth{Name: s.Name, Status: s.Status}
		if logSize >= 0 && s.Status != "standby" {
			h.Lag = max(logSize-s.Cursor, 0)
		}
		if s.Status == "failing" {
			h.Error = s.LastError
		}
		out = append(out, h)
	}
	return out
}

// Replay asks that the events of sink name with from <= seq < to be sent
// again; to nil is the sink's cursor. The cursor does not move: the
// process delivering the sink sends the range (in batches, with new
// webhook ids) before its next new events. A replay replaces any pending
// one.
func (m *Manager) Replay(ctx context.Context, name string, from int64, to *int64) (api.SinkReplayed, error) {
	if m.byName[name] == nil {
		return api.SinkReplayed{}, chronicle.Errorf(chronicle.ErrNotFound, "no sink named %q", name)
	}
	end := int64(math.MaxInt64)
	if to != nil {
		end = *to
	}
	switch {
	case from < 0:
		return api.SinkReplayed{}, chronicle.Errorf(chronicle.ErrInvalid, "from must be a seq, 0 or more")
	case end <= from:
		return api.SinkReplayed{}, chronicle.Errorf(chronicle.ErrInvalid, "to (%d) must be after from (%d)", end, from)
	}
	st, err := m.cfg.Store.ReplaySink(ctx, name, from, end)
	if err != nil {
		return api.SinkReplayed{}, err
	}
	m.cfg.Logger.Info("sink: replay requested", "sink", name, "from", st.ReplayFrom, "to", st.ReplayTo, "cursor", st.Cursor)
	return api.SinkReplayed{Sink: name, From: st.ReplayFrom, To: max(st.ReplayTo, st.ReplayFrom), Cursor: st.Cursor}, nil
}

// Report is a sink's figures for metrics.
type Report struct {
	Name        string
	Lag         int64
	Delivered   uint64
	Redelivered uint64
	Failures    uint64
}

// Reports returns each sink's figures for metrics; lag from the store.
func (m *Manager) Reports(ctx context.Context) []Report {
	out := make([]Report, 0, len(m.runners))
	sinks, err := m.Status(ctx)
	if err != nil {
		for _, r := range m.runners {
			s := r.report()
			out = append(out, Report{Name: s.Name, Lag: -1, Delivered: s.Delivered, Redelivered: s.Redelivered, Failures: s.Failures})
		}
		return out
	}
	for _, s := range sinks {
		out = append(out, Report{Name: s.Name, Lag: s.Lag, Delivered: s.Delivered, Redelivered: s.Redelivered, Failures: s.Failures})
	}
	return out
}
