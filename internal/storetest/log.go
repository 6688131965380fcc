package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// The verifiable log's behaviour. The tree's hashes come from package
// integrity (golang.org/x/mod/sumdb/tlog); these tests check them with
// another implementation, transparency-dev/merkle.

// WaitForLog waits until the log of s holds size events: a store may
// sequence events in the background (PostgreSQL's integrator).
func WaitForLog(t testing.TB, s chronicle.Store, size int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := s.LogSize(t.Context())
		if err != nil {
			t.Fatalf("LogSize: %v", err)
		}
		if n == size {
			return
		}
		if n > size || time.Now().After(deadline) {
			t.Fatalf("log size %d, want %d", n, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logEvents stores n events, each twice (two routes' copies, in separate
// batches), and waits until they are in the log.
func logEvents(t *testing.T, s chronicle.Store, n int) []*chronicle.Event {
	all, category := Routed(0, n, true)
	for i := 0; i < n; i += 7 {
		mustStore(t, s, all[i:min(i+7, n)]...)
		mustStore(t, s, category[i:min(i+7, n)]...)
	}
	WaitForLog(t, s, int64(n))
	return all
}

// inLog returns the events of the log's first size records, in seq order.
func inLog(t *testing.T, s chronicle.Store, size int64) []*chronicle.Event {
	t.Helper()
	var out []*chronicle.Event
	for from := int64(0); from < size; {
		page, err := s.EventsInLog(ctx(t), from, size, 17)
		if err != nil {
			t.Fatalf("EventsInLog: %v", err)
		}
		if len(page) == 0 {
			t.Fatalf("EventsInLog(%d, %d) is empty", from, size)
		}
		out = append(out, page...)
		from = *page[len(page)-1].Seq + 1
	}
	return out
}

// Every stored event takes one seq, none twice and with no gap, and keeps
// it; a duplicate takes none.
func testLogSequence(t *testing.T, s chronicle.Store) {
	stored := logEvents(t, s, 50)
	got := inLog(t, s, 50)
	seen := map[string]bool{}
	for i, e := range got {
		if e.Seq == nil || *e.Seq != int64(i) {
			t.Fatalf("event %d in the log has seq %v", i, e.Seq)
		}
		if seen[e.ID] {
			t.Fatalf("event %s is in the log twice", e.ID)
		}
		seen[e.ID] = true
	}
	for _, e := range stored {
		if !seen[e.ID] {
			t.Fatalf("stored event %s is not in the log", e.ID)
		}
		one, err := s.Event(ctx(t), e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if one.Seq == nil || got[*one.Seq].ID != e.ID {
			t.Fatalf("event %s reads with seq %v", e.ID, one.Seq)
		}
	}
	page := list(t, s, chronicle.EventFilter{})
	if len(page) == 0 || page[0].Seq == nil {
		t.Fatalf("a listed event has no seq")
	}
	// Storing the same events again changes nothing.
	mustStore(t, s, stored...)
	time.Sleep(50 * time.Millisecond)
	WaitForLog(t, s, 50)
}

// The tree's root and proofs check out with another implementation.
func testLogTree(t *testing.T, s chronicle.Store) {
	events := logEvents(t, s, 37)
	logged := inLog(t, s, 37)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	roots := map[int64][]byte{}
	for i, e := range logged {
		leaf := integrity.LeafHash(e)
		want := rfc6962.DefaultHasher.HashLeaf(integrity.Canonical(e))
		if !slices.Equal(leaf[:], want) {
			t.Fatalf("leaf hash of %s differs from RFC 6962's", e.ID)
		}
		if err := r.Append(leaf[:], nil); err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		roots[int64(i+1)] = root
	}
	for _, size := range []int64{1, 2, 13, 32, 37} {
		root, err := integrity.TreeHash(ctx(t), s, size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(root[:], roots[size]) {
			t.Fatalf("root of the tree of %d: %x, want %x", size, root, roots[size])
		}
	}
	for _, c := range []struct{ seq, size int64 }{{0, 1}, {0, 37}, {12, 13}, {20, 32}, {36, 37}, {5, 37}} {
		p, err := integrity.InclusionProof(ctx(t), s, c.seq, c.size)
		if err != nil {
			t.Fatal(err)
		}
		leaf := integrity.LeafHash(logged[c.seq])
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(c.seq), uint64(c.size), leaf[:], raw(p), roots[c.size]); err != nil {
			t.Fatalf("inclusion of %d in %d: %v", c.seq, c.size, err)
		}
	}
	for _, c := range []struct{ from, to int64 }{{1, 37}, {13, 32}, {32, 37}, {36, 37}, {37, 37}} {
		p, err := integrity.ConsistencyProof(ctx(t), s, c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(c.from), uint64(c.to), raw(p), roots[c.from], roots[c.to]); err != nil {
			t.Fatalf("consistency of %d with %d: %v", c.from, c.to, err)
		}
	}
	_ = events
}

func raw(p []chronicle.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// A store keeps every checkpoint, one per size.
func testLogCheckpoints(t *testing.T, s chronicle.Store) {
	if _, err := s.Checkpoint(ctx(t), -1); !errors.Is(err, chronicle.ErrNotFound) {
		t.Fatalf("latest checkpoint of an empty store: %v, want ErrNotFound", err)
	}
	at := base
	for _, c := range []chronicle.Checkpoint{{Size: 0, Note: []byte("zero\n")}, {Size: 10, Note: []byte("ten\n")},
		{Size: 10, Note: []byte("another ten\n")}, {Size: 4, Note: []byte("four\n")}} {
		c.CreatedAt = at
		if err := s.SaveCheckpoint(ctx(t), &c); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := s.Checkpoint(ctx(t), -1)
	if err != nil || latest.Size != 10 || string(latest.Note) != "ten\n" || !latest.CreatedAt.Equal(at) {
		t.Fatalf("latest checkpoint: %+v, %v", latest, err)
	}
	if c, err := s.Checkpoint(ctx(t), 4); err != nil || string(c.Note) != "four\n" {
		t.Fatalf("checkpoint 4: %+v, %v", c, err)
	}
	if _, err := s.Checkpoint(ctx(t), 5); !errors.Is(err, chronicle.ErrNotFound) {
		t.Fatalf("checkpoint 5: %v, want ErrNotFound", err)
	}
	cps, err := s.Checkpoints(ctx(t), 1, 10)
	if err != nil || len(cps) != 2 || cps[0].Size != 4 || cps[1].Size != 10 {
		t.Fatalf("checkpoints from 1: %+v, %v", cps, err)
	}
}

// The first key is the log's; another replaces it only when rotating.
func testLogKeys(t *testing.T, s chronicle.Store) {
	for _, c := range []struct {
		key    string
		rotate bool
		want   string
	}{{"a+1+AAAA", false, "a+1+AAAA"}, {"b+2+BBBB", false, "a+1+AAAA"}, {"a+1+AAAA", false, "a+1+AAAA"},
		{"b+2+BBBB", true, "b+2+BBBB"}, {"a+1+AAAA", false, "b+2+BBBB"}, {"a+1+AAAA", true, "a+1+AAAA"}} {
		got, err := s.TrustKey(ctx(t), c.key, c.rotate)
		if err != nil || got != c.want {
			t.Fatalf("TrustKey(%q, %v) = %q, %v; want %q", c.key, c.rotate, got, err, c.want)
		}
	}
}

// A redacted event keeps its place and leaf; its redaction is recorded in
// the log.
func testLogRedact(t *testing.T, s chronicle.Store) {
	events := logEvents(t, s, 5)
	victim := events[2]
	before, err := integrity.TreeHash(ctx(t), s, 5)
	if err != nil {
		t.Fatal(err)
	}
	record := NewEvent(time.Hour, func(e *chronicle.Event) {
		e.EventType, e.Actor, e.Action = chronicle.EventTypeRedaction, "admin", "redact"
		e.ResourceType, e.ResourceID = "event", victim.ID
	})
	r := chronicle.Redaction{By: "admin", At: base.Add(time.Hour), Reason: "GDPR erasure", RecordID: record.ID}
	if err := s.Redact(ctx(t), victim.ID, r, record); err != nil {
		t.Fatal(err)
	}
	WaitForLog(t, s, 6)
	got, err := s.Event(ctx(t), victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Redacted == nil || *got.Redacted != r || got.Actor != "" || got.Metadata != nil || got.Seq == nil ||
		!got.Timestamp.Equal(victim.Timestamp) || got.EventType != victim.EventType {
		t.Fatalf("redacted event reads as %+v (redaction %+v)", got, got.Redacted)
	}
	if after, err := integrity.TreeHash(ctx(t), s, 5); err != nil || after != before {
		t.Fatalf("the tree of 5 changed with the redaction: %v", err)
	}
	logged := inLog(t, s, 6)
	if logged[5].ID != record.ID || logged[5].EventType != chronicle.EventTypeRedaction {
		t.Fatalf("the log's last event is %+v, want the redaction record", logged[5])
	}
	if err := s.Redact(ctx(t), victim.ID, r, NewEvent(2*time.Hour)); !errors.Is(err, chronicle.ErrConflict) {
		t.Fatalf("redacting twice: %v, want ErrConflict", err)
	}
	if err := s.Redact(ctx(t), "01900000-0000-7000-8000-000000000000", r, NewEvent(3*time.Hour)); !errors.Is(err, chronicle.ErrNotFound) {
		t.Fatalf("redacting an unknown event: %v, want ErrNotFound", err)
	}
	WaitForLog(t, s, 6)
}
