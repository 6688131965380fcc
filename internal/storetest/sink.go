package storetest

import (
	"errors"
	"testing"

	"github.com/chronicle-audit/chronicle"
)

// testSinkCursors: a sink starts at 0; its lease holder moves its cursor;
// a second lease is refused while the first is held; a released lease
// fails.
func testSinkCursors(t *testing.T, s chronicle.Store) {
	l, err := s.LeaseSink(ctx(t), "siem")
	if err != nil {
		t.Fatalf("LeaseSink: %v", err)
	}
	st, err := l.State(ctx(t))
	if err != nil || st != (chronicle.SinkState{Name: "siem"}) {
		t.Fatalf("State of a new sink = %+v, %v; want cursor 0, no replay", st, err)
	}
	if _, err := s.LeaseSink(ctx(t), "siem"); !errors.Is(err, chronicle.ErrConflict) {
		t.Fatalf("second LeaseSink while held: %v, want ErrConflict", err)
	}
	other, err := s.LeaseSink(ctx(t), "archive")
	if err != nil {
		t.Fatalf("LeaseSink of another sink: %v", err)
	}
	for _, c := range []int64{100, 250} {
		if err := l.Advance(ctx(t), c); err != nil {
			t.Fatalf("Advance(%d): %v", c, err)
		}
	}
	if err := other.Advance(ctx(t), 7); err != nil {
		t.Fatal(err)
	}
	if st, err = l.State(ctx(t)); err != nil || st.Cursor != 250 || st.Replaying() {
		t.Fatalf("State after Advance = %+v, %v; want cursor 250", st, err)
	}
	states, err := s.SinkStates(ctx(t))
	if err != nil || len(states) != 2 || states[0].Name != "archive" || states[0].Cursor != 7 ||
		states[1].Name != "siem" || states[1].Cursor != 250 || states[1].UpdatedAt.IsZero() {
		t.Fatalf("SinkStates = %+v, %v; want archive at 7, siem at 250, by name", states, err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if err := l.Advance(ctx(t), 300); err == nil {
		t.Fatal("Advance on a released lease succeeded")
	}
	l2, err := s.LeaseSink(ctx(t), "siem")
	if err != nil {
		t.Fatalf("LeaseSink after Release: %v", err)
	}
	defer l2.Release()
	defer other.Release()
	if st, err = l2.State(ctx(t)); err != nil || st.Cursor != 250 {
		t.Fatalf("State under a new lease = %+v, %v; want cursor 250", st, err)
	}
}

// testSinkReplay: a replay is cut at the cursor, leaves the cursor alone,
// progresses under the lease, and a newer replay wins over the progress
// of an older one.
func testSinkReplay(t *testing.T, s chronicle.Store) {
	st, err := s.ReplaySink(ctx(t), "fresh", 0, 10)
	if err != nil || st.Replaying() || st.Cursor != 0 {
		t.Fatalf("ReplaySink of a sink that delivered nothing = %+v, %v; want nothing to replay", st, err)
	}
	l, err := s.LeaseSink(ctx(t), "siem")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Advance(ctx(t), 500); err != nil {
		t.Fatal(err)
	}
	st, err = s.ReplaySink(ctx(t), "siem", 100, 1000)
	if err != nil || st.Cursor != 500 || st.ReplayFrom != 100 || st.ReplayTo != 500 {
		t.Fatalf("ReplaySink(100, 1000) = %+v, %v; want [100, 500), cursor 500", st, err)
	}
	if err := l.ReplayProgress(ctx(t), 100, 500, 300); err != nil {
		t.Fatal(err)
	}
	if st, _ = l.State(ctx(t)); st.ReplayFrom != 300 || st.ReplayTo != 500 || st.Cursor != 500 {
		t.Fatalf("after progress to 300: %+v", st)
	}
	// A new request replaces the pending one; progress of the old one
	// (from 300) no longer applies.
	if _, err := s.ReplaySink(ctx(t), "siem", 10, 20); err != nil {
		t.Fatal(err)
	}
	if err := l.ReplayProgress(ctx(t), 300, 500, 500); err != nil {
		t.Fatal(err)
	}
	if st, _ = l.State(ctx(t)); st.ReplayFrom != 10 || st.ReplayTo != 20 {
		t.Fatalf("stale progress changed the new replay: %+v", st)
	}
	if err := l.ReplayProgress(ctx(t), 10, 20, 25); err != nil {
		t.Fatal(err)
	}
	if st, _ = l.State(ctx(t)); st.Replaying() || st.Cursor != 500 {
		t.Fatalf("after the replay ended: %+v; want none pending, cursor 500", st)
	}
}
