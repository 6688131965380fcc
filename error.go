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
	// query parameter), or a store refuses the data for good. The message
	// says what and where.
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: the request is larger than a limit allows.
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable: the transport or store cannot take the request now;
	// the client may retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrClosed: the component has been stopped.
	ErrClosed = errors.New("closed")
)

// Two kinds of text travel in Chronicle's errors. The message of an error
// built here (Errorf, Wrap, Unavailable, a ValidationError) is written for
// the client: it names the field or the limit, and never holds a driver's
// or a server's words. Whatever a dependency said is kept as the cause,
// which Error() includes for logs and Public leaves out.

// Errorf returns an error that wraps kind (one of the sentinels) with a
// message for the client, e.g. Errorf(ErrInvalid, "limit must be 1 to 1000").
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind whose client message is msg and whose
// cause, logged but never shown, is cause.
func Wrap(kind error, msg string, cause error) error {
	return &kindError{kind: kind, msg: msg, cause: cause}
}

type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *kindError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func (e *kindError) public() string { return e.msg }

// ValidationError is an event that is well-formed JSON but breaks a rule of
// the ingestion pipeline. Reason is the client-facing sentence, e.g.
// "actor is required".
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string  { return "validation failed: " + e.Reason }
func (e *ValidationError) public() string { return e.Reason }

// UnavailableError is ErrUnavailable with a hint of when to retry. Reason
// is for the client ("RabbitMQ is unreachable"); Cause, when set, is the
// detail for logs.
type UnavailableError struct {
	Reason     string
	RetryAfter time.Duration
	Cause      error
}

func (e *UnavailableError) Error() string {
	if e.Cause != nil {
		return e.Reason + ": " + e.Cause.Error()
	}
	return e.Reason
}

func (e *UnavailableError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrUnavailable, e.Cause}
	}
	return []error{ErrUnavailable}
}

func (e *UnavailableError) public() string { return e.Reason }

// Unavailable returns an *UnavailableError: reason for the client, cause
// (may be nil) for logs.
func Unavailable(retryAfter time.Duration, reason string, cause error) error {
	return &UnavailableError{Reason: reason, RetryAfter: retryAfter, Cause: cause}
}

// Public returns the client's part of err's message: the message of the
// outermost error built by this package, without any cause. It returns ""
// when err holds none (an unexpected error, whose text is not for
// clients).
func Public(err error) string {
	var p interface{ public() string }
	if errors.As(err, &p) {
		return p.public()
	}
	return ""
}
