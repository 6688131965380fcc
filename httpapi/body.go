package httpapi

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Request bodies are read before a request takes one of the MaxInflight
// slots, so that clients that send slowly hold no slot; they are read as
// they arrive (memory grows with what came, not with what Content-Length
// announces), within BodyTimeout, and every byte held counts against one
// budget of MaxBufferedBytes for the whole server: however many clients
// upload at once, memory stays bounded.

// budget counts the bytes that request bodies hold.
type budget struct {
	limit int64
	held  atomic.Int64
}

func (b *budget) take(n int64) bool {
	if b.held.Add(n) > b.limit {
		b.held.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.held.Add(-n) }

// firstRead is how much room a body gets before it grows.
const firstRead = 4 << 10

// body is a request body held against the budget.
type body struct {
	data []byte
	held int64
	b    *budget
}

// release gives the body's bytes back to the budget once it is no longer
// needed.
func (b *body) release() { b.b.give(b.held) }

// grow makes room for more of the body, up to ceiling bytes, if the budget
// allows.
func (b *body) grow(ceiling int64) error {
	n := min(max(2*int64(cap(b.data)), firstRead), ceiling)
	if !b.b.take(n - int64(cap(b.data))) {
		return chronicle.Unavailable(time.Second, "too much request data in flight; retry later", nil)
	}
	b.held += n - int64(cap(b.data))
	nb := make([]byte, len(b.data), n)
	copy(nb, b.data)
	b.data = nb
	return nil
}

// readBody reads r's body: at most MaxBodyBytes (413 when Content-Length
// announces more, before anything is read, and when the body crosses the
// limit, whatever it holds), within BodyTimeout. The caller releases it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*body, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	// Best effort: a ResponseWriter that cannot set deadlines (a test's
	// recorder) reads without one.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	// Room grows with what arrives, up to what was announced (and one
	// more byte, to see the end), never to the limit on trust.
	ceiling := limit + 1
	if r.ContentLength >= 0 {
		ceiling = r.ContentLength + 1
	}
	b := &body{b: s.buffered}
	for {
		if len(b.data) == cap(b.data) {
			if err := b.grow(ceiling); err != nil {
				b.release()
				return nil, err
			}
		}
		n, err := r.Body.Read(b.data[len(b.data):cap(b.data)])
		b.data = b.data[:len(b.data)+n]
		if int64(len(b.data)) > limit {
			b.release()
			return nil, tooLarge(limit)
		}
		switch {
		case errors.Is(err, io.EOF):
			return b, nil
		case err != nil:
			b.release()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, chronicle.Errorf(chronicle.ErrInvalid, "the request body did not arrive within %v", s.cfg.BodyTimeout)
			}
			return nil, chronicle.Wrap(chronicle.ErrInvalid, "cannot read the request body", err)
		}
	}
}

func tooLarge(limit int64) error {
	return chronicle.Errorf(chronicle.ErrTooLarge, "request body is larger than %d bytes", limit)
}

// printable reports whether s is 1 to max printable ASCII characters: a
// header value that can go into logs and records as it is.
func printable(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
