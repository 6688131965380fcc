// Package client is a typed Go client of a running Chronicle: the SDK for
// producers that send audit events and for tools that read them, and the
// engine of the chronicle command's client subcommands.
//
// It speaks the JSON shapes of package api and the domain types of package
// chronicle. Every method takes a context first; answers outside 2xx are
// *Error. Requests that are safe to repeat are retried with backoff: GETs,
// entity writes and POST /events with an Idempotency-Key (Post and
// PostBatch send one unless retries are off), on a network error or a
// 429, 502, 503 or 504 answer, honouring Retry-After. Other requests are
// retried only on 429, which the service answers before doing anything.
// No request is ever retried on another 4xx. A Client is safe for
// concurrent use.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 4
	DefaultRetryMin    = 200 * time.Millisecond
	DefaultRetryMax    = 10 * time.Second
	DefaultConns       = 2
	DefaultUserAgent   = "chronicle-go-client"
)

// Options tune a Client. The zero value is ready to use.
type Options struct {
	// APIKey is sent as Authorization: Bearer <key>, and to the base
	// URL's scheme and host only. Defaults to none, for a service whose
	// access control is off.
	APIKey string
	// HTTPClient sends the requests. Defaults to a client of its own
	// that keeps Conns idle connections.
	HTTPClient *http.Client
	// Timeout bounds each attempt of a request, reading the answer
	// included. Defaults to 30s.
	Timeout time.Duration
	// MaxAttempts is how many times a request may be sent; 1 sends
	// each request once. Defaults to 4.
	MaxAttempts int
	// RetryMin is the wait before the first retry; it doubles at each
	// retry, with jitter, up to RetryMax. Defaults to 200ms.
	RetryMin time.Duration
	// RetryMax caps the wait between attempts. An answer whose
	// Retry-After is longer ends the retries: its error carries the
	// Retry-After for the caller to decide. Defaults to 10s.
	RetryMax time.Duration
	// Conns is how many idle connections are kept for reuse, about as
	// many as requests the caller runs at once. Ignored with HTTPClient.
	// Defaults to 2.
	Conns int
	// UserAgent is sent as User-Agent. Defaults to "chronicle-go-client".
	UserAgent string
}

func (o *Options) withDefaults() {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryMin == 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
}

func (o *Options) validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("Timeout must not be negative, not %v", o.Timeout)
	case o.MaxAttempts < 0:
		return fmt.Errorf("MaxAttempts must be at least 1 (0 for the default), not %d", o.MaxAttempts)
	case o.RetryMin < 0:
		return fmt.Errorf("RetryMin must not be negative, not %v", o.RetryMin)
	case o.RetryMax < o.RetryMin:
		return fmt.Errorf("RetryMax (%v) must not be shorter than RetryMin (%v)", o.RetryMax, o.RetryMin)
	case o.Conns < 0:
		return fmt.Errorf("Conns must not be negative, not %d", o.Conns)
	case strings.ContainsAny(o.APIKey, "\r\n"):
		return errors.New("APIKey must be one line")
	}
	return nil
}

// Client talks to one Chronicle service.
type Client struct {
	base *url.URL
	opts Options
	hc   *http.Client
	// sleep waits between attempts, or returns ctx's error when ctx ends
	// first; tests replace it to keep the clock.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client of the service at baseURL, such as
// "http://localhost:8080" or "https://audit.example.com/chronicle"
// (requests go under its path). "host:port" means http://host:port. It
// fails only on a URL or options it cannot use.
func New(baseURL string, opts Options) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = max(tr.MaxIdleConns, opts.Conns)
		tr.MaxIdleConnsPerHost = opts.Conns
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: base, opts: opts, hc: hc, sleep: sleep}, nil
}

// parseBaseURL reads a service's base URL. Its errors quote the URL
// without any password.
func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw != "" && !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("base URL is not a URL: must be an http:// or https:// URL such as http://localhost:8080")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base URL %q: must be an http:// or https:// URL such as http://localhost:8080", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("base URL %q has no host: must be an http:// or https:// URL such as http://localhost:8080", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("base URL %q: must not have a query or a fragment", u.Redacted())
	}
	return u, nil
}

// Close releases the client's idle connections. The client can still be
// used; it opens new ones.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// String is the base URL, without any password, for messages.
func (c *Client) String() string { return c.base.Redacted() }

// BaseURL returns a copy of the base URL.
func (c *Client) BaseURL() *url.URL {
	u := *c.base
	return &u
}

// resolve puts path under the base URL's path, so a service behind a path
// prefix works. An absolute URL (from a Link header) must point at the
// same service: the API key is never sent anywhere else.
func (c *Client) resolve(path string) (*url.URL, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	if ref.IsAbs() || ref.Host != "" {
		if ref.Scheme != c.base.Scheme || ref.Host != c.base.Host {
			return nil, fmt.Errorf("refusing to follow %s: it is not at %s", ref.Redacted(), c)
		}
		return ref, nil
	}
	u := *c.base
	prefix := strings.TrimSuffix(c.base.Path, "/")
	if !strings.HasPrefix(ref.Path, prefix+"/") {
		u.Path = prefix + ref.Path
		u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + ref.EscapedPath()
	} else {
		// Already under the prefix (a Link header written by a service
		// that knows it).
		u.Path, u.RawPath = ref.Path, ref.RawPath
	}
	u.RawQuery = ref.RawQuery
	return &u, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter returns a random duration in [d/2, d): retries of many clients
// spread out instead of arriving together.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}
