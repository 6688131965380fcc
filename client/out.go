package client

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// Events out: an export of the log (GET /events/export) and the live
// tail (GET /events/stream), both read as they arrive.

// ExportQuery selects an export: the filters of a listing (Limit plays
// no part), a range of the log and a format.
type ExportQuery struct {
	Query
	// FromSeq is the first seq of the range. Defaults to 0.
	FromSeq int64
	// ToSeq ends the range (exclusive); 0 is the log as it is when the
	// export starts.
	ToSeq int64
	// Format is "ndjson" or "csv". Defaults to "ndjson".
	Format string
}

// path is the export's request.
func (q ExportQuery) path() string {
	v := q.Query.Values()
	v.Del("limit")
	if q.Format != "" {
		v.Set("format", q.Format)
	}
	if q.FromSeq > 0 {
		v.Set("from_seq", strconv.FormatInt(q.FromSeq, 10))
	}
	if q.ToSeq > 0 {
		v.Set("to_seq", strconv.FormatInt(q.ToSeq, 10))
	}
	return "/events/export?" + v.Encode()
}

// Export returns the events of the log that match q, in seq order, as
// the store keeps them (no enrichment), decoded from NDJSON or CSV as
// they arrive: it holds one event at a time, however long the export.
// An export ends with a trailer; one without it, or whose trailer counts
// other than what came, was cut off, and Export yields an error last.
// A cut-off export is not retried (it would repeat what was yielded).
func (c *Client) Export(ctx context.Context, q ExportQuery) iter.Seq2[*chronicle.Event, error] {
	return func(yield func(*chronicle.Event, error) bool) {
		if q.Format != "" && q.Format != "ndjson" && q.Format != "csv" {
			yield(nil, fmt.Errorf("export format must be ndjson or csv, not %q", q.Format))
			return
		}
		accept := "application/x-ndjson"
		if q.Format == "csv" {
			accept = "text/csv"
		}
		resp, cancel, err := c.open(ctx, q.path(), accept, nil)
		if err != nil {
			yield(nil, err)
			return
		}
		defer cancel()
		defer resp.Body.Close()
		read := readNDJSONExport
		if q.Format == "csv" {
			read = readCSVExport
		}
		var n int64
		var lastSeq *int64
		for it := range read(resp.Body) {
			e, trailer, err := it.e, it.trailer, it.err
			switch {
			case err != nil:
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(nil, fmt.Errorf("export cut off after %d events: %w", n, err))
				return
			case trailer != nil:
				if trailer.Trailer.Count != n {
					yield(nil, fmt.Errorf("the export's trailer counts %d events, %d came", trailer.Trailer.Count, n))
				} else if (trailer.Trailer.LastSeq == nil) != (lastSeq == nil) || lastSeq != nil && *lastSeq != *trailer.Trailer.LastSeq {
					yield(nil, fmt.Errorf("the export's trailer says its last seq is %v, the last event's is %v", trailer.Trailer.LastSeq, lastSeq))
				}
				return
			}
			if e.Seq != nil && lastSeq != nil && *e.Seq <= *lastSeq {
				yield(nil, fmt.Errorf("the export sent seq %d after %d: it is out of order", *e.Seq, *lastSeq))
				return
			}
			n, lastSeq = n+1, e.Seq
			if !yield(e, nil) {
				return
			}
		}
		yield(nil, fmt.Errorf("export cut off after %d events: it has no trailer", n))
	}
}

// exportItem is an event, or the trailer that ends an export, or why
// reading it failed.
type exportItem struct {
	e       *chronicle.Event
	trailer *api.ExportTrailer
	err     error
}

func readNDJSONExport(r io.Reader) iter.Seq[exportItem] {
	return func(yield func(exportItem) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if strings.HasPrefix(string(line), `{"trailer":`) {
				var t api.ExportTrailer
				if err := json.Unmarshal(line, &t); err != nil {
					yield(exportItem{err: fmt.Errorf("trailer: %w", err)})
					return
				}
				yield(exportItem{trailer: &t})
				return
			}
			var e chronicle.Event
			if err := json.Unmarshal(line, &e); err != nil {
				yield(exportItem{err: err})
				return
			}
			if !yield(exportItem{e: &e}) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(exportItem{err: err})
		}
	}
}

func readCSVExport(r io.Reader) iter.Seq[exportItem] {
	return func(yield func(exportItem) bool) {
		cr := csv.NewReader(r)
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			yield(exportItem{err: err})
			return
		}
		if strings.Join(header, ",") != strings.Join(api.CSVColumns, ",") {
			yield(exportItem{err: fmt.Errorf("the CSV header is %v, want %v", header, api.CSVColumns)})
			return
		}
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(exportItem{err: err})
				return
			}
			e, t, err := api.ParseCSVRecord(rec)
			if err != nil {
				line, _ := cr.FieldPos(0)
				yield(exportItem{err: fmt.Errorf("line %d: %w", line, err)})
				return
			}
			if !yield(exportItem{e: e, trailer: t}) || t != nil {
				return
			}
		}
	}
}

// TailQuery selects what Tail follows.
type TailQuery struct {
	// Query holds the filters (Limit plays no part).
	Query
	// After, when set, starts after this seq (the seq of the last event
	// the caller has): the stream resumes there, with no gap and nothing
	// twice. Nil starts with the events stored from now on.
	After *int64
	// OnRetry, when set, hears why the stream ended and how long Tail
	// waits before it reconnects.
	OnRetry func(err error, wait time.Duration)
}

// Tail returns the events that match q as they are stored, in seq
// order (GET /events/stream), enriched as GET /events gives them. When
// the stream ends (the service stops or restarts, the connection drops,
// the client fell silent too long) it reconnects with backoff, sending
// the seq of the last event it yielded as Last-Event-ID, so no event is
// missed or yielded twice. It runs until ctx ends (then it yields
// nothing more) or the service refuses the request (a 4xx other than
// 429), which it yields.
func (c *Client) Tail(ctx context.Context, q TailQuery) iter.Seq2[*chronicle.Event, error] {
	return func(yield func(*chronicle.Event, error) bool) {
		v := q.Query.Values()
		v.Del("limit")
		path := "/events/stream"
		if len(v) > 0 {
			path += "?" + v.Encode()
		}
		last := q.After
		wait := c.opts.RetryMin
		for ctx.Err() == nil {
			h := http.Header{}
			if last != nil {
				h.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
			}
			resp, cancel, err := c.open(ctx, path, "text/event-stream", h)
			var ae *Error
			if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				yield(nil, err)
				return
			}
			if err == nil {
				wait = c.opts.RetryMin
				var stop bool
				stop, err = readStream(resp.Body, &last, yield)
				resp.Body.Close()
				cancel()
				if stop {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			if q.OnRetry != nil {
				q.OnRetry(err, wait)
			}
			if c.sleep(ctx, jitter(wait)) != nil {
				return
			}
			wait = min(wait*2, c.opts.RetryMax)
		}
	}
}

// errStreamEnded is a stream that ended without saying why.
var errStreamEnded = errors.New("the event stream ended")

// readStream yields the events of an event stream until it ends, and
// returns why; stop when the consumer stopped.
func readStream(r io.Reader, last **int64, yield func(*chronicle.Event, error) bool) (stop bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var id, event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				data = append(data, value)
			}
			continue
		}
		// The end of a message.
		switch {
		case event != "" && event != "message":
			var why struct {
				Reason string `json:"reason"`
				Error  string `json:"error"`
			}
			json.Unmarshal([]byte(strings.Join(data, "\n")), &why)
			return false, fmt.Errorf("the event stream ended (%s): %s", event, why.Reason+why.Error)
		case len(data) > 0:
			var e chronicle.Event
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &e); err != nil {
				return false, fmt.Errorf("event stream: %w", err)
			}
			seq, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return false, fmt.Errorf("event stream: an event without a seq as its id (%q)", id)
			}
			if *last == nil || seq > **last {
				*last = &seq
				if !yield(&e, nil) {
					return true, nil
				}
			}
		}
		id, event, data = "", "", nil
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("the event stream broke: %w", err)
	}
	return false, errStreamEnded
}

// open sends a GET for an answer read as it arrives: the per-attempt
// Timeout bounds the wait for the answer's headers, not the reading of
// its body. Failures before an answer are retried as for any idempotent
// request. cancel releases the request.
func (c *Client) open(ctx context.Context, path, accept string, header http.Header) (*http.Response, context.CancelFunc, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, nil, err
	}
	r := &call{method: http.MethodGet, idempotent: true}
	for attempt := 1; ; attempt++ {
		resp, cancel, err := c.openOnce(ctx, u.String(), accept, header)
		if err == nil {
			return resp, cancel, nil
		}
		if attempt >= c.opts.MaxAttempts {
			return nil, nil, err
		}
		wait, ok := c.backoff(r, err, attempt)
		if !ok {
			return nil, nil, err
		}
		if cerr := c.sleep(ctx, wait); cerr != nil {
			return nil, nil, fmt.Errorf("%w (not retried: %w)", err, cerr)
		}
	}
}

func (c *Client) openOnce(ctx context.Context, u, accept string, header http.Header) (*http.Response, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(c.opts.Timeout, cancel)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	}
	resp, err := c.hc.Do(req)
	inTime := timer.Stop()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !inTime {
			return nil, nil, &transportError{msg: fmt.Sprintf("no answer from Chronicle at %s within %v", c, c.opts.Timeout), err: err}
		}
		return nil, nil, c.noAnswer(ctx, sctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel()
		return nil, nil, newError(resp, data)
	}
	return resp, cancel, nil
}
