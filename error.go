package chronicle

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Stores and transports translate their drivers' errors
// into these at their boundary; only the HTTP package maps them to statuses.
var (
	// ErrNotFound: the event, entity or queue does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts what is stored (an idempotency
	// key reused with another body).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed (bad JSON, missing field, bad
	// query parameter). The message says what and where.
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: the request is larger than a limit allows.
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable: the transport or store cannot take the request now;
	// the client may retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrClosed: the component has been stopped.
	ErrClosed = errors.New("closed")
)

// Errorf returns an error that wraps kind (one of the sentinels) with a
// message for the client, e.g. Errorf(ErrInvalid, "limit must be 1 to 1000").
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// ValidationError is an event that is well-formed JSON but breaks a rule of
// the ingestion pipeline. Reason is the client-facing sentence, e.g.
// "actor is required".
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return "validation failed: " + e.Reason }

// UnavailableError is ErrUnavailable with a hint of when to retry.
type UnavailableError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *UnavailableError) Error() string { return e.Reason }
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// Unavailable returns an *UnavailableError.
func Unavailable(retryAfter time.Duration, format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}
