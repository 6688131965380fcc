package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicle-audit/chronicle"
)

var _ chronicle.IdempotencyStore = (*Store)(nil)

// ClaimIdempotencyKey implements chronicle.IdempotencyStore. The primary
// key decides between concurrent claims, from any process: the insert of
// the loser waits for the winner's and does nothing. The winner's record
// is then read by a statement of its own, whose snapshot sees it.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec *chronicle.IdempotencyRecord) (*chronicle.IdempotencyRecord, bool, error) {
	events, err := json.Marshal(rec.Events)
	if err != nil {
		return nil, false, fmt.Errorf("idempotency key %s: events: %w", rec.Key, err)
	}
	response := rec.Response
	if response == nil {
		response = []byte{}
	}
	for range 2 { // twice at most: the existing key may be forgotten in between
		var claimed bool
		err := s.run(ctx, false, func() error {
			tag, err := s.pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint, status, response, events, created_at)
				VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7) ON CONFLICT (scope, key) DO NOTHING`,
				rec.Scope, rec.Key, rec.Fingerprint, rec.Status, response, string(events), rec.CreatedAt)
			claimed = tag.RowsAffected() == 1
			return err
		})
		if err != nil || claimed {
			return nil, claimed, err
		}
		var existing *chronicle.IdempotencyRecord
		err = s.run(ctx, true, func() error {
			var err error
			existing, err = scanIdempotency(s.pool.QueryRow(ctx, `SELECT scope, key, fingerprint, status, response, events, created_at
				FROM idempotency_keys WHERE scope = $1 AND key = $2`, rec.Scope, rec.Key))
			return err
		})
		if errors.Is(err, chronicle.ErrNotFound) {
			continue
		}
		return existing, false, err
	}
	return nil, false, chronicle.Unavailable(time.Second, "the idempotency key is being forgotten and claimed at once; retry", nil)
}

func scanIdempotency(row pgx.Row) (*chronicle.IdempotencyRecord, error) {
	var r chronicle.IdempotencyRecord
	var events []byte
	if err := row.Scan(&r.Scope, &r.Key, &r.Fingerprint, &r.Status, &r.Response, &events, &r.CreatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(events, &r.Events); err != nil {
		return nil, fmt.Errorf("idempotency key %s: corrupt events: %w", r.Key, err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

// ForgetIdempotencyKeys implements chronicle.IdempotencyStore.
func (s *Store) ForgetIdempotencyKeys(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.run(ctx, false, func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}
