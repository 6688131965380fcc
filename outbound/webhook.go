package outbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/chronicle-audit/chronicle/routing"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Sign returns the Standard Webhooks signature of body: "v1," and the
// base64 HMAC-SHA256, keyed with secret, of "id.timestamp.body".
func Sign(secret []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// webhook POSTs each batch as a JSON array, signed.
type webhook struct {
	url    string
	shown  string // the URL without its query, for messages
	secret []byte
	format string
	client *http.Client
	now    func() time.Time
}

func newWebhook(s *routing.Sink, client *http.Client, now func() time.Time) *webhook {
	shown := s.URL
	if u, err := url.Parse(s.URL); err == nil {
		u.RawQuery, u.Fragment = "", ""
		shown = u.String()
	}
	if client == nil {
		// A transport of its own: closing its idle connections touches
		// no one else's.
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c := *client
	c.Timeout = s.Timeout
	// A redirect is a failed attempt, never followed: a 301 or 302 would
	// turn the POST into a GET without the batch, and its 200 would count
	// the batch as delivered.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &webhook{url: s.URL, shown: shown, secret: s.Secret, format: s.Format, client: &c, now: now}
}

// deliveryError is a failed attempt: what to log and show, and how long
// the receiver asked us to wait (Retry-After), if it did.
type deliveryError struct {
	msg        string
	retryAfter time.Duration
}

func (e *deliveryError) Error() string { return e.msg }

func (w *webhook) deliver(ctx context.Context, b *batch) error {
	body := make([]byte, 0, b.size+len(b.records)+2)
	body = append(body, '[')
	for i, r := range b.records {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r...)
	}
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &deliveryError{msg: "POST " + w.shown + ": " + err.Error()}
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", contentType(w.format))
	req.Header.Set("User-Agent", "chronicle-sink")
	req.Header.Set(HeaderID, b.id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(w.secret, b.id, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may hold a query with a token
		}
		return &deliveryError{msg: "POST " + w.shown + ": " + err.Error()}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	de := &deliveryError{msg: fmt.Sprintf("POST %s: %s", w.shown, resp.Status)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		de.retryAfter = retryAfter(resp.Header.Get("Retry-After"), w.now())
	}
	return de
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (w *webhook) tick(time.Time) error { return nil }
func (w *webhook) close() error         { w.client.CloseIdleConnections(); return nil }
