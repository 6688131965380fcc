package consumer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// DefaultFailingAfter is how long a queue's consumers may fail to settle
// before Health reports them.
const DefaultFailingAfter = 10 * time.Second

// Health records, per queue, whether consumers are settling their batches
// or keep failing, so that /health can say so: a consumer stuck on a batch
// is an outage even when the store answers pings. The zero value is ready
// to use.
type Health struct {
	// FailingAfter is how long a queue must have failed, without a
	// success, to be reported. Defaults to DefaultFailingAfter.
	FailingAfter time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time

	mu      sync.Mutex
	failing map[string]*failure
}

type failure struct {
	since    time.Time
	attempts int
	err      error
}

func (h *Health) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Health) ok(queue string) {
	h.mu.Lock()
	delete(h.failing, queue)
	h.mu.Unlock()
}

func (h *Health) fail(queue string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing == nil {
		h.failing = map[string]*failure{}
	}
	f := h.failing[queue]
	if f == nil {
		f = &failure{since: h.now()}
		h.failing[queue] = f
	}
	f.attempts++
	f.err = err
}

// Ping implements chronicle.Pinger: it fails while a queue's consumers have
// failed to settle for longer than FailingAfter. The client sees which
// queues and for how long; the store's or broker's words go to the cause.
func (h *Health) Ping(context.Context) error {
	after := h.FailingAfter
	if after <= 0 {
		after = DefaultFailingAfter
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var queues []string
	var cause error
	for q, f := range h.failing {
		if d := now.Sub(f.since); d >= after {
			queues = append(queues, fmt.Sprintf("%s (failing for %s, %d attempts)", q, d.Round(time.Second), f.attempts))
			cause = f.err
		}
	}
	if len(queues) == 0 {
		return nil
	}
	sort.Strings(queues)
	return chronicle.Unavailable(time.Second, "consumers keep failing to settle their batches: "+strings.Join(queues, ", "), cause)
}
