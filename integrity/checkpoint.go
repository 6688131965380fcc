package integrity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/chronicle-audit/chronicle"
)

// DefaultCheckpointInterval is how often, at most, a growing log gets a
// new checkpoint.
const DefaultCheckpointInterval = time.Second

// DefaultOrigin names the log in its checkpoints when
// CHRONICLE_LOG_ORIGIN does not.
const DefaultOrigin = "chronicle.local/audit-log"

// Sign returns the signed checkpoint of a tree of size records with root
// hash root: a C2SP tlog-checkpoint (origin, size, base64 root, one per
// line) signed by k as a note.
func (k *Key) Sign(size int64, root chronicle.Hash) ([]byte, error) {
	body := log.Checkpoint{Origin: k.Name(), Size: uint64(size), Hash: root[:]}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, k.signer)
}

// Checkpoint is a checkpoint whose signature was verified.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   chronicle.Hash
	// Note is the signed note as it came.
	Note []byte
}

// OpenCheckpoint verifies a signed checkpoint with v and parses it. The
// checkpoint's origin must be the key's name.
func OpenCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %v", err)
	}
	if len(cp.Hash) != len(chronicle.Hash{}) {
		return nil, fmt.Errorf("checkpoint: root hash of %d bytes, want %d", len(cp.Hash), len(chronicle.Hash{}))
	}
	out := &Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Note: signed}
	copy(out.Root[:], cp.Hash)
	return out, nil
}

// Checkpointer signs a checkpoint whenever the log has grown, at most
// every Interval, and keeps each one in the store and, when Dir is set,
// as a file there too, so operators can ship them off-host. Several
// processes may each run one on a shared store: they sign the same trees
// and the store keeps one checkpoint per size.
type Checkpointer struct {
	Log      chronicle.Log
	Key      *Key
	Interval time.Duration
	Dir      string
	// Rotate lets Key replace the key the log was signed with so far.
	Rotate bool
	Logger *slog.Logger
	Now    func() time.Time
}

// Start checks that Key is the log's key (recording it for a new log),
// then signs in the background until ctx is done. It returns an error,
// and signs nothing, when the log was signed with another key.
func (c *Checkpointer) Start(ctx context.Context) (done <-chan struct{}, err error) {
	if c.Interval <= 0 {
		c.Interval = DefaultCheckpointInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dir != "" {
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("CHRONICLE_CHECKPOINT_DIR: %w", err)
		}
	}
	trusted, err := c.trust(ctx)
	if errors.Is(err, errOtherKey) {
		return nil, err
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		c.run(ctx, trusted)
	}()
	return ch, nil
}

var errOtherKey = errors.New("the log is signed with another key")

// trust checks that Key is the log's key, recording it for a new log.
func (c *Checkpointer) trust(ctx context.Context) (bool, error) {
	have, err := c.Log.TrustKey(ctx, c.Key.Verifier, c.Rotate)
	if err != nil {
		return false, err
	}
	if have != c.Key.Verifier {
		return false, fmt.Errorf("%w: its checkpoints are signed with the key %s, and CHRONICLE_SIGNING_KEY_FILE holds %s; refusing to sign with a key the log's verifiers do not know (to rotate keys, see the README, Verifying the log)",
			errOtherKey, have, c.Key.Verifier)
	}
	return true, nil
}

// run signs until ctx is done; until trusted (the store could not be
// asked at Start), it checks the key first.
func (c *Checkpointer) run(ctx context.Context, trusted bool) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	var signed int64 = -1
	failing := false
	for {
		var size int64
		var err error
		if !trusted {
			trusted, err = c.trust(ctx)
			if errors.Is(err, errOtherKey) {
				c.Logger.Error("integrity: not signing checkpoints", "err", err)
				return
			}
		}
		if trusted {
			size, err = c.sign(ctx, signed)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				c.Logger.Warn("integrity: cannot sign a checkpoint; retrying", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				c.Logger.Info("integrity: signing checkpoints again", "size", size)
			}
			failing, signed = false, size
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sign signs the log's current tree unless its size is last's.
func (c *Checkpointer) sign(ctx context.Context, last int64) (int64, error) {
	size, err := c.Log.LogSize(ctx)
	if err != nil || size == last {
		return last, err
	}
	if cp, err := c.Log.Checkpoint(ctx, -1); err == nil && cp.Size >= size {
		return size, nil // another process signed it
	} else if err != nil && !errors.Is(err, chronicle.ErrNotFound) {
		return last, err
	}
	root, err := TreeHash(ctx, c.Log, size)
	if err != nil {
		return last, err
	}
	signed, err := c.Key.Sign(size, root)
	if err != nil {
		return last, err
	}
	if err := c.Log.SaveCheckpoint(ctx, &chronicle.Checkpoint{Size: size, Note: signed, CreatedAt: c.Now().UTC()}); err != nil {
		return last, err
	}
	if c.Dir != "" {
		if err := WriteFile(filepath.Join(c.Dir, fmt.Sprintf("%020d.checkpoint", size)), signed); err != nil {
			return last, err
		}
	}
	return size, nil
}

// WriteFile writes data to path durably: a temporary file, synced, then
// renamed into place, so a crash never leaves half a file (checkpoints,
// and the CLI's saved checkpoints and receipts).
func WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// SameTree reports whether two checkpoints of one log commit to the same
// tree.
func SameTree(a, b *Checkpoint) bool {
	return a.Size == b.Size && bytes.Equal(a.Root[:], b.Root[:])
}
