package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/chronicle-audit/chronicle/api"
)

// call is one request of the API.
type call struct {
	method string
	// path is under the base URL and may carry a query, or it is the
	// target of a Link header.
	path string
	// body, when not nil, is sent as contentType (default
	// application/json).
	body        []byte
	contentType string
	// accept is the Accept header. Defaults to application/json.
	accept string
	// idempotencyKey, when set, is sent as Idempotency-Key.
	idempotencyKey string
	// idempotent requests may be sent again after a network error or a
	// 502, 503 or 504: repeating them changes nothing.
	idempotent bool
	// once sends the request once, whatever MaxAttempts says.
	once bool
	// decode reads a 2xx answer's body; nil discards it.
	decode func(io.Reader) error
}

// jsonBody returns a call's body: v encoded as JSON.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// into decodes a JSON answer into v.
func into(v any) func(io.Reader) error {
	return func(r io.Reader) error { return json.NewDecoder(r).Decode(v) }
}

// answer is the status and headers of an answer; status is 0 when no
// answer came.
type answer struct {
	status int
	header http.Header
}

// send sends r, again while its failure is worth retrying and attempts
// remain, and returns the last answer.
func (c *Client) send(ctx context.Context, r call) (answer, error) {
	u, err := c.resolve(r.path)
	if err != nil {
		return answer{}, err
	}
	attempts := c.opts.MaxAttempts
	if r.once {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		a, err := c.attempt(ctx, &r, u)
		if err == nil || attempt >= attempts {
			return a, err
		}
		wait, ok := c.backoff(&r, err, attempt)
		if !ok {
			return a, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return a, err
		}
		if cerr := c.sleep(ctx, wait); cerr != nil {
			return a, fmt.Errorf("%w (not retried: %w)", err, cerr)
		}
	}
}

// attempt sends r once, bounded by the per-attempt timeout.
func (c *Client) attempt(ctx context.Context, r *call, u *url.URL) (answer, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, u.String(), body)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", cmp.Or(r.contentType, "application/json"))
	}
	req.Header.Set("Accept", cmp.Or(r.accept, "application/json"))
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if r.idempotencyKey != "" {
		req.Header.Set(api.IdempotencyKeyHeader, r.idempotencyKey)
	}
	if c.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, c.noAnswer(ctx, actx, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return a, newError(resp, data)
	}
	if r.decode != nil && resp.StatusCode != http.StatusNoContent {
		if err := r.decode(resp.Body); err != nil {
			if ctx.Err() != nil {
				return a, ctx.Err()
			}
			return a, fmt.Errorf("read answer of %s %s: %w", r.method, u.Path, err)
		}
	}
	// Drain what is left so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return a, nil
}

// noAnswer explains a request that got no answer: the caller's context
// ended, the attempt's time ran out, or the service could not be reached.
func (c *Client) noAnswer(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// url.Error repeats the method and full URL; say it once, plainly.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &transportError{msg: fmt.Sprintf("no answer from Chronicle at %s within %v", c, c.opts.Timeout), err: err}
	}
	return &transportError{msg: "cannot reach Chronicle at " + c.String(), err: err}
}

// backoff says how long to wait before sending r again after err, and
// false when err is not worth retrying: another 4xx (the same request
// would be refused again), a network error or a 502/503/504 for a request
// that is not idempotent (it may have been done), a Retry-After longer
// than RetryMax, or an error of the caller's own.
func (c *Client) backoff(r *call, err error, attempt int) (time.Duration, bool) {
	var te *transportError
	var ae *Error
	switch {
	case errors.As(err, &te):
		if !r.idempotent {
			return 0, false
		}
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusTooManyRequests:
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if !r.idempotent {
				return 0, false
			}
		default:
			return 0, false
		}
	default:
		return 0, false
	}
	d := c.opts.RetryMin
	for i := 1; i < attempt && d < c.opts.RetryMax; i++ {
		d *= 2
	}
	d = jitter(min(d, c.opts.RetryMax))
	if ae != nil && ae.RetryAfter > 0 {
		if ae.RetryAfter > c.opts.RetryMax {
			return 0, false
		}
		d = max(d, ae.RetryAfter)
	}
	return d, true
}
