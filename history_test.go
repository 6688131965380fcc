package chronicle_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Hops travel in a compact form: every detail, and the time to the
// microsecond, come back as they were.
func TestHistoryRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	hops := []chronicle.Hop{
		{Hop: chronicle.HopAccepted, At: at, Process: "host:1", RequestID: "req-1", APIKey: "sha256:ab12"},
		{Hop: chronicle.HopPublished, At: at.Add(time.Millisecond), Transport: "rabbitmq", Exchange: "audit_events", RoutingKey: "a.b", Queues: []string{"q1", "q2"}},
		{Hop: chronicle.HopConsumed, At: at.Add(2 * time.Millisecond), Process: "h:2", Queue: "q1", Worker: "0", Delivery: 3},
		{Hop: chronicle.HopDeadLettered, At: at.Add(3 * time.Millisecond), Queue: "q1", Reason: "parse error: invalid character '\"' <&> \x01 é \u2028"},
		{Hop: chronicle.HopReplayed, At: at.Add(time.Hour), By: "ops", Queue: "q1"},
		{Hop: chronicle.HopStored, At: at.Add(time.Hour + time.Second), Process: "h:2", Store: "sqlite", Batch: 17, Queue: "q1"},
		{Hop: chronicle.HopAccepted, At: at.Add(2 * time.Hour), Process: "h:3", Queue: "q2", Clock: chronicle.ClockConsumer},
	}
	var h chronicle.History
	for _, hop := range hops {
		if hop.Hop == chronicle.HopStored {
			hop.Process = "" // as consumers write it: their consumed hop names the process
		}
		h = h.Append(hop)
	}
	if !json.Valid(h) {
		t.Fatalf("invalid JSON: %s", h)
	}
	got, err := h.Hops()
	if err != nil {
		t.Fatal(err)
	}
	for i := range hops {
		want := hops[i]
		want.At = want.At.UTC().Truncate(time.Microsecond)
		g, _ := got[i].MarshalJSON()
		w, _ := want.MarshalJSON()
		if string(g) != string(w) {
			t.Errorf("hop %d:\n got %s\nwant %s", i, g, w)
		}
	}
	t.Logf("%d hops in %d bytes: %s", len(hops), len(h), h)
}

// Only Chronicle's transports add a published hop; a detail that spells
// one out is text, not a hop.
func TestHistoryPublished(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	foreign := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopConsumed, At: at, Queue: "q"},
		chronicle.Hop{Hop: chronicle.HopDeadLettered, At: at, Queue: "q", Reason: `invalid field: {"h":"p"}`},
		chronicle.Hop{Hop: chronicle.HopReplayed, At: at, Queue: "q"})
	published := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopAccepted, At: at},
		chronicle.Hop{Hop: chronicle.HopPublished, At: at, Transport: "rabbitmq"})
	if chronicle.History(nil).Published() || foreign.Published() || !published.Published() || !foreign.Concat(published).Published() {
		t.Fatalf("Published: nil %t, foreign %t (%s), published %t", chronicle.History(nil).Published(), foreign.Published(), foreign, published.Published())
	}
}

// Append and Concat build one JSON array; Hops reads it back in time
// order, with the hops that paths share once.
func TestHistory(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	shared := chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopAccepted, At: at})
	a := shared.Append(chronicle.Hop{Hop: chronicle.HopStored, At: at.Add(2 * time.Millisecond), Queue: "a"})
	b := shared.Append(chronicle.Hop{Hop: chronicle.HopStored, At: at.Add(time.Millisecond), Queue: "b"})
	if !json.Valid(a) || !json.Valid(a.Concat(b)) || string(chronicle.History(nil).Concat(a)) != string(a) {
		t.Fatalf("invalid JSON: %s / %s", a, a.Concat(b))
	}
	hops, err := a.Concat(b).Hops()
	if err != nil {
		t.Fatal(err)
	}
	if len(hops) != 3 || hops[0].Hop != chronicle.HopAccepted || hops[1].Queue != "b" || hops[2].Queue != "a" {
		t.Fatalf("hops = %+v", hops)
	}
}

// A second route's path is kept as a branch of the first: its shared
// trunk (accepted, published) goes, and the joined history is the one the
// whole paths give.
func TestHistoryBranch(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	trunk := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopAccepted, At: at, Process: "h:1", RequestID: "r"},
		chronicle.Hop{Hop: chronicle.HopPublished, At: at.Add(time.Millisecond), Transport: "inproc", Queues: []string{"q1", "q2"}})
	path := func(q string, d time.Duration) chronicle.History {
		return trunk.AppendHops(
			chronicle.Hop{Hop: chronicle.HopConsumed, At: at.Add(d), Process: "h:2", Queue: q},
			chronicle.Hop{Hop: chronicle.HopStored, At: at.Add(d + time.Millisecond), Store: "sqlite", Batch: 2})
	}
	first, second := path("q1", 5*time.Millisecond), path("q2", 9*time.Millisecond)
	// A path through another trunk (a foreign message accepted by each
	// route's consumer) stays whole.
	other := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopAccepted, At: at.Add(time.Hour), Process: "h:3", Clock: chronicle.ClockConsumer},
		chronicle.Hop{Hop: chronicle.HopConsumed, At: at.Add(time.Hour + time.Millisecond), Process: "h:3", Queue: "q3"})

	branch := second.Branch(first)
	if len(branch) >= len(second)/2+20 || string(branch[:8]) != `[{"h":"c` {
		t.Fatalf("branch of %s\nis %s", second, branch)
	}
	if got := other.Branch(first); string(got) != string(other) {
		t.Fatalf("a path with another trunk became %s", got)
	}
	if got := first.Branch(nil); string(got) != string(first) {
		t.Fatalf("a branch of nothing: %s", got)
	}

	want, err := first.Concat(other).Concat(second).Hops()
	if err != nil {
		t.Fatal(err)
	}
	// Whatever order the store gives the others in.
	for _, others := range [][]chronicle.History{{other, branch}, {branch, other}} {
		got, err := chronicle.JoinPaths(first, others).Hops()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("joined:\n got %s\nwant %s", g, w)
		}
	}
}
