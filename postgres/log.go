package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// The log's integrator: events enter log_pending as they are stored (see
// sqlInsertEvents), and one process at a time, holding a session advisory
// lock, moves them into log_leaves in batches, each event with the next
// seq. Every Store runs an integrator; the others wait for the lock, so
// when the integrating process dies (its session, and the lock, with it)
// another takes over within IntegratorStandby.

// integratorLock is the advisory lock key of the log's integrator ("chronlog").
const integratorLock int64 = 0x6368726f6e6c6f67

// Defaults of the integrator.
const (
	// DefaultIntegrateEvery is how long an idle integrator waits before
	// looking for pending events again.
	DefaultIntegrateEvery = 20 * time.Millisecond
	// DefaultIntegratorStandby is how often a process that does not hold
	// the lock tries to take it.
	DefaultIntegratorStandby = time.Second
	// integrateBatch events at most are integrated per transaction.
	integrateBatch = 2000
)

var _ chronicle.Log = (*Store)(nil)

// integrate runs the integrator until ctx is done.
func (s *Store) integrate(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.leadIntegration(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("postgres: log integrator stopped; retrying", "err", describe(err))
		}
		sleep(ctx, jitter(s.opts.IntegratorStandby))
	}
}

// leadIntegration takes the integrator's lock, if it is free, and
// integrates until ctx is done or the connection fails.
func (s *Store) leadIntegration(ctx context.Context) error {
	if s.usable() != nil {
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The lock belongs to this session: the connection leaves the pool
	// for good, so no other use of it can unlock it.
	raw := conn.Hijack()
	defer raw.Close(context.Background())
	var leader bool
	if err := raw.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, integratorLock).Scan(&leader); err != nil || !leader {
		return err
	}
	s.logger.Info("postgres: this process integrates the log")
	var log *integrity.Appender
	for ctx.Err() == nil {
		n, err := s.integrateBatch(ctx, raw, &log)
		if err != nil {
			return err
		}
		if n < integrateBatch {
			sleep(ctx, s.opts.IntegrateEvery)
		}
	}
	return nil
}

// integrateBatch moves up to integrateBatch pending events into the log,
// in one transaction. *log is the appender as of the last commit, or nil.
func (s *Store) integrateBatch(ctx context.Context, conn *pgx.Conn, log **integrity.Appender) (int, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	var size int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM log_leaves`).Scan(&size); err != nil {
		return 0, err
	}
	if *log == nil || (*log).Size() != size {
		frontier, err := logHashes(ctx, tx, integrity.Frontier(size))
		if err != nil {
			return 0, err
		}
		if *log, err = integrity.NewAppender(size, frontier); err != nil {
			return 0, err
		}
	}
	rows, err := tx.Query(ctx, `SELECT pos, event_id, leaf FROM log_pending ORDER BY pos LIMIT `+fmt.Sprint(integrateBatch))
	if err != nil {
		return 0, err
	}
	var pos []int64
	var ids []uuid.UUID
	var leaves [][]byte
	for rows.Next() {
		var p int64
		var id uuid.UUID
		var leaf []byte
		if err := rows.Scan(&p, &id, &leaf); err != nil {
			rows.Close()
			return 0, err
		}
		pos, ids, leaves = append(pos, p), append(ids, id), append(leaves, leaf)
	}
	if err := rows.Err(); err != nil || len(pos) == 0 {
		return 0, err
	}
	if err := s.backfillLeaves(ctx, tx, ids, leaves); err != nil {
		return 0, err
	}
	app := *log
	*log = nil // until the commit: a failed transaction leaves it ahead
	seqs := make([]int64, len(ids))
	hashes := make([][]byte, len(ids))
	for i, leaf := range leaves {
		if seqs[i], hashes[i], err = app.Append(chronicle.Hash(leaf)); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO log_leaves (seq, event_id, hashes) SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[])`,
		seqs, ids, hashes); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM log_pending WHERE pos = ANY($1)`, pos); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	*log = app
	return len(pos), nil
}

// backfillLeaves computes the leaf hashes the queue does not hold: those
// of events stored before the log existed.
func (s *Store) backfillLeaves(ctx context.Context, tx pgx.Tx, ids []uuid.UUID, leaves [][]byte) error {
	var missing []uuid.UUID
	for i, l := range leaves {
		if len(l) != len(chronicle.Hash{}) {
			missing = append(missing, ids[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT `+readColumns+`, NULL::text[] FROM audit_events WHERE id = ANY($1)`, missing)
	if err != nil {
		return err
	}
	byID := map[string]chronicle.Hash{}
	for rows.Next() {
		e, err := scanEvent(rows, true)
		if err != nil {
			rows.Close()
			return err
		}
		byID[e.ID] = integrity.LeafHash(e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, l := range leaves {
		if len(l) == len(chronicle.Hash{}) {
			continue
		}
		h, ok := byID[ids[i].String()]
		if !ok {
			return fmt.Errorf("log_pending holds event %s, which is not stored", ids[i])
		}
		leaves[i] = h[:]
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// jitter is d ±20%, so processes do not knock on the lock together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

var _ querier = (*pgxpool.Pool)(nil)

// logHashes reads the stored hashes at indexes: each from the record that
// keeps it.
func logHashes(ctx context.Context, q querier, indexes []int64) ([]chronicle.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	var seqs []int64
	records := map[int64][]byte{}
	for _, x := range indexes {
		seq, _ := integrity.Locate(x)
		if _, ok := records[seq]; !ok {
			records[seq] = nil
			seqs = append(seqs, seq)
		}
	}
	rows, err := q.Query(ctx, `SELECT seq, hashes FROM log_leaves WHERE seq = ANY($1)`, seqs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var seq int64
		var hashes []byte
		if err := rows.Scan(&seq, &hashes); err != nil {
			rows.Close()
			return nil, err
		}
		records[seq] = hashes
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]chronicle.Hash, len(indexes))
	for i, x := range indexes {
		seq, level := integrity.Locate(x)
		if records[seq] == nil {
			return nil, chronicle.Errorf(chronicle.ErrNotFound, "the log has no record %d", seq)
		}
		h, err := integrity.HashAt(records[seq], level)
		if err != nil {
			return nil, fmt.Errorf("log record %d: %w", seq, err)
		}
		out[i] = h
	}
	return out, nil
}

// LogSize implements chronicle.Log.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.run(ctx, true, func() error {
		return s.pool.QueryRow(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM log_leaves`).Scan(&n)
	})
	return n, err
}

// LogHashes implements chronicle.Log.
func (s *Store) LogHashes(ctx context.Context, indexes []int64) ([]chronicle.Hash, error) {
	var out []chronicle.Hash
	err := s.run(ctx, true, func() error {
		var err error
		out, err = logHashes(ctx, s.pool, indexes)
		return err
	})
	return out, err
}

// EventsInLog implements chronicle.Log.
func (s *Store) EventsInLog(ctx context.Context, from, to int64, limit int) ([]*chronicle.Event, error) {
	var out []*chronicle.Event
	err := s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+readColumns+` FROM log_leaves l JOIN audit_events ON audit_events.id = l.event_id
WHERE l.seq >= $1 AND l.seq < $2 ORDER BY l.seq LIMIT $3`, from, to, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			e, err := scanEvent(rows, false)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// EventsInLogMatching implements chronicle.Log. seq lives in log_leaves,
// not with the event (the integrator gives it after the event is
// stored), so a page walks a window of log_leaves in seq order
// (index-only, migration 00010) and looks up each event by its primary
// key, filtering it there: a call reads at most chronicle.LogScanWindow
// places, whatever the filter. The lookup is a LATERAL subquery that the
// planner cannot flatten (OFFSET 0): as a plain join, a filter on a
// column of many values (actor) makes it scan audit_events whole for
// each page, estimating random reads dearer than they are. A correlation
// group is small, so that filter keeps the plain join, served by its
// index.
func (s *Store) EventsInLogMatching(ctx context.Context, f chronicle.EventFilter, from, to int64, limit int) ([]*chronicle.Event, int64, error) {
	from = max(from, 0)
	end := min(to, from+chronicle.LogScanWindow)
	if end <= from {
		return nil, from, nil
	}
	w, args, err := whereSQL(f, false)
	if err != nil {
		return nil, 0, err
	}
	n := len(args)
	cond := fmt.Sprintf(` WHERE l.seq >= $%d AND l.seq < $%d`, n+1, n+2)
	if w != "" {
		cond += " AND " + strings.TrimPrefix(w, " WHERE ")
	}
	q := `SELECT ` + eventColumns + `, l.seq, redaction FROM log_leaves l JOIN audit_events ON audit_events.id = l.event_id` +
		cond + fmt.Sprintf(` ORDER BY l.seq LIMIT %d`, limit)
	if f.CorrelationID == "" {
		inner := ` WHERE audit_events.id = l.event_id`
		if w != "" {
			inner += " AND " + strings.TrimPrefix(w, " WHERE ")
		}
		q = `SELECT ` + prefixed("e.", eventColumns) + `, l.seq, e.redaction
FROM (SELECT seq, event_id FROM log_leaves` + fmt.Sprintf(` WHERE seq >= $%d AND seq < $%d`, n+1, n+2) + ` ORDER BY seq) l
CROSS JOIN LATERAL (SELECT ` + eventColumns + `, redaction FROM audit_events` + inner + ` OFFSET 0) e
ORDER BY l.seq LIMIT ` + fmt.Sprint(limit)
	}
	// Planned for its values, as Events: a generic plan would be chosen
	// for an average filter.
	args = append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	args = append(args, from, end)
	var out []*chronicle.Event
	err = s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			e, err := scanEvent(rows, false)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, err
	}
	if len(out) == limit {
		end = *out[len(out)-1].Seq + 1
	}
	return out, end, nil
}

// prefixed qualifies each of a list of columns with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = p + c
	}
	return strings.Join(cols, ", ")
}

// SaveCheckpoint implements chronicle.Log.
func (s *Store) SaveCheckpoint(ctx context.Context, c *chronicle.Checkpoint) error {
	return s.run(ctx, true, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO log_checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			c.Size, string(c.Note), c.CreatedAt)
		return err
	})
}

// Checkpoint implements chronicle.Log.
func (s *Store) Checkpoint(ctx context.Context, size int64) (*chronicle.Checkpoint, error) {
	q, args := `SELECT size, note, created_at FROM log_checkpoints WHERE size = $1`, []any{size}
	if size < 0 {
		q, args = `SELECT size, note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1`, nil
	}
	cps, err := s.checkpoints(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "no checkpoint of size %d", size)
	}
	return cps[0], nil
}

// Checkpoints implements chronicle.Log.
func (s *Store) Checkpoints(ctx context.Context, from int64, limit int) ([]*chronicle.Checkpoint, error) {
	return s.checkpoints(ctx, `SELECT size, note, created_at FROM log_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2`, from, limit)
}

func (s *Store) checkpoints(ctx context.Context, q string, args ...any) ([]*chronicle.Checkpoint, error) {
	var out []*chronicle.Checkpoint
	err := s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var c chronicle.Checkpoint
			var note string
			if err := rows.Scan(&c.Size, &note, &c.CreatedAt); err != nil {
				return err
			}
			c.Note, c.CreatedAt = []byte(note), c.CreatedAt.UTC()
			out = append(out, &c)
		}
		return rows.Err()
	})
	return out, err
}

// TrustKey implements chronicle.Log.
func (s *Store) TrustKey(ctx context.Context, verifier string, rotate bool) (string, error) {
	var have string
	err := s.run(ctx, true, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// One process at a time decides: processes starting together
			// with different keys must not both be told theirs is trusted.
			if _, err := tx.Exec(ctx, `LOCK TABLE log_keys IN EXCLUSIVE MODE`); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, `SELECT verifier FROM log_keys WHERE retired_at IS NULL`).Scan(&have)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			case have == verifier || !rotate:
				return nil
			default:
				if _, err := tx.Exec(ctx, `UPDATE log_keys SET retired_at = now() WHERE retired_at IS NULL`); err != nil {
					return err
				}
			}
			have = verifier
			_, err = tx.Exec(ctx, `INSERT INTO log_keys (verifier, added_at) VALUES ($1, now())
ON CONFLICT (verifier) DO UPDATE SET retired_at = NULL, added_at = now()`, verifier)
			return err
		})
	})
	return have, err
}

// Redact implements chronicle.Log.
func (s *Store) Redact(ctx context.Context, id string, r chronicle.Redaction, record *chronicle.Event) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	args, err := insertArgs([]*chronicle.Event{record})
	if err != nil {
		return err
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	redaction, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.run(ctx, false, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var done *string
			err := tx.QueryRow(ctx, `SELECT redaction FROM audit_events WHERE id = $1 FOR UPDATE`, u).Scan(&done)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
			case err != nil:
				return err
			case done != nil:
				return chronicle.Errorf(chronicle.ErrConflict, "event %s was redacted already", id)
			}
			if _, err := tx.Exec(ctx, sqlInsertEvents, args...); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE audit_events SET actor = '', action = '', resource_type = '', resource_id = '',
    correlation_id = NULL, entity_key = NULL, metadata = NULL, occurred_at = NULL, redaction = $1 WHERE id = $2`, string(redaction), u)
			return err
		})
	})
}
