package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
)

// BenchmarkStoreEvents measures batched, idempotent event writes (one
// transaction per batch) and reports rows/s.
func BenchmarkStoreEvents(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "b.db"))
			batch := make([]*chronicle.Event, size)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					batch[j] = storetest.NewEvent(time.Duration(i*size+j)*time.Microsecond, func(e *chronicle.Event) {
						e.Metadata = map[string]string{"ip": "192.0.2.17"}
					})
				}
				if err := s.StoreEvents(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkStoreRoutes measures what a store writes for the seed
// topology: every event twice, once from each of its two routes, in
// batches of 100 from each, with and without Message History (each
// route's path). It reports events/s.
func BenchmarkStoreRoutes(b *testing.B) {
	for _, history := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", history), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "b.db"))
			const size = 100
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				all, category := storetest.Routed(i*size, size, history)
				b.StartTimer()
				for _, batch := range [][]*chronicle.Event{all, category} {
					if err := s.StoreEvents(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkJournal measures one journal round trip per message: append,
// then settle (store the event, remove the entry), in batches of 64.
func BenchmarkJournal(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "j.db"))
	const size = 64
	entries := make([]*chronicle.JournalEntry, size)
	events := make([]*chronicle.Event, size)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range entries {
			e := storetest.NewEvent(time.Duration(i*size+j) * time.Microsecond)
			body, _ := e.MarshalJSON()
			events[j] = e
			entries[j] = &chronicle.JournalEntry{Queue: "chronicle.all", Message: chronicle.Message{ID: e.ID, Type: e.EventType, Body: body}}
		}
		if err := s.Append(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
		st := &chronicle.Settlement{Events: events}
		for _, e := range entries {
			st.Remove = append(st.Remove, e.Seq)
		}
		if err := s.Settle(context.Background(), st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
}
