package httpapi_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"
)

// BenchmarkCreateEvent measures POST /events in the handler alone: read,
// decode, the pipeline, publish to in-process queues over the memory
// store, answer; consumers store in the background.
func BenchmarkCreateEvent(b *testing.B) {
	const body = `{"actor":"user:000042@example.com","action":"document.update","resource_type":"document","resource_id":"doc-00000042","event_type":"audit.document.update","metadata":{"ip":"192.0.2.17","changed":"title"}}`
	store := memory.New()
	tr, err := inproc.New(b.Context(), inproc.Config{Routing: routing.Default(), Journal: store, Check: ingest.Check, Capacity: 1 << 22})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close(b.Context())
	if err := tr.StartConsumers(b.Context(), "default"); err != nil {
		b.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Publisher: tr, Store: store, Transport: tr.Name(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			api.ServeHTTP(w, httptest.NewRequest("POST", "/events", strings.NewReader(body)))
			if w.Code != 202 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
