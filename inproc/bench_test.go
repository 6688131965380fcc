package inproc_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"
	"github.com/chronicle-audit/chronicle/sqlite"
)

// BenchmarkIngest measures the ingest path without HTTP: decode, the
// pipeline, Publish (journaled with SQLite), and consumers storing every
// event, for single-event publishes from 64 concurrent producers. It
// reports stored events/s, end to end.
func BenchmarkIngest(b *testing.B) {
	body := []byte(`{"actor":"user:000042@example.com","action":"document.update","resource_type":"document","resource_id":"doc-00000042","metadata":{"ip":"192.0.2.17","changed":"title"}}`)
	for _, store := range []string{"memory", "sqlite"} {
		b.Run("store="+store, func(b *testing.B) {
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			var st chronicle.Store
			switch store {
			case "memory":
				st = memory.New()
			case "sqlite":
				s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{Logger: logger})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				st = s
			}
			tr, err := inproc.New(context.Background(), inproc.Config{Routing: routing.Default(), Journal: st, Check: ingest.Check, Capacity: 1 << 20, Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			if err := tr.StartConsumers(context.Background(), "default"); err != nil {
				b.Fatal(err)
			}
			pipe := ingest.DefaultPipeline(ingest.Stamper{}, ingest.TimeBounds{})
			var last atomic.Value
			b.SetParallelism(32) // 64 producers on 2 cores
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e, err := ingest.Decode(body)
					if err == nil {
						err = pipe.Process(e)
					}
					if err == nil {
						err = tr.Publish(context.Background(), []*chronicle.Event{e})
					}
					if err != nil {
						b.Error(err)
						return
					}
					last.Store(e.ID)
				}
			})
			if err := tr.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			if id, ok := last.Load().(string); ok {
				if _, err := st.Event(context.Background(), id); err != nil {
					b.Fatalf("last event not stored: %v", err)
				}
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
