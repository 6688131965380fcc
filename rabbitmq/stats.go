package rabbitmq

import (
	"sync/atomic"
	"time"
)

// stats are the transport's counters, read by Stats.
type stats struct {
	reconnects   atomic.Int64
	outstanding  atomic.Int64 // messages awaiting a confirm
	published    atomic.Int64
	publishNanos atomic.Int64
	consumed     atomic.Int64
	batches      atomic.Int64
}

func (s *stats) observePublish(n int, d time.Duration) {
	s.published.Add(int64(n))
	s.publishNanos.Add(int64(d))
}

// Stats is a snapshot of the transport's counters.
type Stats struct {
	Reconnects          int64
	ConfirmsOutstanding int64
	Published           int64
	Consumed            int64
	Batches             int64
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	return Stats{
		Reconnects:          s.reconnects.Load(),
		ConfirmsOutstanding: s.outstanding.Load(),
		Published:           s.published.Load(),
		Consumed:            s.consumed.Load(),
		Batches:             s.batches.Load(),
	}
}
