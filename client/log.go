package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// The verifiable log. Nothing here trusts the service: the caller checks
// what it gets with package integrity and a key it pinned.

// maxText bounds a text answer (a checkpoint, a key, a receipt).
const maxText = 1 << 20

func text(b *[]byte) func(io.Reader) error {
	return func(r io.Reader) error {
		var err error
		*b, err = io.ReadAll(io.LimitReader(r, maxText))
		return err
	}
}

func (c *Client) getText(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	_, err := c.send(ctx, call{method: http.MethodGet, path: path, accept: "text/plain", idempotent: true, decode: text(&b)})
	return b, err
}

// LogKey returns the verifier key the service says signs its checkpoints
// (GET /log/key). Pin it once, from a source you trust, rather than
// trusting it anew each time.
func (c *Client) LogKey(ctx context.Context) (string, error) {
	b, err := c.getText(ctx, "/log/key")
	return string(bytes.TrimSpace(b)), err
}

// LatestCheckpoint returns the latest signed checkpoint (GET
// /log/checkpoint), as signed.
func (c *Client) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	return c.getText(ctx, "/log/checkpoint")
}

// Checkpoints returns every checkpoint of size from on, by size (GET
// /log/checkpoints, page by page).
func (c *Client) Checkpoints(ctx context.Context, from int64) iter.Seq2[api.Checkpoint, error] {
	return func(yield func(api.Checkpoint, error) bool) {
		for {
			var page api.Checkpoints
			path := "/log/checkpoints?limit=1000&from=" + strconv.FormatInt(from, 10)
			if _, err := c.send(ctx, call{method: http.MethodGet, path: path, idempotent: true, decode: into(&page)}); err != nil {
				yield(api.Checkpoint{}, err)
				return
			}
			for _, cp := range page.Checkpoints {
				if cp.Size < from {
					yield(api.Checkpoint{}, fmt.Errorf("the service sent checkpoint %d for sizes from %d", cp.Size, from))
					return
				}
				if !yield(cp, nil) {
					return
				}
				from = cp.Size + 1
			}
			if len(page.Checkpoints) == 0 {
				return
			}
		}
	}
}

func sizeQuery(size int64) string {
	if size < 0 {
		return ""
	}
	return "?size=" + strconv.FormatInt(size, 10)
}

// Proof returns the inclusion proof of event id against the checkpoint
// of size, or the latest when size < 0 (GET /events/{id}/proof).
func (c *Client) Proof(ctx context.Context, id string, size int64) (*api.Proof, error) {
	var p api.Proof
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/events/" + url.PathEscape(id) + "/proof" + sizeQuery(size),
		idempotent: true, decode: into(&p)}); err != nil {
		return nil, err
	}
	return &p, nil
}

// Receipt returns a C2SP tlog-proof of event id (GET
// /events/{id}/receipt), to keep and check offline.
func (c *Client) Receipt(ctx context.Context, id string, size int64) ([]byte, error) {
	return c.getText(ctx, "/events/"+url.PathEscape(id)+"/receipt"+sizeQuery(size))
}

// Consistency returns the proof that the log's tree of from events is a
// prefix of its tree of to (GET /log/consistency).
func (c *Client) Consistency(ctx context.Context, from, to int64) (*api.Consistency, error) {
	var p api.Consistency
	path := fmt.Sprintf("/log/consistency?from=%d&to=%d", from, to)
	if _, err := c.send(ctx, call{method: http.MethodGet, path: path, idempotent: true, decode: into(&p)}); err != nil {
		return nil, err
	}
	return &p, nil
}

// Leaves returns the leaf hashes the store keeps for seq from to to
// (exclusive), page by page (GET /log/leaves); a leaf the store lost is
// nil.
func (c *Client) Leaves(ctx context.Context, from, to int64) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for from < to {
			var page api.Leaves
			path := fmt.Sprintf("/log/leaves?from=%d&to=%d", from, min(to, from+10_000))
			if _, err := c.send(ctx, call{method: http.MethodGet, path: path, idempotent: true, decode: into(&page)}); err != nil {
				yield(nil, err)
				return
			}
			if len(page.LeafHashes) == 0 {
				yield(nil, fmt.Errorf("the service sent no leaf from seq %d", from))
				return
			}
			for _, h := range page.LeafHashes {
				if !yield(h, nil) {
					return
				}
			}
			from += int64(len(page.LeafHashes))
		}
	}
}

// logPage is how many events LogEvents asks for at once.
const logPage = 10_000

// LogEvents returns the events of the log with from <= seq < to, in seq
// order, as the store keeps them (no enrichment), one export page at a
// time (GET /events/export); to < 0 is the whole log. A page without its
// trailer line was cut off: that is an error, never a short log.
func (c *Client) LogEvents(ctx context.Context, from, to int64) iter.Seq2[*chronicle.Event, error] {
	return func(yield func(*chronicle.Event, error) bool) {
		for to < 0 || from < to {
			end := from + logPage
			if to >= 0 {
				end = min(end, to)
			}
			var events []*chronicle.Event
			var trailer *api.ExportTrailer
			path := fmt.Sprintf("/events/export?format=ndjson&from_seq=%d&to_seq=%d", from, end)
			_, err := c.send(ctx, call{method: http.MethodGet, path: path, accept: "application/x-ndjson", idempotent: true,
				decode: func(r io.Reader) error {
					events, trailer = nil, nil
					return readExport(r, &events, &trailer)
				}})
			if err == nil && trailer == nil {
				err = fmt.Errorf("the export of seq %d to %d was cut off (no trailer line)", from, end)
			}
			if err == nil && trailer.Trailer.Count != int64(len(events)) {
				err = fmt.Errorf("the export of seq %d to %d holds %d events and its trailer says %d", from, end, len(events), trailer.Trailer.Count)
			}
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
			if to < 0 && len(events) == 0 {
				return
			}
			from = end
		}
	}
}

// readExport reads an NDJSON export: events, then the trailer.
func readExport(r io.Reader, events *[]*chronicle.Event, trailer **api.ExportTrailer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if *trailer != nil {
			return errors.New("export: a line after the trailer")
		}
		if bytes.HasPrefix(line, []byte(`{"trailer":`)) {
			*trailer = new(api.ExportTrailer)
			if err := json.Unmarshal(line, *trailer); err != nil {
				return fmt.Errorf("export trailer: %w", err)
			}
			continue
		}
		var e chronicle.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		*events = append(*events, &e)
	}
	return sc.Err()
}

// Redact erases the content of event id, keeping its place and leaf hash
// in the log, with reason recorded (POST /events/{id}/redact; an admin
// key). It returns what remains of the event.
func (c *Client) Redact(ctx context.Context, id, reason string) (*chronicle.Event, error) {
	body, err := jsonBody(api.RedactRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	var e chronicle.Event
	if _, err := c.send(ctx, call{method: http.MethodPost, path: "/events/" + url.PathEscape(id) + "/redact", body: body,
		once: true, decode: into(&e)}); err != nil {
		return nil, err
	}
	return &e, nil
}
