package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"

	"github.com/chronicle-audit/chronicle/inproc"
)

// fuzzServer is an API over memory, its consumers not running: what is
// accepted stays in the journal, where the fuzz target can read it.
func fuzzServer(f *testing.F) (*httpapi.Server, *memory.Store) {
	store := memory.New()
	tr, err := inproc.New(f.Context(), inproc.Config{Routing: routing.Default(), Journal: store, Check: ingest.Check, Capacity: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Publisher: tr, Store: store, Queues: tr, DeadLetters: tr, Transport: tr.Name(), Logger: testlog.Warn(f)})
	return api, store
}

// FuzzPostEvents: whatever the body, POST /events answers 202, 400, 413
// or 422 with a JSON error, never a 500 or a panic; and every event it
// accepts holds valid text: the body's text, unaltered.
func FuzzPostEvents(f *testing.F) {
	f.Add([]byte(`{"actor":"a","action":"b","resource_type":"c","resource_id":"d","metadata":{"k":"v"}}`), false)
	f.Add([]byte(`[{"actor":"a","action":"b","resource_type":"c","resource_id":"d"},{"actor":1}]`), false)
	f.Add([]byte("{\"actor\":\"\xff\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"d\"}"), false)
	f.Add([]byte("{\"actor\":\"a\"}\n{\"actor\":\"a\",\"action\":\"b\",\"resource_type\":\"c\",\"resource_id\":\"\\u0000\"}\n"), true)
	api, store := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		req := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
		if ndjson {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		switch w.Code {
		case 202, 422:
		case 400, 413:
			if !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("%d without a JSON error: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("POST /events %q answered %d %s", body, w.Code, w.Body)
		}
		pending, _ := store.Pending(t.Context())
		for _, p := range pending {
			if !utf8.Valid(p.Message.Body) || (bytes.Contains(p.Message.Body, []byte(`\ufffd`)) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) && !bytes.Contains(body, []byte("\uFFFD"))) {
				t.Fatalf("accepted %q as %s", body, p.Message.Body)
			}
		}
		store.Settle(t.Context(), &chronicle.Settlement{Remove: seqs(pending)})
	})
}

func seqs(es []*chronicle.JournalEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// FuzzQuery: whatever the query string, GET /events answers 200 or 400,
// never a 500 or a panic.
func FuzzQuery(f *testing.F) {
	f.Add("actor=a&limit=10")
	f.Add("since=2026-01-02T03:04:05Z&until=x")
	f.Add("cursor=AAAA&resource_id=")
	f.Add("actor=nobody%zz")
	api, _ := fuzzServer(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest("GET", "/events", nil)
		req.URL.RawQuery = rawQuery
		if _, err := url.ParseRequestURI("/events?" + rawQuery); err != nil {
			return // no client could send it
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("GET /events?%s answered %d %s", rawQuery, w.Code, w.Body)
		}
	})
}
