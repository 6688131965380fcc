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

// readBody reads r's body: at most MaxBodyBytes (413 when Content-Length
// announces more, before anything is read, and when the body crosses the
// limit, whatever it holds), within BodyTimeout. release gives its bytes
// back to the budget once the body is no longer needed; it is nil on
// error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := chronicle.Errorf(chronicle.ErrTooLarge, "request body is larger than %d bytes", limit)
	if r.ContentLength > limit {
		return nil, nil, tooLarge
	}
	// Best effort: a ResponseWriter that cannot set deadlines (a test's
	// recorder) reads without one.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	held := int64(0)
	release = func() { s.buffered.give(held) }
	// Room grows with what arrives, up to what was announced (and one
	// more byte, to see the end), never to the limit on trust.
	ceiling := limit + 1
	if r.ContentLength >= 0 {
		ceiling = r.ContentLength + 1
	}
	grow := func(buf []byte) ([]byte, error) {
		n := min(max(2*int64(cap(buf)), firstRead), ceiling)
		if !s.buffered.take(n - int64(cap(buf))) {
			return nil, chronicle.Unavailable(time.Second, "too much request data in flight; retry later", nil)
		}
		held += n - int64(cap(buf))
		nb := make([]byte, len(buf), n)
		copy(nb, buf)
		return nb, nil
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if buf, err = grow(buf); err != nil {
				release()
				return nil, nil, err
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			release()
			return nil, nil, tooLarge
		}
		switch {
		case errors.Is(err, io.EOF):
			return buf, release, nil
		case err != nil:
			release()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, nil, chronicle.Errorf(chronicle.ErrInvalid, "the request body did not arrive within %v", s.cfg.BodyTimeout)
			}
			return nil, nil, chronicle.Wrap(chronicle.ErrInvalid, "cannot read the request body", err)
		}
	}
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
