package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// reply is one scripted answer of a fake service.
type reply struct {
	status     int
	retryAfter string
	body       string
	// hangup closes the connection without answering.
	hangup bool
}

// script is a fake service that answers requests with its replies in
// order (the last one again once they run out) and records what it got.
type script struct {
	mu       sync.Mutex
	replies  []reply
	requests []*http.Request
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	rep := s.replies[min(len(s.requests), len(s.replies))-1]
	s.mu.Unlock()
	if rep.hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	// No connection is reused, so a hangup is never retried by net/http
	// itself and each attempt is one request here.
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "application/json")
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (s *script) got() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// bundle is a client of a scripted service whose waits are recorded
// instead of slept.
type bundle struct {
	c      *Client
	script *script
	url    string
	mu     sync.Mutex
	waits  []time.Duration
}

func setup(t *testing.T, opts Options, replies ...reply) *bundle {
	t.Helper()
	b := &bundle{script: &script{replies: replies}}
	srv := httptest.NewServer(b.script)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.sleep = func(ctx context.Context, d time.Duration) error {
		b.mu.Lock()
		b.waits = append(b.waits, d)
		b.mu.Unlock()
		return ctx.Err()
	}
	b.c, b.url = c, srv.URL
	return b
}

func (b *bundle) recordedWaits() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waits
}

const healthyBody = `{"status":"healthy","transport":"inproc","store":"sqlite","entities":0,"auth":"off"}`

func TestRetry(t *testing.T) {
	t.Parallel()
	var (
		count = func(ctx context.Context, c *Client) error { _, err := c.Count(ctx, Query{}); return err }
		post  = func(ctx context.Context, c *Client) error {
			_, err := c.Post(ctx, api.EventInput{Actor: "a"})
			return err
		}
		raw = func(ctx context.Context, c *Client) error {
			_, err := c.PostRaw(ctx, "application/json", []byte(`{}`))
			return err
		}
		replay = func(ctx context.Context, c *Client) error {
			_, err := c.ReplayDeadLetters(ctx, "q.dlq", api.Selection{})
			return err
		}
		health = func(ctx context.Context, c *Client) error { _, err := c.Health(ctx); return err }
		put    = func(ctx context.Context, c *Client) error {
			return c.PutEntity(ctx, chronicle.Entity{Key: "k", Name: "n"})
		}
	)
	unavailable := reply{status: 503, retryAfter: "1", body: `{"error":"queue chronicle.all is full"}`}
	counted := reply{status: 200, body: `{"count":3}`}
	accepted := reply{status: 202, body: `{"status":"accepted","id":"x"}`}
	for _, tc := range []struct {
		name     string
		op       func(context.Context, *Client) error
		opts     Options
		replies  []reply
		attempts int
		// status is the final error's, 0 for none, -1 for no answer.
		status int
	}{
		{"GetRetriesUnavailable", count, Options{}, []reply{unavailable, counted}, 2, 0},
		{"GetRetriesGateways", count, Options{}, []reply{{status: 502}, {status: 504}, counted}, 3, 0},
		{"GetRetriesNetworkErrors", count, Options{}, []reply{{hangup: true}, {hangup: true}, counted}, 3, 0},
		{"GetGivesUpAfterMaxAttempts", count, Options{}, []reply{unavailable}, 4, 503},
		{"GetGivesUpAfterMaxAttemptsNetwork", count, Options{MaxAttempts: 2}, []reply{{hangup: true}}, 2, -1},
		{"RetryAfterBeyondRetryMax", count, Options{}, []reply{{status: 503, retryAfter: "60"}}, 1, 503},
		{"NeverOn400", count, Options{}, []reply{{status: 400, body: `{"error":"unknown query parameter"}`}}, 1, 400},
		{"NeverOn401", count, Options{}, []reply{{status: 401}}, 1, 401},
		{"NeverOn403", count, Options{}, []reply{{status: 403}}, 1, 403},
		{"NeverOn404", count, Options{}, []reply{{status: 404}}, 1, 404},
		{"NeverOn409", post, Options{}, []reply{{status: 409}}, 1, 409},
		{"NeverOn413", post, Options{}, []reply{{status: 413}}, 1, 413},
		{"NeverOn422", post, Options{}, []reply{{status: 422, body: `{"error":"validation_failed","reason":"actor is required"}`}}, 1, 422},
		{"NeverOn500", count, Options{}, []reply{{status: 500}}, 1, 500},
		{"PostRetries429And503", post, Options{}, []reply{{status: 429, retryAfter: "1"}, unavailable, accepted}, 3, 0},
		{"PostRetriesNetworkError", post, Options{}, []reply{{hangup: true}, accepted}, 2, 0},
		{"PostOnceWithoutRetries", post, Options{MaxAttempts: 1}, []reply{unavailable}, 1, 503},
		{"PostRawOnce", raw, Options{}, []reply{unavailable}, 1, 503},
		{"PostRawOnceNetwork", raw, Options{}, []reply{{hangup: true}}, 1, -1},
		{"ReplayRetries429", replay, Options{}, []reply{{status: 429}, {status: 200, body: `{"replayed":2}`}}, 2, 0},
		{"ReplayNotRetriedOn503", replay, Options{}, []reply{unavailable}, 1, 503},
		{"ReplayNotRetriedAfterHangup", replay, Options{}, []reply{{hangup: true}}, 1, -1},
		{"HealthOnce", health, Options{}, []reply{{status: 503, retryAfter: "1", body: `{"status":"draining","auth":"off"}`}}, 1, 503},
		{"PutEntityRetries", put, Options{}, []reply{{hangup: true}, {status: 201, body: `{"key":"k","status":"created"}`}}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.opts, tc.replies...)
			err := tc.op(t.Context(), b.c)
			if n := len(b.script.got()); n != tc.attempts {
				t.Errorf("%d attempts, want %d (err %v)", n, tc.attempts, err)
			}
			var ae *Error
			var te *transportError
			switch {
			case tc.status == 0 && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.status == -1 && !errors.As(err, &te):
				t.Errorf("error %v, want no answer", err)
			case tc.status > 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
				t.Errorf("error %v, want status %d", err, tc.status)
			}
			for _, w := range b.recordedWaits() {
				if w < DefaultRetryMin/2 || w > DefaultRetryMax {
					t.Errorf("waited %v, out of [RetryMin/2, RetryMax]", w)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c, err := New("localhost:1", Options{RetryMin: 100 * time.Millisecond, RetryMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	idempotent := &call{idempotent: true}
	for _, tc := range []struct {
		name     string
		err      error
		attempt  int
		min, max time.Duration // max 0: not retried
	}{
		{"First", &Error{Status: 503}, 1, 50 * time.Millisecond, 100 * time.Millisecond},
		{"Doubles", &Error{Status: 503}, 3, 200 * time.Millisecond, 400 * time.Millisecond},
		{"Capped", &Error{Status: 502}, 30, time.Second, 2 * time.Second},
		{"RetryAfter", &Error{Status: 429, RetryAfter: time.Second}, 1, time.Second, time.Second},
		{"RetryAfterShorterThanBackoff", &Error{Status: 503, RetryAfter: time.Second}, 30, time.Second, 2 * time.Second},
		{"ErrRetryAfterBeyondRetryMax", &Error{Status: 503, RetryAfter: 3 * time.Second}, 1, 0, 0},
		{"ErrNotFound", &Error{Status: 404}, 1, 0, 0},
		{"ErrCanceled", context.Canceled, 1, 0, 0},
		{"ErrDecode", errors.New("read answer of GET /events: unexpected EOF"), 1, 0, 0},
		{"NetworkError", &transportError{msg: "cannot reach Chronicle", err: io.EOF}, 2, 100 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 20 {
				d, ok := c.backoff(idempotent, tc.err, tc.attempt)
				switch {
				case tc.max == 0 && ok:
					t.Fatalf("retried after %v, want no retry", d)
				case tc.max > 0 && (!ok || d < tc.min || d > tc.max):
					t.Fatalf("backoff %v, %v; want [%v, %v]", d, ok, tc.min, tc.max)
				}
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	unavailable := reply{status: 503, body: `{"error":"RabbitMQ is unreachable"}`}
	accepted := reply{status: 202, body: `{"status":"accepted","id":"x"}`}
	keys := func(b *bundle) []string {
		var out []string
		for _, r := range b.script.got() {
			out = append(out, r.Header.Get(api.IdempotencyKeyHeader))
		}
		return out
	}

	t.Run("ReusedOnRetries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{}, unavailable, unavailable, accepted)
		if _, err := b.c.Post(t.Context(), api.EventInput{Actor: "a"}); err != nil {
			t.Fatal(err)
		}
		k := keys(b)
		if len(k) != 3 || !uuidRE.MatchString(k[0]) || k[1] != k[0] || k[2] != k[0] {
			t.Errorf("keys %q, want one random UUID sent three times", k)
		}
	})

	t.Run("NewPerCall", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{}, accepted)
		for range 2 {
			if _, err := b.c.PostBatch(t.Context(), []api.EventInput{{Actor: "a"}}); err != nil {
				t.Fatal(err)
			}
		}
		if k := keys(b); len(k) != 2 || k[0] == k[1] || !uuidRE.MatchString(k[1]) {
			t.Errorf("keys %q, want two different UUIDs", k)
		}
	})

	t.Run("Chosen", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{}, unavailable, accepted)
		if _, err := b.c.Post(t.Context(), api.EventInput{Actor: "a"}, WithIdempotencyKey("order-42")); err != nil {
			t.Fatal(err)
		}
		if k := keys(b); strings.Join(k, ",") != "order-42,order-42" {
			t.Errorf("keys %q, want order-42 twice", k)
		}
	})

	t.Run("NoneWithoutRetries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{MaxAttempts: 1}, accepted)
		b.c.Post(t.Context(), api.EventInput{Actor: "a"})
		b.c.Post(t.Context(), api.EventInput{Actor: "a"}, WithIdempotencyKey("k-1"))
		b.c.PostRaw(t.Context(), "application/json", []byte(`{}`))
		if k := keys(b); strings.Join(k, ",") != ",k-1," {
			t.Errorf("keys %q, want only the chosen one", k)
		}
	})
}

func TestContextEndsRetries(t *testing.T) {
	t.Parallel()
	unavailable := reply{status: 503, retryAfter: "2", body: `{"error":"full"}`}

	t.Run("DeadlineBeforeRetryAfter", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{}, unavailable)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := b.c.Count(ctx, Query{})
		var ae *Error
		if !errors.As(err, &ae) || ae.RetryAfter != 2*time.Second || len(b.script.got()) != 1 || len(b.recordedWaits()) != 0 {
			t.Errorf("error %v after %d attempts: want the 503 at once", err, len(b.script.got()))
		}
	})

	t.Run("CanceledWhileWaiting", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{}, unavailable)
		b.c.sleep = sleep
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := b.c.Count(ctx, Query{})
		var ae *Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) || time.Since(start) > time.Second {
			t.Errorf("error %v after %v: want the 503 and the cancellation, at once", err, time.Since(start))
		}
	})
}

// pagedService serves GET /events in pages of events named e0, e1, …,
// newest first, with a Link to the next page as Chronicle writes it. It
// counts the pages served.
type pagedService struct {
	total int
	// link, when set, replaces the next page's link.
	link  func(r *http.Request) string
	mu    sync.Mutex
	pages int
	t0    time.Time
}

func (p *pagedService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.pages++
	p.mu.Unlock()
	q := r.URL.Query()
	limit, from := 2, 0
	fmt.Sscan(q.Get("limit"), &limit)
	fmt.Sscan(q.Get("cursor"), &from)
	var parts []string
	for i := from; i < min(from+limit, p.total); i++ {
		ts := p.t0.Add(-time.Duration(i) * time.Second).Format(chronicle.TimestampLayout)
		parts = append(parts, fmt.Sprintf(`{"id":"e%d","actor":"a","action":"b","resource_type":"c","resource_id":"d","timestamp":%q}`, i, ts))
	}
	if from+limit < p.total {
		q.Set("cursor", fmt.Sprint(from+limit))
		link := r.URL.Path + "?" + q.Encode()
		if p.link != nil {
			link = p.link(r)
		}
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "["+strings.Join(parts, ",")+"]")
}

func TestEvents(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var seq atomic.Int64
	for _, tc := range []struct {
		name  string
		total int
		link  func(r *http.Request) string
		stop  int // break after this many events; 0: never
		want  string
		pages int
		err   string
	}{
		{"AllPages", 5, nil, 0, "e0 e1 e2 e3 e4", 3, ""},
		{"OnePage", 2, nil, 0, "e0 e1", 1, ""},
		{"Empty", 0, nil, 0, "", 1, ""},
		{"ConsumerStops", 5, nil, 3, "e0 e1 e2", 2, ""},
		{"ErrSameLinkTwice", 5, func(*http.Request) string { return "/events?cursor=2&limit=2" }, 0, "e0 e1", 2, "same page link twice"},
		{"ErrOtherHost", 5, func(*http.Request) string { return "http://evil.example/events?cursor=2" }, 0, "e0 e1", 1, "refusing to follow http://evil.example/events"},
		{"ErrBackInTime", 5, func(*http.Request) string { return fmt.Sprintf("/events?cursor=1&limit=3&n=%d", seq.Add(1)) }, 0, "e0 e1", 2, "out of order"},
		{"ErrPage", 5, func(*http.Request) string { return "/events?cursor=x&limit=2&bad=1" }, 0, "e0 e1", 2, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ps := &pagedService{total: tc.total, link: tc.link, t0: t0}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("bad") {
					ps.mu.Lock()
					ps.pages++
					ps.mu.Unlock()
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `{"error":"invalid cursor"}`)
					return
				}
				// Out of order: a page that starts above where the last ended.
				if r.URL.Query().Get("limit") == "3" {
					r.URL.RawQuery = "cursor=0&limit=2"
				}
				ps.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			c, err := New(srv.URL, Options{MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var iterErr error
			for e, err := range c.Events(t.Context(), Query{Limit: 2}) {
				if err != nil {
					iterErr = err
					break
				}
				got = append(got, e.ID)
				if len(got) == tc.stop {
					break
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("events %q, want %q", got, tc.want)
			}
			if ps.pages != tc.pages {
				t.Errorf("%d pages fetched, want %d", ps.pages, tc.pages)
			}
			switch {
			case tc.err == "" && iterErr != nil:
				t.Errorf("error %v", iterErr)
			case tc.err != "" && (iterErr == nil || !strings.Contains(iterErr.Error(), tc.err)):
				t.Errorf("error %v, want one saying %q", iterErr, tc.err)
			}
		})
	}
}

func TestEventsPage(t *testing.T) {
	t.Parallel()
	ps := &pagedService{total: 3, t0: time.Now()}
	mux := http.NewServeMux()
	mux.Handle("/chronicle/events", http.StripPrefix("/chronicle", ps))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/chronicle/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.EventsPage(t.Context(), Query{Limit: 2})
	if err != nil || len(p.Events) != 2 || p.Next != "/events?cursor=2&limit=2" {
		t.Fatalf("first page %+v, %v", p, err)
	}
	if p, err = c.NextPage(t.Context(), p); err != nil || len(p.Events) != 1 || p.Events[0].ID != "e2" || p.Next != "" {
		t.Fatalf("second page %+v, %v", p, err)
	}
	if p, err = c.NextPage(t.Context(), p); err != nil || p.Events != nil || ps.pages != 2 {
		t.Fatalf("after the last page: %+v, %v, %d requests", p, err, ps.pages)
	}
}

func TestQueryValues(t *testing.T) {
	t.Parallel()
	empty := ""
	since := time.Date(2026, 1, 2, 15, 4, 5, 123000000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		q    Query
		want string
	}{
		{"Empty", Query{}, ""},
		{"Filters", Query{Actor: "alice@example.com", Action: "login", EventType: "security.login", ResourceType: "security",
			CorrelationID: "r-1", EntityKey: "org:acme", Limit: 10},
			"action=login&actor=alice%40example.com&correlation_id=r-1&entity_key=org%3Aacme&event_type=security.login&limit=10&resource_type=security"},
		{"EmptyResourceID", Query{ResourceID: &empty}, "resource_id="},
		{"Times", Query{Since: since, Until: since.Add(time.Hour)}, "since=2026-01-02T14%3A04%3A05.123Z&until=2026-01-02T15%3A04%3A05.123Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.q.Values().Encode(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPostBatch(t *testing.T) {
	t.Parallel()
	rejected := `{"status":"rejected","accepted":0,"rejected":1,"results":[{"index":0,"error":"validation_failed","reason":"actor is required"}]}`
	b := setup(t, Options{}, reply{status: 422, body: rejected})
	resp, err := b.c.PostBatch(t.Context(), []api.EventInput{{Action: "a"}})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 422 || !errors.Is(err, chronicle.ErrInvalid) {
		t.Errorf("error %v, want the 422", err)
	}
	if resp.Status != "rejected" || resp.Rejected != 1 || len(resp.Results) != 1 || resp.Results[0].Reason != "actor is required" {
		t.Errorf("answer %+v, want the decoded 422", resp)
	}
	if _, err := b.c.PostBatch(t.Context(), nil); err == nil || len(b.script.got()) != 1 {
		t.Errorf("an empty batch: %v, want an error and no request", err)
	}
}

func TestPostRaw(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply reply
		want  RawResult
		err   bool
	}{
		{"Single", reply{status: 202, body: `{"status":"accepted","id":"x"}`}, RawResult{Status: 202, Accepted: 1}, false},
		{"Batch", reply{status: 202, body: `{"status":"accepted","accepted":2,"rejected":1,"results":[]}`}, RawResult{Status: 202, Accepted: 2, Rejected: 1}, false},
		{"BatchRejected", reply{status: 422, body: `{"status":"rejected","accepted":0,"rejected":3,"results":[]}`}, RawResult{Status: 422, Rejected: 3}, true},
		{"SingleRejected", reply{status: 422, body: `{"error":"validation_failed","reason":"actor is required"}`}, RawResult{Status: 422}, true},
		{"Unavailable", reply{status: 503, body: `{"error":"full"}`}, RawResult{Status: 503}, true},
		{"BadAnswer", reply{status: 202, body: `<html>`}, RawResult{Status: 202}, true},
		{"NoAnswer", reply{hangup: true}, RawResult{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{}, tc.reply)
			got, err := b.c.PostRaw(t.Context(), "application/x-ndjson", []byte("{}\n{}\n"))
			if got != tc.want || (err != nil) != tc.err {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
			if ct := b.script.got()[0].Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{}, reply{status: 200, body: healthyBody},
		reply{status: 503, retryAfter: "1", body: `{"status":"unhealthy","transport":"rabbitmq","auth":"on","error":"RabbitMQ is unreachable"}`},
		reply{status: 502, body: `<html>bad gateway</html>`})
	h, err := b.c.Health(t.Context())
	if err != nil || h.Status != "healthy" || h.Entities == nil || *h.Entities != 0 || h.Auth != "off" {
		t.Errorf("healthy: %+v, %v", h, err)
	}
	h, err = b.c.Health(t.Context())
	if !errors.Is(err, chronicle.ErrUnavailable) || h.Status != "unhealthy" || h.Error != "RabbitMQ is unreachable" {
		t.Errorf("unhealthy: %+v, %v; want the answer and the error", h, err)
	}
	h, err = b.c.Health(t.Context())
	if err == nil || h.Status != "" {
		t.Errorf("not Chronicle: %+v, %v", h, err)
	}
}

func TestMetric(t *testing.T) {
	t.Parallel()
	metrics := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_total{x=\"y\"} 1\n" +
		"process_resident_memory_bytes 2.5e+07\n" +
		"chronicle_events_rejected_total{reason=\"invalid\"} 3\n"
	b := setup(t, Options{}, reply{status: 200, body: metrics})
	if v, err := b.c.Metric(t.Context(), "process_resident_memory_bytes"); err != nil || v != 2.5e7 {
		t.Errorf("got %v, %v", v, err)
	}
	if _, err := b.c.Metric(t.Context(), "chronicle_events_rejected_total"); !errors.Is(err, chronicle.ErrNotFound) {
		t.Errorf("a labeled metric: %v, want not found", err)
	}
	b = setup(t, Options{}, reply{status: 404, body: `{"error":"not found: /metrics"}`})
	if _, err := b.c.Metric(t.Context(), "process_resident_memory_bytes"); !errors.Is(err, chronicle.ErrNotFound) {
		t.Errorf("no /metrics: %v, want not found", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	const key = "sekrit-key-0123456789"

	t.Run("Messages", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{APIKey: key, MaxAttempts: 1},
			reply{status: 422, body: `{"error":"validation_failed","reason":"actor is required"}`},
			reply{status: 502, body: "<html><body>Bad   gateway</body></html>"},
			reply{status: 409, body: `{"error":"Idempotency-Key \"k\" was already used with a different request body"}`})
		_, err := b.c.Post(t.Context(), api.EventInput{})
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != "actor is required" || ae.Message != "validation_failed: actor is required" ||
			err.Error() != "service answered 422 Unprocessable Entity: validation_failed: actor is required" {
			t.Errorf("422: %#v", err)
		}
		_, err = b.c.Entities(t.Context())
		if err == nil || err.Error() != "service answered 502 Bad Gateway: <html><body>Bad gateway</body></html>" {
			t.Errorf("502: %v", err)
		}
		_, err = b.c.Post(t.Context(), api.EventInput{})
		if !errors.Is(err, chronicle.ErrConflict) {
			t.Errorf("409: %v", err)
		}
		for _, r := range b.script.got() {
			if r.Header.Get("Authorization") != "Bearer "+key {
				t.Errorf("Authorization %q", r.Header.Get("Authorization"))
			}
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, err := New(url, Options{APIKey: key, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Post(t.Context(), api.EventInput{})
		if err == nil || !strings.HasPrefix(err.Error(), "cannot reach Chronicle at "+url+": ") || strings.Contains(err.Error(), key) {
			t.Errorf("error %v", err)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		c, err := New(srv.URL, Options{APIKey: key, MaxAttempts: 1, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Entities(t.Context())
		if err == nil || !strings.Contains(err.Error(), "no answer from Chronicle at "+srv.URL+" within 50ms") || strings.Contains(err.Error(), key) {
			t.Errorf("error %v", err)
		}
	})

	t.Run("NoKeyInErrors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{APIKey: key, MaxAttempts: 1}, reply{status: 401, body: `{"error":"missing or unknown API key"}`})
		for name, op := range map[string]func() error{
			"Post":     func() error { _, err := b.c.Post(t.Context(), api.EventInput{}); return err },
			"Entities": func() error { _, err := b.c.Entities(t.Context()); return err },
			"Link": func() error {
				_, err := b.c.NextPage(t.Context(), Page{Next: "http://other.example/events?cursor=x"})
				return err
			},
		} {
			if err := op(); err == nil || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "Bearer") {
				t.Errorf("%s: %v", name, err)
			}
		}
		if n := len(b.script.got()); n != 2 {
			t.Errorf("%d requests, want 2: the link to another host is not followed", n)
		}
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		opts      Options
		want      string // the base URL, or part of the error
	}{
		{"OK", "http://localhost:8080", Options{}, "http://localhost:8080"},
		{"NoScheme", "127.0.0.1:8080", Options{}, "http://127.0.0.1:8080"},
		{"HTTPS", " https://audit.example.com/chronicle ", Options{}, "https://audit.example.com/chronicle"},
		{"PasswordHidden", "http://u:pw@h:1", Options{}, "http://u:xxxxx@h:1"},
		{"ErrScheme", "ftp://example.com", Options{}, "must be an http:// or https:// URL"},
		{"ErrNoHost", "http://", Options{}, "has no host"},
		{"ErrEmpty", "", Options{}, "must be an http:// or https:// URL"},
		{"ErrQuery", "http://h:1/?x=1", Options{}, "must not have a query or a fragment"},
		{"ErrFragment", "http://h:1/#top", Options{}, "must not have a query or a fragment"},
		{"ErrPasswordInError", "ftp://u:pw@h", Options{}, "ftp://u:xxxxx@h"},
		{"ErrTimeout", "h:1", Options{Timeout: -time.Second}, "Timeout must not be negative"},
		{"ErrMaxAttempts", "h:1", Options{MaxAttempts: -1}, "MaxAttempts must be at least 1"},
		{"ErrRetryMax", "h:1", Options{RetryMin: time.Second, RetryMax: time.Millisecond}, "RetryMax (1ms) must not be shorter than RetryMin (1s)"},
		{"ErrConns", "h:1", Options{Conns: -2}, "Conns must not be negative"},
		{"ErrAPIKey", "h:1", Options{APIKey: "a\nb"}, "APIKey must be one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.url, tc.opts)
			if strings.HasPrefix(tc.name, "Err") {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one saying %q", err, tc.want)
				}
				return
			}
			if err != nil || c.String() != tc.want {
				t.Errorf("New(%q) = %v, %v; want %s", tc.url, c, err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, base, path, want string }{
		{"OK", "http://h:8080", "/events?limit=2", "http://h:8080/events?limit=2"},
		{"NoScheme", "h:8080", "/health", "http://h:8080/health"},
		{"Prefix", "http://h/chronicle/", "/events", "http://h/chronicle/events"},
		{"PrefixLink", "http://h/chronicle", "/chronicle/events?cursor=x", "http://h/chronicle/events?cursor=x"},
		{"AbsoluteSameHost", "http://h:8080", "http://h:8080/events?cursor=x", "http://h:8080/events?cursor=x"},
		{"ErrOtherHost", "http://h:8080", "http://evil:8080/events", ""},
		{"ErrOtherScheme", "https://h", "http://h/events", ""},
		{"ErrSchemeRelative", "http://h:8080", "//evil:8080/events", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.base, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			u, err := c.resolve(tc.path)
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("resolve(%q) = %s, want an error", tc.path, u)
			case tc.want != "" && (err != nil || u.String() != tc.want):
				t.Errorf("resolve(%q) = %v, %v; want %s", tc.path, u, err, tc.want)
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, header, want string }{
		{"OK", `</events?cursor=abc&limit=2>; rel="next"`, "/events?cursor=abc&limit=2"},
		{"Unquoted", `</events?cursor=abc>; rel=next`, "/events?cursor=abc"},
		{"AmongOthers", `</events>; rel="first", </events?cursor=c>; rel="next"`, "/events?cursor=c"},
		{"NoNext", `</events>; rel="prev"`, ""},
		{"Empty", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.header != "" {
				h.Set("Link", tc.header)
			}
			if got := nextLink(h); got != tc.want {
				t.Errorf("nextLink(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}
