package chronicle

import (
	"context"
	"time"
)

// IdempotencyRecord is what a POST /events with an Idempotency-Key left
// behind: enough to answer a retry exactly as the first attempt was
// answered, and to publish the same events (same IDs) again in case the
// first attempt died between claiming the key and publishing.
type IdempotencyRecord struct {
	// Scope is whose key it is: the identity of the API key that used it,
	// or "" when access control is off. Keys of different scopes never
	// meet.
	Scope string
	Key   string
	// Fingerprint identifies the request body (a hash); the same key with
	// another body is a conflict.
	Fingerprint string
	// Status and Response are the answer given.
	Status   int
	Response []byte
	// Events are the events accepted, as published.
	Events    []*Event
	CreatedAt time.Time
}

// IdempotencyStore keeps idempotency keys where every producer process
// sees them: in the store, not in a process.
type IdempotencyStore interface {
	// ClaimIdempotencyKey records rec if its key is new in its scope and
	// returns claimed=true. If the key exists in that scope it returns the
	// existing record and claimed=false, whatever its fingerprint.
	ClaimIdempotencyKey(ctx context.Context, rec *IdempotencyRecord) (existing *IdempotencyRecord, claimed bool, err error)
	// ForgetIdempotencyKeys deletes the records created before t and
	// returns how many.
	ForgetIdempotencyKeys(ctx context.Context, before time.Time) (int, error)
}
