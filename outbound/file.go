package outbound

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle/routing"
)

// fileSink appends each batch, one JSON object per line (NDJSON), to the
// file it is writing, <name>-<number>.ndjson.part, and fsyncs it before
// the batch counts as delivered. It closes a file (renaming it to
// <name>-<number>.ndjson, then fsyncing the directory) before it would
// grow past rotate_bytes, rotate_every after starting it, and on stop.
// Numbers are zero-padded and grow by one, so names sort in delivery
// order, and a shipper takes only the files without ".part". At start a
// ".part" left by a crash is cut after its last complete line and closed.
type fileSink struct {
	dir         string
	name        string
	rotateBytes int64
	rotateEvery time.Duration
	now         func() time.Time

	next   int64    // number of the next file
	f      *os.File // the file being written, or nil
	number int64
	size   int64
	opened time.Time
}

const partSuffix = ".part"

func newFileSink(s *routing.Sink, now func() time.Time) (*fileSink, error) {
	fs := &fileSink{dir: s.Path, name: s.Name, rotateBytes: s.RotateBytes, rotateEvery: s.RotateEvery, now: now, next: 1}
	if err := os.MkdirAll(s.Path, 0o700); err != nil {
		return nil, fmt.Errorf("file sink %s: %w", s.Name, err)
	}
	if err := fs.recover(); err != nil {
		return nil, fmt.Errorf("file sink %s: %w", s.Name, err)
	}
	return fs, nil
}

// fileNumber returns the number in name, a file of this sink, or -1.
func (s *fileSink) fileNumber(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, s.name+"-")
	if !ok {
		return -1, false
	}
	part := strings.HasSuffix(rest, partSuffix)
	rest = strings.TrimSuffix(strings.TrimSuffix(rest, partSuffix), ".ndjson")
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || len(rest) != 12 {
		return -1, false
	}
	return n, part
}

func (s *fileSink) path(n int64, part bool) string {
	p := filepath.Join(s.dir, fmt.Sprintf("%s-%012d.ndjson", s.name, n))
	if part {
		p += partSuffix
	}
	return p
}

// recover finds the next file number, and closes the files a crash left
// open: each is cut after its last complete line (a batch half written
// was not delivered, and is written again).
func (s *fileSink) recover() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n, part := s.fileNumber(e.Name())
		if n < 0 {
			continue
		}
		s.next = max(s.next, n+1)
		if !part {
			continue
		}
		p := s.path(n, true)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		keep := int64(bytes.LastIndexByte(data, '\n') + 1)
		if keep == 0 {
			if err := os.Remove(p); err != nil {
				return err
			}
			continue
		}
		if err := os.Truncate(p, keep); err != nil {
			return err
		}
		if err := syncFile(p); err != nil {
			return err
		}
		if err := os.Rename(p, s.path(n, false)); err != nil {
			return err
		}
	}
	return syncDir(s.dir)
}

func (s *fileSink) deliver(_ context.Context, b *batch) error {
	data := make([]byte, 0, b.size+len(b.records))
	for _, r := range b.records {
		data = append(append(data, r...), '\n')
	}
	if s.f != nil && s.size > 0 && s.size+int64(len(data)) > s.rotateBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(data); err != nil {
		return s.undo(err)
	}
	if err := s.f.Sync(); err != nil {
		return s.undo(err)
	}
	s.size += int64(len(data))
	return nil
}

// undo cuts a failed write off the file, so that a retry does not follow
// half a batch; if even that fails, the file is left (as ".part", closed
// at the next start) and the next batch starts a new one.
func (s *fileSink) undo(cause error) error {
	if err := s.f.Truncate(s.size); err == nil {
		if _, err := s.f.Seek(s.size, 0); err == nil {
			return &deliveryError{msg: "write " + s.f.Name() + ": " + cause.Error()}
		}
	}
	s.f.Close()
	s.f = nil
	return &deliveryError{msg: "write " + s.path(s.number, true) + ": " + cause.Error()}
}

func (s *fileSink) open() error {
	n := s.next
	f, err := os.OpenFile(s.path(n, true), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return &deliveryError{msg: "create " + s.path(n, true) + ": " + err.Error()}
	}
	// The new name must survive a crash as the data will.
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return &deliveryError{msg: "sync " + s.dir + ": " + err.Error()}
	}
	s.f, s.number, s.size, s.opened, s.next = f, n, 0, s.now(), n+1
	return nil
}

// rotate closes the file being written under its final name.
func (s *fileSink) rotate() error {
	f := s.f
	if f == nil {
		return nil
	}
	if err := f.Sync(); err != nil {
		return &deliveryError{msg: "sync " + f.Name() + ": " + err.Error()}
	}
	if err := f.Close(); err != nil {
		return &deliveryError{msg: "close " + f.Name() + ": " + err.Error()}
	}
	s.f = nil
	if s.size == 0 {
		return os.Remove(s.path(s.number, true))
	}
	if err := os.Rename(s.path(s.number, true), s.path(s.number, false)); err != nil {
		return &deliveryError{msg: "rename " + f.Name() + ": " + err.Error()}
	}
	if err := syncDir(s.dir); err != nil {
		return &deliveryError{msg: "sync " + s.dir + ": " + err.Error()}
	}
	return nil
}

func (s *fileSink) tick(now time.Time) error {
	if s.f != nil && s.size > 0 && now.Sub(s.opened) >= s.rotateEvery {
		return s.rotate()
	}
	return nil
}

func (s *fileSink) close() error { return s.rotate() }

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
