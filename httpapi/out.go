package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// Events out: the export (the matching range of the log in seq order,
// NDJSON or CSV, with a trailer) and the live tail (Server-Sent Events).
// Both read the store a page at a time from a position in the log, with
// the filters of GET /events, so memory stays flat however long they
// run and whatever the client's pace.

// Defaults of the event stream (Config).
const (
	DefaultStreamPoll      = 200 * time.Millisecond
	DefaultStreamHeartbeat = 15 * time.Second
	DefaultStallTimeout    = 30 * time.Second
)

// Pages of events out.
const (
	exportPage = 1000
	streamPage = 500
)

// export streams the log's events that match the filters, in seq order,
// from from_seq (default 0) to to_seq (default: the log as it is when
// the export starts, so it has an end), as NDJSON (the default) or CSV.
// It ends with a trailer (a line, a row) holding the count and the last
// seq, and the same in HTTP trailers: a reader without it knows the
// export was cut off. The events are as stored (no enrichment), so an
// NDJSON export is what chronicle verify --events reads.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := parseFilter(q, false, "format", "from_seq", "to_seq")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := queryParams{q}
	format := p.Get("format")
	if format == "" {
		format = "ndjson"
	}
	if format != "ndjson" && format != "csv" {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "format must be ndjson or csv, not %q", format))
		return
	}
	from, err := p.int64("from_seq", 0, 0)
	to, err2 := p.int64("to_seq", -1, 0)
	if err = errors.Join(err, err2); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	size, err := s.cfg.Store.LogSize(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if to < 0 || to > size {
		to = size // the log as it is now: an export has an end
	}
	var out exportWriter = newNDJSONWriter()
	w.Header().Set("Content-Type", "application/x-ndjson")
	if format == "csv" {
		out = newCSVWriter()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
		w.Header().Set("Content-Disposition", `attachment; filename="chronicle-export.csv"`)
	}
	w.Header().Set("Trailer", api.ExportCountTrailer+", "+api.ExportLastSeqTrailer)
	rc := http.NewResponseController(w)
	// A long export outlasts the server's read and write timeouts: it has
	// no body to read, and each page gets its own time to be written.
	rc.SetReadDeadline(time.Time{})
	cutOff := func(err error) {
		// Too late for a status: the missing trailer says it.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.stalled.Add(1)
		}
		logger(r).Warn("export cut off", "err", err)
	}
	var trailer api.ExportTrailer
	// The answer's headers go at once, before a sparse filter's first
	// match: the client knows the export has begun.
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	if err := s.writePage(rc, w, out.header()); err != nil {
		cutOff(err)
		return
	}
	for from < to {
		page, next, err := s.cfg.Store.EventsInLogMatching(ctx, f, from, to, exportPage)
		if err != nil {
			cutOff(err)
			return
		}
		for _, e := range page {
			if err := s.keepLeaf(ctx, e); err != nil {
				cutOff(err)
				return
			}
			if err := out.event(e); err != nil {
				cutOff(err)
				return
			}
		}
		if len(page) > 0 {
			trailer.Trailer.Count += int64(len(page))
			last := *page[len(page)-1].Seq
			trailer.Trailer.LastSeq = &last
			if err := s.writePage(rc, w, out.flush()); err != nil {
				cutOff(err)
				return
			}
		}
		from = next
	}
	if err := out.trailer(trailer); err != nil {
		cutOff(err)
		return
	}
	if err := s.writePage(rc, w, out.flush()); err != nil {
		cutOff(err)
		return
	}
	w.Header().Set(api.ExportCountTrailer, strconv.FormatInt(trailer.Trailer.Count, 10))
	if trailer.Trailer.LastSeq != nil {
		w.Header().Set(api.ExportLastSeqTrailer, strconv.FormatInt(*trailer.Trailer.LastSeq, 10))
	}
}

// writePage writes b and flushes it to the client, which has
// StallTimeout to take it: a client that stops reading is cut off
// instead of holding its handler for ever.
func (s *Server) writePage(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	rc.SetWriteDeadline(time.Now().Add(s.cfg.StallTimeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}

// exportWriter encodes an export into a buffer that flush hands over, a
// page at a time.
type exportWriter interface {
	header() []byte
	event(e *chronicle.Event) error
	trailer(t api.ExportTrailer) error
	flush() []byte
}

type ndjsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newNDJSONWriter() *ndjsonWriter {
	n := &ndjsonWriter{}
	n.enc = json.NewEncoder(&n.buf)
	return n
}

func (n *ndjsonWriter) header() []byte { return nil }

func (n *ndjsonWriter) event(e *chronicle.Event) error { return n.enc.Encode(e) }

func (n *ndjsonWriter) trailer(t api.ExportTrailer) error { return n.enc.Encode(t) }

func (n *ndjsonWriter) flush() []byte {
	b := bytes.Clone(n.buf.Bytes())
	n.buf.Reset()
	return b
}

type csvWriter struct {
	buf bytes.Buffer
	w   *csv.Writer
}

func newCSVWriter() *csvWriter {
	c := &csvWriter{}
	c.w = csv.NewWriter(&c.buf)
	c.w.UseCRLF = true // RFC 4180
	return c
}

func (c *csvWriter) header() []byte {
	c.w.Write(api.CSVColumns)
	return c.flush()
}

func (c *csvWriter) event(e *chronicle.Event) error {
	rec, err := api.CSVRecord(e)
	if err != nil {
		return err
	}
	return c.w.Write(rec)
}

func (c *csvWriter) trailer(t api.ExportTrailer) error {
	rec, err := api.CSVTrailerRecord(t)
	if err != nil {
		return err
	}
	return c.w.Write(rec)
}

func (c *csvWriter) flush() []byte {
	c.w.Flush()
	b := bytes.Clone(c.buf.Bytes())
	c.buf.Reset()
	return b
}

// stream is GET /events/stream: the events that match the filters, as
// Server-Sent Events, each as it is stored, in seq order. Each message's
// data is the event's JSON (enriched, as GET /events gives it) and its id
// the event's seq; it starts after Last-Event-ID (a reconnecting client),
// else at from_seq, else at the end of the log (only new events), so a
// client that resumes misses nothing and gets nothing twice.
//
// Each stream reads the store from its own position, a page at a time: a
// client that falls behind catches up from the store, costing neither
// memory nor ingestion, and nothing is skipped. A client that stops
// reading (a write not taken within StallTimeout) is disconnected; it
// resumes with Last-Event-ID. A comment line every StreamHeartbeat keeps
// proxies from closing an idle stream. When the server shuts down the
// stream ends with an "event: shutdown" message.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := parseFilter(q, false, "from_seq")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := queryParams{q}.int64("from_seq", -1, 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		last, err := strconv.ParseInt(v, 10, 64)
		if err != nil || last < -1 {
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "Last-Event-ID must be the seq of the last event received, not %q", v))
			return
		}
		from = last + 1
	}
	ctx := r.Context()
	if from < 0 {
		if from, err = s.cfg.Store.LogSize(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.streams.Add(1)
	defer s.streams.Add(-1)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer (nginx) pass it on at once
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	l := logger(r)
	// The first message says where the stream starts, and how soon to
	// reconnect.
	if err := s.writePage(rc, w, fmt.Appendf(nil, "retry: 1000\n: from seq %d\n\n", from)); err != nil {
		return
	}
	lastWrite := time.Now()
	poll := time.NewTicker(s.cfg.StreamPoll)
	defer poll.Stop()
	var buf bytes.Buffer
	for {
		size, err := s.cfg.Store.LogSize(ctx)
		for err == nil && from < size {
			var page []*chronicle.Event
			var next int64
			if page, next, err = s.cfg.Store.EventsInLogMatching(ctx, f, from, size, streamPage); err != nil {
				break
			}
			if page, err = s.enrich(r, page); err != nil {
				break
			}
			buf.Reset()
			for _, e := range page {
				data, merr := json.Marshal(e)
				if merr != nil {
					err = merr
					break
				}
				fmt.Fprintf(&buf, "id: %d\ndata: %s\n\n", *e.Seq, data)
			}
			if err != nil {
				break
			}
			if buf.Len() > 0 {
				if werr := s.writePage(rc, w, buf.Bytes()); werr != nil {
					s.stalledStream(l, werr, from)
					return
				}
				lastWrite = time.Now()
			}
			from = next
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.Error("event stream: reading the log failed", "seq", from, "err", err)
			s.writePage(rc, w, []byte("event: error\ndata: {\"error\":\"reading the log failed; reconnect with Last-Event-ID\"}\n\n"))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			s.writePage(rc, w, []byte("event: shutdown\ndata: {\"reason\":\"Chronicle is shutting down; reconnect with Last-Event-ID\"}\n\n"))
			return
		case <-poll.C:
		}
		if time.Since(lastWrite) >= s.cfg.StreamHeartbeat {
			if err := s.writePage(rc, w, []byte(": heartbeat\n\n")); err != nil {
				s.stalledStream(l, err, from)
				return
			}
			lastWrite = time.Now()
		}
	}
}

// stalledStream logs and counts a stream whose write failed because its
// client stopped reading (the write timed out); one that left is not
// worth a word.
func (s *Server) stalledStream(l *slog.Logger, err error, seq int64) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.stalled.Add(1)
		l.Warn("event stream: the client does not read; disconnected", "stall_timeout_exceeded", true, "next_seq", seq)
	}
}
