package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/integrity"
)

// sign signs a checkpoint of the store's log as it is now.
func sign(t *testing.T, b *bundle, key *integrity.Key) int64 {
	t.Helper()
	size, err := b.store.LogSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root, err := integrity.TreeHash(t.Context(), b.store, size)
	if err != nil {
		t.Fatal(err)
	}
	note, err := key.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveCheckpoint(t.Context(), &chronicle.Checkpoint{Size: size, Note: note, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return size
}

// The log's endpoints answer what they can prove, and say plainly what
// they cannot yet or what a request got wrong.
func TestLogEndpoints(t *testing.T) {
	t.Parallel()
	key, err := integrity.NewKey("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 100, true, func(c *httpapi.Config) { c.LogKey = key.Verifier })
	first := b.post(t, validEvent)
	waitStored(t, b, first)

	expect(t, b.do(t, "GET", "/log/checkpoint", ""), 404, "no signed checkpoint yet")
	expect(t, b.do(t, "GET", "/events/"+first+"/proof", ""), 404, "no signed checkpoint yet")
	sign(t, b, key)
	second := b.post(t, validEvent)
	waitStored(t, b, second)
	r := b.do(t, "GET", "/events/"+second+"/proof", "")
	expect(t, r, 409, "not in the log's tree of 1 events yet")
	if r.header.Get("Retry-After") == "" {
		t.Error("409 without Retry-After")
	}
	sign(t, b, key)

	p := decode[api.Proof](t, expect200(t, b.do(t, "GET", "/events/"+first+"/proof?size=1", "")))
	if p.Seq != 0 || p.TreeSize != 1 || !strings.HasPrefix(p.Checkpoint, "example.com/log\n1\n") {
		t.Fatalf("proof %+v", p)
	}
	expect(t, b.do(t, "GET", "/events/"+first+"/proof?size=7", ""), 404, "no checkpoint of size 7")
	expect(t, b.do(t, "GET", "/events/"+first+"/proof?size=x", ""), 400, "size must be an integer")
	expect(t, b.do(t, "GET", "/events/"+first+"/proof?sizes=1", ""), 400, `unknown query parameter ..sizes..`)
	expect(t, b.do(t, "GET", "/log/consistency?from=2&to=1", ""), 400, "from may not be greater than to")
	expect(t, b.do(t, "GET", "/log/consistency?from=1", ""), 400, "from and to are required")
	expect(t, b.do(t, "GET", "/log/consistency?from=1&to=9", ""), 404, "holds 2 events")
	c := decode[api.Consistency](t, expect200(t, b.do(t, "GET", "/log/consistency?from=1&to=2", "")))
	if c.From != 1 || c.To != 2 || len(c.Proof) != 1 {
		t.Fatalf("consistency %+v", c)
	}
	expect(t, b.do(t, "GET", "/log/leaves?from=0&to=5", ""), 404, "fewer than to=5")
	l := decode[api.Leaves](t, expect200(t, b.do(t, "GET", "/log/leaves", "")))
	if len(l.LeafHashes) != 2 {
		t.Fatalf("leaves %+v", l)
	}
	cps := decode[api.Checkpoints](t, expect200(t, b.do(t, "GET", "/log/checkpoints?from=1", "")))
	if len(cps.Checkpoints) != 2 || cps.Checkpoints[0].Size != 1 {
		t.Fatalf("checkpoints %+v", cps)
	}
	expect(t, b.do(t, "GET", "/events/export?format=xml", ""), 400, "format must be ndjson")

	// Redaction: once, never of a redaction's record, never of nothing.
	expect(t, b.do(t, "POST", "/events/"+first+"/redact", `{"reason":`), 400, "body")
	expect(t, b.do(t, "POST", "/events/"+first+"/redact", `{"reason":"`+strings.Repeat("x", 1001)+`"}`), 400, "at most 1000 bytes")
	red := decode[chronicle.Event](t, expect200(t, b.do(t, "POST", "/events/"+first+"/redact", `{"reason":"erasure"}`)))
	if red.Redacted == nil || red.Actor != "" || red.Redacted.Reason != "erasure" || len(red.LeafHash) != 32 {
		t.Fatalf("redacted: %+v", red)
	}
	expect(t, b.do(t, "POST", "/events/"+first+"/redact", `{}`), 409, "redacted already")
	expect(t, b.do(t, "POST", "/events/"+red.Redacted.RecordID+"/redact", `{}`), 409, "records a redaction")
	expect(t, b.do(t, "POST", "/events/01900000-0000-7000-8000-000000000000/redact", `{}`), 404, "event not found")
}

func expect200(t *testing.T, r response) response {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("got %d %s; want 200", r.status, r.body)
	}
	return r
}
