package integrity

import (
	"fmt"
	"iter"
	"slices"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronicle-audit/chronicle"
)

// Audit checks a log's events against its signed checkpoints, recomputing
// every leaf and root from the events themselves: what `chronicle verify`
// does once it has the checkpoints, and the events from the service or an
// export file.
type Audit struct {
	// Checkpoints are the signed checkpoints to hold the events to, each
	// verified; the trusted one (saved earlier) among them.
	Checkpoints []*Checkpoint
	// Stored, when known, is the leaf hash the store keeps for each seq
	// (nil where it has none): it names the seq a change is at, and tells
	// a changed event from a rewritten log.
	Stored []*chronicle.Hash
}

// Problem kinds, as verify names them.
const (
	Modified         = "modified"  // the content differs from what was logged
	Missing          = "missing"   // no event has this seq
	Inserted         = "inserted"  // an event the log does not hold, or one seq too many
	Reordered        = "reordered" // the content logged at another seq is here
	RedactedNoRecord = "redacted without record"
	Rewritten        = "rewritten" // the log's own hashes differ from what was signed
	Truncated        = "truncated" // events a signed checkpoint holds are gone
)

// Problem is one thing verify found wrong, at Seq.
type Problem struct {
	Seq    int64
	Kind   string
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// Report is what an audit found.
type Report struct {
	// Events is how many events were checked against a signed root.
	Events int64
	// Beyond is how many events came after the largest checkpoint, so no
	// signature covers them yet.
	Beyond int64
	// Redacted are the seqs of redacted events (with their records).
	Redacted []int64
	// Roots is how many checkpoints' roots were recomputed and matched.
	Roots int
	// Unchecked is how many checkpoints' roots could not be recomputed:
	// a missing event's logged leaf is gone too.
	Unchecked int
	Problems  []Problem
}

// OK reports whether nothing was wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds the problems a report lists: the first ones name
// where the damage starts.
const maxProblems = 20

func (r *Report) add(p Problem) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, p)
	}
}

// Run checks events, which must come in seq order, and returns the
// report. It fails only when events does.
func (a *Audit) Run(events iter.Seq2[*chronicle.Event, error]) (*Report, error) {
	cps := slices.Clone(a.Checkpoints)
	slices.SortFunc(cps, func(x, y *Checkpoint) int { return int(x.Size - y.Size) })
	var size int64
	if len(cps) > 0 {
		size = cps[len(cps)-1].Size
	}
	stored := map[chronicle.Hash]int64{}
	for seq, h := range a.Stored {
		if h != nil {
			stored[*h] = int64(seq)
		}
	}
	r := &Report{}
	tree, _ := NewAppender(0, nil)
	next := int64(0) // the seq expected next
	records := map[string]bool{}
	tombstones := map[string]int64{}
	cp := 0 // the next checkpoint to check
	prev := int64(0)
	blind := int64(-1) // the first seq whose logged leaf is unknown: no root after it can be checked
	checkRoots := func() {
		for cp < len(cps) && cps[cp].Size == tree.Size() {
			if blind >= 0 {
				cp++
				continue
			}
			root, _ := tree.Root()
			if root != cps[cp].Root {
				// What the log holds differs from what was signed: its own
				// hashes were changed (with the events, or without a
				// store's leaves to tell which event).
				r.add(Problem{Seq: prev, Kind: Rewritten, Detail: fmt.Sprintf("the events of seq %d to %d do not hash to the root the checkpoint of %d events signed ", prev, cps[cp].Size-1, cps[cp].Size)})
			} else {
				r.Roots++
			}
			prev = cps[cp].Size
			cp++
		}
	}
	checkRoots()
	leafOf := func(seq int64) (chronicle.Hash, bool) {
		if seq < int64(len(a.Stored)) && a.Stored[seq] != nil {
			return *a.Stored[seq], true
		}
		return chronicle.Hash{}, false
	}
	for e, err := range events {
		if err != nil {
			return r, err
		}
		if e.Seq == nil {
			r.add(Problem{Seq: next, Kind: Inserted, Detail: fmt.Sprintf("event %s is not in the log (it has no seq)", e.ID)})
			continue
		}
		seq := *e.Seq
		if e.Redacted == nil && e.EventType == chronicle.EventTypeRedaction && e.ResourceType == "event" {
			records[e.ResourceID] = true
		}
		if seq >= size {
			r.Beyond++
			continue
		}
		if seq < next {
			r.add(Problem{Seq: seq, Kind: Inserted, Detail: fmt.Sprintf("event %s has a seq the export gave already, or came out of order", e.ID)})
			continue
		}
		for ; next < seq; next++ {
			// A missing event: its logged leaf stands in, so the roots
			// still say whether anything else is wrong.
			h, ok := leafOf(next)
			detail := "no event has this seq (deleted?)"
			if !ok && a.Stored != nil {
				detail = "no event has this seq, and the log's record of it is gone too (deleted?)"
			}
			r.add(Problem{Seq: next, Kind: Missing, Detail: detail})
			if !ok && blind < 0 {
				blind = next
			}
			tree.Append(h)
			checkRoots()
		}
		var leaf chronicle.Hash
		if e.Redacted != nil {
			// Its content is gone: the leaf it keeps stands in.
			var ok bool
			if leaf, ok = leafOf(seq); !ok && len(e.LeafHash) == len(leaf) {
				leaf, ok = chronicle.Hash(e.LeafHash), true
			}
			if !ok {
				r.add(Problem{Seq: seq, Kind: Modified, Detail: fmt.Sprintf("event %s is redacted and no leaf hash was kept for it", e.ID)})
			}
			tombstones[e.ID] = seq
			r.Redacted = append(r.Redacted, seq)
		} else {
			leaf = LeafHash(e)
			if want, ok := leafOf(seq); ok && want != leaf {
				if other, found := stored[leaf]; found {
					r.add(Problem{Seq: seq, Kind: Reordered, Detail: fmt.Sprintf("event %s is the event logged at seq %d", e.ID, other)})
				} else {
					r.add(Problem{Seq: seq, Kind: Modified, Detail: fmt.Sprintf("event %s does not match what was logged (a field was changed)", e.ID)})
				}
				// The roots check what was logged: the rest of the log
				// is still held to its signatures.
				leaf = want
			}
		}
		tree.Append(leaf)
		r.Events++
		next = seq + 1
		checkRoots()
	}
	if blind >= 0 && cp < len(cps) {
		r.Unchecked = len(cps) - r.Roots
	}
	if next < size {
		r.add(Problem{Seq: next, Kind: Truncated, Detail: fmt.Sprintf("the events stop at seq %d, and a signed checkpoint holds %d", next, size)})
	}
	for id, seq := range tombstones {
		if !records[id] {
			r.add(Problem{Seq: seq, Kind: RedactedNoRecord, Detail: fmt.Sprintf("event %s is redacted, and no %s event records it", id, chronicle.EventTypeRedaction)})
		}
	}
	slices.SortStableFunc(r.Problems, func(x, y Problem) int { return int(x.Seq - y.Seq) })
	return r, nil
}

// OpenCheckpoints verifies each signed note with v.
func OpenCheckpoints(notes [][]byte, v note.Verifier) ([]*Checkpoint, error) {
	out := make([]*Checkpoint, 0, len(notes))
	for _, n := range notes {
		cp, err := OpenCheckpoint(n, v)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, nil
}
