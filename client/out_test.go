package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
)

const (
	line0 = `{"id":"01900000-0000-7000-8000-000000000000","actor":"a","action":"b","resource_type":"c","resource_id":"d","timestamp":"2026-01-02T03:04:05.000000Z","seq":0}`
	line1 = `{"id":"01900000-0000-7000-8000-000000000001","actor":"a","action":"b","resource_type":"c","resource_id":"d","timestamp":"2026-01-02T03:04:05.000001Z","seq":1}`
)

func exportAll(b *bundle, q ExportQuery) ([]*chronicle.Event, error) {
	var out []*chronicle.Event
	for e, err := range b.c.Export(context.Background(), q) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Export yields what came and tells a complete export from one cut off.
func TestExport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, format string
		events             int
		err                string
	}{
		{"Complete", line0 + "\n" + line1 + "\n" + `{"trailer":{"count":2,"last_seq":1}}` + "\n", "", 2, ""},
		{"Empty", `{"trailer":{"count":0}}` + "\n", "", 0, ""},
		{"NoTrailer", line0 + "\n" + line1 + "\n", "", 2, "cut off after 2 events: it has no trailer"},
		{"WrongCount", line0 + "\n" + `{"trailer":{"count":5,"last_seq":0}}` + "\n", "", 1, "trailer counts 5 events, 1 came"},
		{"OutOfOrder", line1 + "\n" + line0 + "\n", "", 1, "sent seq 0 after 1"},
		{"CSV", "seq,id,timestamp,occurred_at,event_type,actor,action,resource_type,resource_id,correlation_id,entity_key,metadata,redacted,leaf_hash\r\n" +
			`0,01900000-0000-7000-8000-000000000000,2026-01-02T03:04:05.000000Z,,,a,b,c,d,,,"{""k"":""v, w""}",,` + "\r\n" +
			`trailer,,,,,,,,,,,"{""count"":1,""last_seq"":0}",,` + "\r\n", "csv", 1, ""},
		{"CSVCutOff", "seq,id,timestamp,occurred_at,event_type,actor,action,resource_type,resource_id,correlation_id,entity_key,metadata,redacted,leaf_hash\r\n" +
			`0,01900000-0000-7000-8000-000000000000,2026-01-02T03:04:05.000000Z,,,a,b,c,d,,,,,` + "\r\n", "csv", 1, "no trailer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{}, reply{status: 200, body: tc.body})
			got, err := exportAll(b, ExportQuery{Query: Query{Actor: "a", Limit: 5}, Format: tc.format, FromSeq: 3})
			if len(got) != tc.events || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%d events, %v; want %d, %q", len(got), err, tc.events, tc.err)
			}
			if q := b.script.got()[0].URL.Query(); q.Get("actor") != "a" || q.Has("limit") || q.Get("from_seq") != "3" || q.Get("format") != tc.format {
				t.Fatalf("query %v", q)
			}
		})
	}
	b := setup(t, Options{}, reply{status: 400, body: `{"error":"unknown query parameter \"x\""}`})
	if _, err := exportAll(b, ExportQuery{}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a 400: %v", err)
	}
}

// Tail resumes after the last event it yielded, and yields none twice.
func TestTail(t *testing.T) {
	t.Parallel()
	first := "retry: 1000\n\nid: 0\ndata: " + line0 + "\n\n"
	again := "id: 0\ndata: " + line0 + "\n\nid: 1\ndata: " + line1 + "\n\nevent: shutdown\ndata: {\"reason\":\"bye\"}\n\n"
	b := setup(t, Options{}, reply{status: 200, body: first}, reply{status: 503, body: `{"error":"down"}`}, reply{status: 200, body: again},
		reply{status: 400, body: `{"error":"bad"}`})
	var retries []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	var last error
	for e, err := range b.c.Tail(ctx, TailQuery{Query: Query{Actor: "a"}, OnRetry: func(err error, _ time.Duration) { retries = append(retries, err.Error()) }}) {
		if err != nil {
			last = err
			break
		}
		ids = append(ids, e.ID)
	}
	if len(ids) != 2 || !strings.HasSuffix(ids[1], "1") {
		t.Fatalf("yielded %v", ids)
	}
	if last == nil || !strings.Contains(last.Error(), "400") {
		t.Fatalf("ended with %v, want the 400", last)
	}
	reqs := b.script.got()
	var lastIDs []string
	for _, r := range reqs {
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
	}
	// The 503 is retried inside one connection attempt; each stream that
	// ended is resumed after the last event yielded.
	if lastIDs[0] != "" || lastIDs[len(lastIDs)-1] != "1" || lastIDs[1] != "0" {
		t.Fatalf("Last-Event-ID sent: %q", lastIDs)
	}
	if len(retries) < 2 || !strings.Contains(retries[1], "shutdown") {
		t.Fatalf("retries heard: %q", retries)
	}
}
