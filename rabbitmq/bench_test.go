package rabbitmq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/internal/transporttest"
	"github.com/chronicle-audit/chronicle/rabbitmq"
)

// BenchmarkPublish measures confirmed, persistent single-event publishes
// from 64 concurrent producers (the HTTP handler pattern) and reports
// messages/s, for several sizes of the channel pool.
func BenchmarkPublish(b *testing.B) {
	for _, c := range []struct {
		queue string
		chans int
	}{{"classic", 4}, {"classic", 64}, {"quorum", 4}, {"quorum", 64}} {
		queue, chans := c.queue, c.chans
		b.Run(fmt.Sprintf("queue=%s/channels=%d", queue, chans), func(b *testing.B) {
			u, _ := rabbitmqVhost(b)
			tr, err := rabbitmq.New(context.Background(), rabbitmq.Config{URL: u, Routing: singleRouteConfig(b, queue), PublishChannels: chans})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close(context.Background())
			b.SetParallelism(32)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tr.Publish(context.Background(), []*chronicle.Event{transporttest.NewEvent("document.viewed")}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkConsume measures draining a queue of b.N messages into a store
// (memory: the transport's own cost) by the role's competing consumers:
// batched deliveries, one store call and one multiple-ack per batch.
func BenchmarkConsume(b *testing.B) {
	for _, queue := range []string{"classic", "quorum"} {
		b.Run("queue="+queue, func(b *testing.B) {
			u, _ := rabbitmqVhost(b)
			rec := transporttest.NewRecorder()
			tr, err := rabbitmq.New(context.Background(), rabbitmq.Config{URL: u, Routing: singleRouteConfig(b, queue), Store: rec, Check: ingest.Check, ConsumerCount: 3})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close(context.Background())
			batch := make([]*chronicle.Event, 0, 500)
			var last string
			for i := 0; i < b.N; i++ {
				e := transporttest.NewEvent("document.viewed")
				batch = append(batch, e)
				last = e.ID
				if len(batch) == cap(batch) || i == b.N-1 {
					if err := tr.Publish(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			b.ResetTimer()
			start := time.Now()
			if err := tr.StartConsumers(context.Background(), "default"); err != nil {
				b.Fatal(err)
			}
			for !rec.Stored(last) || tr.Stats().Consumed < int64(b.N) {
				time.Sleep(time.Millisecond)
				if time.Since(start) > 2*time.Minute {
					b.Fatal("not drained")
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(tr.Stats().Consumed)/float64(tr.Stats().Batches), "msgs/batch")
		})
	}
}
