package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chronicle-audit/chronicle"
)

// InclusionProof proves that the record seq is in the log's tree of size
// records (RFC 6962's audit path).
func InclusionProof(ctx context.Context, log chronicle.Log, seq, size int64) ([]chronicle.Hash, error) {
	p, err := tlog.ProveRecord(size, seq, LogReader(ctx, log))
	return hashes(p), err
}

// ConsistencyProof proves that the log's tree of from records is a prefix
// of its tree of to records.
func ConsistencyProof(ctx context.Context, log chronicle.Log, from, to int64) ([]chronicle.Hash, error) {
	if from == 0 || from == to {
		return []chronicle.Hash{}, nil // the empty tree, and a tree itself, need no proof
	}
	p, err := tlog.ProveTree(to, from, LogReader(ctx, log))
	return hashes(p), err
}

// CheckInclusion checks that leaf is the record seq of the tree of size
// records with root hash root.
func CheckInclusion(proof []chronicle.Hash, size int64, root chronicle.Hash, seq int64, leaf chronicle.Hash) error {
	return tlog.CheckRecord(tlogHashes(proof), size, tlog.Hash(root), seq, tlog.Hash(leaf))
}

// CheckConsistency checks that the tree of size from with root fromRoot
// is a prefix of the tree of size to with root toRoot.
func CheckConsistency(proof []chronicle.Hash, from int64, fromRoot chronicle.Hash, to int64, toRoot chronicle.Hash) error {
	switch {
	case from > to:
		return fmt.Errorf("a tree of %d records cannot be a prefix of one of %d", from, to)
	case from == 0 && len(proof) == 0:
		if fromRoot != emptyRoot {
			return errors.New("the root of an empty tree is not the empty tree's")
		}
		return nil
	case from == to && len(proof) == 0:
		if fromRoot != toRoot {
			return fmt.Errorf("two trees of %d records with different roots", from)
		}
		return nil
	}
	return tlog.CheckTree(tlogHashes(proof), to, tlog.Hash(toRoot), from, tlog.Hash(fromRoot))
}

func hashes[H ~[]tlog.Hash](p H) []chronicle.Hash {
	out := make([]chronicle.Hash, len(p))
	for i, h := range p {
		out[i] = chronicle.Hash(h)
	}
	return out
}

func tlogHashes(p []chronicle.Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

// emptyRoot is the root of a tree of no records: SHA-256 of nothing.
var emptyRoot = chronicle.Hash(sha256.Sum256(nil))

// ReceiptHeader is the first line of a receipt: the C2SP tlog-proof
// format.
const ReceiptHeader = "c2sp.org/tlog-proof@v1"

// Receipt is an offline proof that an event is in the log: a C2SP
// tlog-proof (its index, the inclusion proof, and the signed checkpoint
// the proof leads to). With the event and the log's key it verifies with
// no network.
type Receipt struct {
	Index      int64
	Proof      []chronicle.Hash
	Checkpoint []byte
}

// Marshal writes the receipt in tlog-proof form.
func (r *Receipt) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nindex %d\n", ReceiptHeader, r.Index)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseReceipt reads a receipt in tlog-proof form. Extra data ("extra"
// lines) is allowed and ignored.
func ParseReceipt(data []byte) (*Receipt, error) {
	head, cp, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return nil, errors.New("receipt: no blank line before the checkpoint")
	}
	sc := bufio.NewScanner(bytes.NewReader(head))
	line := 0
	r := &Receipt{Index: -1, Checkpoint: cp}
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case line == 1:
			if text != ReceiptHeader {
				return nil, fmt.Errorf("receipt line 1: %q, want %q", text, ReceiptHeader)
			}
		case strings.HasPrefix(text, "extra "):
		case strings.HasPrefix(text, "index "):
			n, err := strconv.ParseInt(strings.TrimPrefix(text, "index "), 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("receipt line %d: bad index %q", line, text)
			}
			r.Index = n
		default:
			raw, err := base64.StdEncoding.DecodeString(text)
			if err != nil || len(raw) != len(chronicle.Hash{}) {
				return nil, fmt.Errorf("receipt line %d: not a base64 SHA-256 hash: %q", line, text)
			}
			r.Proof = append(r.Proof, chronicle.Hash(raw))
		}
	}
	if r.Index < 0 {
		return nil, errors.New("receipt: no index line")
	}
	return r, nil
}

// Verify checks that e is the record the receipt proves, in a checkpoint
// signed by v, and returns the checkpoint.
func (r *Receipt) Verify(e *chronicle.Event, v note.Verifier) (*Checkpoint, error) {
	cp, err := OpenCheckpoint(r.Checkpoint, v)
	if err != nil {
		return nil, err
	}
	if err := CheckInclusion(r.Proof, cp.Size, cp.Root, r.Index, LeafHash(e)); err != nil {
		return cp, fmt.Errorf("event %s is not record %d of the log's tree of %d records (its content differs from what was logged, or the receipt is for another event): %v", e.ID, r.Index, cp.Size, err)
	}
	return cp, nil
}
