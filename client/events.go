package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// PostOption changes how Post and PostBatch send.
type PostOption func(*postOptions)

type postOptions struct {
	key string
}

// WithIdempotencyKey sends key as the Idempotency-Key instead of a random
// one: a producer that retries on its own, across restarts, keeps its
// events stored once by sending the same key with the same events.
func WithIdempotencyKey(key string) PostOption {
	return func(o *postOptions) { o.key = key }
}

// Post sends one event and returns the service's answer: the event's id.
// The service holds the event durably once it answers.
//
// Unless retries are off (MaxAttempts 1), every call sends an
// Idempotency-Key, a random UUID unless WithIdempotencyKey chose it, and
// the same on each retry of the call, so a retry never stores the event
// twice.
func (c *Client) Post(ctx context.Context, ev api.EventInput, opts ...PostOption) (api.Accepted, error) {
	var acc api.Accepted
	err := c.postEvents(ctx, ev, opts, into(&acc))
	return acc, err
}

// PostBatch sends up to 1000 events in one request and returns what
// became of each. Valid events are accepted even when others are not.
// When none is, the service answers 422: PostBatch returns the decoded
// answer along with the *Error. Idempotency keys are as for Post.
func (c *Client) PostBatch(ctx context.Context, evs []api.EventInput, opts ...PostOption) (api.BatchResponse, error) {
	var resp api.BatchResponse
	if len(evs) == 0 {
		return resp, errors.New("post batch: no events")
	}
	err := c.postEvents(ctx, evs, opts, into(&resp))
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
		var rejected api.BatchResponse
		if json.Unmarshal(ae.Body, &rejected) == nil && rejected.Results != nil {
			return rejected, err
		}
	}
	return resp, err
}

func (c *Client) postEvents(ctx context.Context, v any, opts []PostOption, decode func(io.Reader) error) error {
	var o postOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.key == "" && c.opts.MaxAttempts > 1 {
		o.key = uuid.NewString()
	}
	body, err := jsonBody(v)
	if err != nil {
		return err
	}
	_, err = c.send(ctx, call{method: http.MethodPost, path: "/events", body: body,
		idempotencyKey: o.key, idempotent: o.key != "", decode: decode})
	return err
}

// RawResult is what PostRaw got.
type RawResult struct {
	// Status is the answer's HTTP status, 0 when none came.
	Status int
	// Accepted and Rejected count the events of the answer: those of a
	// batch answer (202 or 422), or 1 accepted for a single event's 202.
	Accepted, Rejected int
}

// PostRaw sends body, one event or a batch already encoded as
// contentType, to POST /events once: no Idempotency-Key, no retry. It is
// for load generators, which encode their own bodies and count every
// answer. An answer outside 2xx is an *Error, returned with the counts of
// a batch's 422.
func (c *Client) PostRaw(ctx context.Context, contentType string, body []byte) (RawResult, error) {
	var counts struct {
		Accepted *int `json:"accepted"`
		Rejected int  `json:"rejected"`
	}
	a, err := c.send(ctx, call{method: http.MethodPost, path: "/events", body: body, contentType: contentType,
		once: true, decode: into(&counts)})
	var ae *Error
	if errors.As(err, &ae) && json.Unmarshal(ae.Body, &counts) != nil {
		counts.Accepted = nil
	}
	res := RawResult{Status: a.status}
	switch {
	case counts.Accepted != nil:
		res.Accepted, res.Rejected = *counts.Accepted, counts.Rejected
	case err == nil:
		res.Accepted = 1
	}
	return res, err
}

// Event returns the event with id, enriched with its entity's name and
// attributes. An unknown id is an *Error wrapping chronicle.ErrNotFound.
func (c *Client) Event(ctx context.Context, id string) (*chronicle.Event, error) {
	var e chronicle.Event
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/events/" + url.PathEscape(id), idempotent: true, decode: into(&e)}); err != nil {
		return nil, err
	}
	return &e, nil
}

// EventHistory returns the event with the given id and its Message
// History (GET /events/{id}?include=history).
func (c *Client) EventHistory(ctx context.Context, id string) (*api.EventWithHistory, error) {
	var e api.EventWithHistory
	if _, err := c.send(ctx, call{method: http.MethodGet, path: "/events/" + url.PathEscape(id) + "?include=history", idempotent: true, decode: into(&e)}); err != nil {
		return nil, err
	}
	return &e, nil
}

// Query selects events, as GET /events's filters do. Empty fields do not
// filter.
type Query struct {
	Actor        string
	Action       string
	EventType    string
	ResourceType string
	// ResourceID filters when not nil: a resource_id may be empty.
	ResourceID    *string
	CorrelationID string
	EntityKey     string
	// Since is inclusive, Until exclusive; zero times do not bound.
	Since time.Time
	Until time.Time
	// OccurredSince and OccurredUntil bound occurred_at the same way.
	OccurredSince time.Time
	OccurredUntil time.Time
	// Limit is the page size, 1 to 1000; 0 is the service's default
	// (100). Count ignores it.
	Limit int
}

// Values returns the query parameters of q.
func (q Query) Values() url.Values {
	v := url.Values{}
	for _, p := range []struct{ name, value string }{
		{"actor", q.Actor},
		{"action", q.Action},
		{"event_type", q.EventType},
		{"resource_type", q.ResourceType},
		{"correlation_id", q.CorrelationID},
		{"entity_key", q.EntityKey},
	} {
		if p.value != "" {
			v.Set(p.name, p.value)
		}
	}
	if q.ResourceID != nil {
		v.Set("resource_id", *q.ResourceID)
	}
	for _, p := range []struct {
		name string
		t    time.Time
	}{{"since", q.Since}, {"until", q.Until}, {"occurred_since", q.OccurredSince}, {"occurred_until", q.OccurredUntil}} {
		if !p.t.IsZero() {
			v.Set(p.name, p.t.UTC().Format(time.RFC3339Nano))
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// path returns GET path with q's parameters.
func (q Query) path(path string) string {
	if v := q.Values(); len(v) > 0 {
		return path + "?" + v.Encode()
	}
	return path
}

// Count returns how many events match q (its Limit aside).
func (c *Client) Count(ctx context.Context, q Query) (int64, error) {
	q.Limit = 0
	var n api.Count
	_, err := c.send(ctx, call{method: http.MethodGet, path: q.path("/events/count"), idempotent: true, decode: into(&n)})
	return n.Count, err
}

// Page is one page of a listing, newest event first.
type Page struct {
	Events []*chronicle.Event
	// Next is where the next page is, as the service's Link header said,
	// or "" on the last page.
	Next string
}

// EventsPage returns the first page of the events that match q. NextPage
// continues.
func (c *Client) EventsPage(ctx context.Context, q Query) (Page, error) {
	return c.page(ctx, q.path("/events"))
}

// NextPage returns the page after p, or an empty Page when p is the last.
// The next page must be at the client's service: the API key is never
// sent anywhere else.
func (c *Client) NextPage(ctx context.Context, p Page) (Page, error) {
	if p.Next == "" {
		return Page{}, nil
	}
	return c.page(ctx, p.Next)
}

func (c *Client) page(ctx context.Context, path string) (Page, error) {
	var p Page
	a, err := c.send(ctx, call{method: http.MethodGet, path: path, idempotent: true, decode: into(&p.Events)})
	if err != nil {
		return Page{}, err
	}
	p.Next = nextLink(a.header)
	return p, nil
}

// Events returns every event that matches q, newest first, following the
// pages' Link headers; q.Limit is the page size. It holds one page at a
// time. It stops at the first error, which it yields, and when the
// consumer stops. A service that sends the same next page twice in a
// row, or an event newer than one it sent before, would make the listing
// run for ever or repeat itself: that is an error too.
func (c *Client) Events(ctx context.Context, q Query) iter.Seq2[*chronicle.Event, error] {
	return func(yield func(*chronicle.Event, error) bool) {
		page, err := c.EventsPage(ctx, q)
		var last time.Time
		for {
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range page.Events {
				if !last.IsZero() && e.Timestamp.After(last) {
					yield(nil, fmt.Errorf("the service sent event %s (%s) after a newer one: the listing is out of order", e.ID, e.Timestamp.Format(chronicle.TimestampLayout)))
					return
				}
				last = e.Timestamp
				if !yield(e, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			link := page.Next
			page, err = c.NextPage(ctx, page)
			if err == nil && page.Next == link {
				err = fmt.Errorf("the service sent the same page link twice: %s", link)
			}
		}
	}
}

// nextLink returns the target of a rel="next" Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for part := range strings.SplitSeq(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ">")
			if !ok || !strings.HasPrefix(target, "<") {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(name), "rel") && strings.Trim(strings.TrimSpace(val), `"`) == "next" {
					return target[1:]
				}
			}
		}
	}
	return ""
}
