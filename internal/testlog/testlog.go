// Package testlog is the logger every test uses: records go to t.Log (so
// they show only for failing or verbose tests) and, optionally, to a
// buffer a test can search.
package testlog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns a logger writing records at level and above to t.Log, and to
// each of also.
func New(t testing.TB, level slog.Level, also ...io.Writer) *slog.Logger {
	w := io.MultiWriter(append([]io.Writer{tWriter{t}}, also...)...)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Warn is New at slog.LevelWarn: what most tests want to see.
func Warn(t testing.TB) *slog.Logger { return New(t, slog.LevelWarn) }

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Buffer collects log output safely across goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
