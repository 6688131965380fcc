package integrity

import (
	"context"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/chronicle-audit/chronicle"
)

// A record's hashes are kept with it: its leaf hash, then the hash of
// every subtree the record completes (tlog.StoredHashes), at most
// 1+log₂ n of them; the record with seq n holds the stored hashes from
// tlog.StoredHashIndex(0, n) on. A store keeps them as one value per
// record, the hashes one after the other.

// Locate returns where the stored hash at index is kept: with record seq,
// at position level among its hashes.
func Locate(index int64) (seq int64, level int) {
	level, n := tlog.SplitStoredHashIndex(index)
	return (n+1)<<level - 1, level
}

// HashAt returns the hash at position level of a record's stored hashes.
func HashAt(stored []byte, level int) (chronicle.Hash, error) {
	var h chronicle.Hash
	if len(stored) < (level+1)*len(h) {
		return h, fmt.Errorf("record has %d bytes of hashes, not the %d the hash at level %d needs", len(stored), (level+1)*len(h), level)
	}
	copy(h[:], stored[level*len(h):])
	return h, nil
}

// Frontier returns the stored-hash indexes of the roots of the complete
// subtrees a tree of size records is made of, largest first: all an
// Appender needs to know of the tree.
func Frontier(size int64) []int64 {
	var out []int64
	lo := int64(0)
	for level := 62; level >= 0; level-- {
		if size&(1<<level) != 0 {
			out = append(out, tlog.StoredHashIndex(level, lo>>level))
			lo += 1 << level
		}
	}
	return out
}

// Appender adds records to a tree, computing the hashes each must keep.
// It holds the tree's frontier, so appending reads nothing from the
// store. It is not safe for concurrent use: a log has one appender at a
// time (the store's single writer, or the integrator holding the lock).
type Appender struct {
	size   int64
	hashes map[int64]tlog.Hash // the frontier, and what was appended since
}

// NewAppender returns an Appender for a tree of size records whose
// frontier (the hashes at Frontier(size)) is given.
func NewAppender(size int64, frontier []chronicle.Hash) (*Appender, error) {
	idx := Frontier(size)
	if len(frontier) != len(idx) {
		return nil, fmt.Errorf("tree of size %d: %d frontier hashes, want %d", size, len(frontier), len(idx))
	}
	a := &Appender{size: size, hashes: make(map[int64]tlog.Hash, 64)}
	for i, x := range idx {
		a.hashes[x] = tlog.Hash(frontier[i])
	}
	return a, nil
}

// Size is the number of records in the tree: the seq of the next.
func (a *Appender) Size() int64 { return a.size }

// Append adds the record whose leaf hash is leaf and returns its seq and
// the hashes it keeps.
func (a *Appender) Append(leaf chronicle.Hash) (seq int64, stored []byte, err error) {
	seq = a.size
	hashes, err := tlog.StoredHashesForRecordHash(seq, tlog.Hash(leaf), a)
	if err != nil {
		return 0, nil, err
	}
	stored = make([]byte, 0, len(hashes)*tlog.HashSize)
	first := tlog.StoredHashIndex(0, seq)
	for i, h := range hashes {
		a.hashes[first+int64(i)] = h
		stored = append(stored, h[:]...)
	}
	a.size++
	if len(a.hashes) > 4*64 {
		a.prune()
	}
	return seq, stored, nil
}

// ReadHashes implements tlog.HashReader over what the Appender holds.
func (a *Appender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := a.hashes[x]
		if !ok {
			return nil, fmt.Errorf("integrity: hash %d is not on the frontier of a tree of size %d", x, a.size)
		}
		out[i] = h
	}
	return out, nil
}

// Root is the tree's root hash.
func (a *Appender) Root() (chronicle.Hash, error) {
	h, err := tlog.TreeHash(a.size, a)
	return chronicle.Hash(h), err
}

// prune forgets every hash that is not on the frontier.
func (a *Appender) prune() {
	keep := make(map[int64]tlog.Hash, bits.OnesCount64(uint64(a.size))+64)
	for _, x := range Frontier(a.size) {
		keep[x] = a.hashes[x]
	}
	a.hashes = keep
}

// LogReader reads a store's log hashes as a tlog.HashReader.
func LogReader(ctx context.Context, log chronicle.Log) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := log.LogHashes(ctx, indexes)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = tlog.Hash(h)
		}
		return out, nil
	})
}

// OpenAppender returns an Appender for the log as the store holds it now.
func OpenAppender(ctx context.Context, log chronicle.Log) (*Appender, error) {
	size, err := log.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	frontier, err := log.LogHashes(ctx, Frontier(size))
	if err != nil {
		return nil, err
	}
	return NewAppender(size, frontier)
}

// TreeHash returns the root hash of the log's first size records.
func TreeHash(ctx context.Context, log chronicle.Log, size int64) (chronicle.Hash, error) {
	h, err := tlog.TreeHash(size, LogReader(ctx, log))
	return chronicle.Hash(h), err
}
