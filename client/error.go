package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// maxErrorBody bounds how much of an error answer is read: enough for any
// JSON error Chronicle writes, little enough that a base URL pointing at
// a large page cannot flood memory.
const maxErrorBody = 64 << 10

// Error is an answer of the service outside 2xx. It wraps the domain's
// sentinel error for its status (chronicle.ErrNotFound for 404,
// chronicle.ErrUnavailable for 429 and 503…), so callers can test it with
// errors.Is.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error", followed by ": " and its
	// "reason" when there is one; for an answer that is not Chronicle's
	// JSON, a short excerpt of the body.
	Message string
	// Reason is the answer's "reason", the detail of a validation
	// failure, or "".
	Reason string
	// RetryAfter is how long the answer's Retry-After asks to wait, or 0.
	RetryAfter time.Duration
	// Body is the answer as read (at most 64 KiB), for callers that want
	// more of it.
	Body []byte
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("service answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns the domain's error for the status, or nil.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return chronicle.ErrInvalid
	case http.StatusNotFound:
		return chronicle.ErrNotFound
	case http.StatusConflict:
		return chronicle.ErrConflict
	case http.StatusRequestEntityTooLarge:
		return chronicle.ErrTooLarge
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return chronicle.ErrUnavailable
	}
	return nil
}

// newError reads an answer outside 2xx whose body is data.
func newError(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode, Body: data, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var body api.Error
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message, e.Reason = body.Error, body.Reason
		if body.Reason != "" {
			e.Message += ": " + body.Reason
		}
		return e
	}
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	e.Message = s
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// transportError is a request that got no answer: the service could not
// be reached, or did not answer in time.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
