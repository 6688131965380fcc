package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chronicle-audit/chronicle"
)

var _ chronicle.IdempotencyStore = (*Store)(nil)

// ClaimIdempotencyKey implements chronicle.IdempotencyStore. The insert
// and the read of a concurrent winner happen in the writer's transaction,
// so two processes (or requests) never both claim a key.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec *chronicle.IdempotencyRecord) (*chronicle.IdempotencyRecord, bool, error) {
	events, err := json.Marshal(rec.Events)
	if err != nil {
		return nil, false, err
	}
	var existing *chronicle.IdempotencyRecord
	claimed := false
	err = s.write(ctx, func(tx *sql.Tx) error {
		existing, claimed = nil, false
		res, err := tx.Exec(`INSERT INTO idempotency_keys (scope, key, fingerprint, status, response, events, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`,
			rec.Scope, rec.Key, rec.Fingerprint, rec.Status, rec.Response, events, rec.CreatedAt.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			claimed = true
			return nil
		}
		existing, err = scanIdempotency(tx.QueryRow(`SELECT scope, key, fingerprint, status, response, events, created_at
			FROM idempotency_keys WHERE scope = ? AND key = ?`, rec.Scope, rec.Key))
		return err
	})
	return existing, claimed, err
}

func scanIdempotency(row *sql.Row) (*chronicle.IdempotencyRecord, error) {
	var r chronicle.IdempotencyRecord
	var events []byte
	var created int64
	if err := row.Scan(&r.Scope, &r.Key, &r.Fingerprint, &r.Status, &r.Response, &events, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errors.New("idempotency key vanished while being claimed")
		}
		return nil, err
	}
	if err := json.Unmarshal(events, &r.Events); err != nil {
		return nil, fmt.Errorf("idempotency key %s: corrupt events: %w", r.Key, err)
	}
	r.CreatedAt = time.UnixMicro(created).UTC()
	return &r, nil
}

// ForgetIdempotencyKeys implements chronicle.IdempotencyStore.
func (s *Store) ForgetIdempotencyKeys(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM idempotency_keys WHERE created_at < ?`, before.UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
