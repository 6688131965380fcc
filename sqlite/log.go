package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// The store's single writer is the log's integrator: each event takes the
// next seq in the transaction that stores it. The writer keeps the tree's
// frontier (an integrity.Appender) between transactions and checks at the
// start of each that the log is still the size it knows, so another
// process writing the same file cannot make it reuse a seq.

const sqlLogSize = `SELECT coalesce(max(seq) + 1, 0) FROM log_leaves`

var _ chronicle.Log = (*Store)(nil)

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appender returns the log as tx sees it, ready to append to.
func (s *Store) appender(tx *sql.Tx) (*integrity.Appender, error) {
	st, err := s.stmt(tx, sqlLogSize)
	if err != nil {
		return nil, err
	}
	var size int64
	if err := st.QueryRow().Scan(&size); err != nil {
		return nil, err
	}
	if s.log != nil && s.log.Size() == size {
		return s.log, nil
	}
	frontier, err := logHashes(context.Background(), tx, integrity.Frontier(size))
	if err != nil {
		return nil, err
	}
	if s.log, err = integrity.NewAppender(size, frontier); err != nil {
		return nil, err
	}
	return s.log, nil
}

// sequenceBacklog adds to the log, oldest first, the events stored before
// the log existed. It runs before the writer starts.
func (s *Store) sequenceBacklog(ctx context.Context) error {
	total := 0
	for {
		n := 0
		err := s.inTx(func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT `+readColumns+` FROM audit_events WHERE seq IS NULL ORDER BY timestamp, id LIMIT 1000`)
			if err != nil {
				return err
			}
			var events []*chronicle.Event
			for rows.Next() {
				e, err := scanEvent(rows)
				if err != nil {
					rows.Close()
					return err
				}
				events = append(events, e)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(events) == 0 {
				return err
			}
			log, err := s.appender(tx)
			if err != nil {
				return err
			}
			for _, e := range events {
				seq, hashes, err := log.Append(integrity.LeafHash(e))
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE audit_events SET seq = ? WHERE id = ?`, seq, e.ID); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, insertLeafOne, seq, e.ID, hashes); err != nil {
					return err
				}
			}
			n = len(events)
			return nil
		})
		if err != nil {
			return fmt.Errorf("adding earlier events to the log: %w", err)
		}
		if n == 0 {
			if total > 0 {
				s.logger.Info("sqlite: events stored before the verifiable log are in it now", "events", total)
			}
			return nil
		}
		total += n
	}
}

// LogSize implements chronicle.Log.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	var n int64
	err := s.rdb.QueryRowContext(ctx, sqlLogSize).Scan(&n)
	return n, translate(err)
}

// LogHashes implements chronicle.Log.
func (s *Store) LogHashes(ctx context.Context, indexes []int64) ([]chronicle.Hash, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	hs, err := logHashes(ctx, s.rdb, indexes)
	return hs, translate(err)
}

// logHashes reads the stored hashes at indexes: each from the record that
// keeps it.
func logHashes(ctx context.Context, q querier, indexes []int64) ([]chronicle.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	records := map[int64][]byte{}
	var args []any
	for _, x := range indexes {
		seq, _ := integrity.Locate(x)
		if _, ok := records[seq]; !ok {
			records[seq] = nil
			args = append(args, seq)
		}
	}
	for start := 0; start < len(args); start += 500 {
		part := args[start:min(start+500, len(args))]
		rows, err := q.QueryContext(ctx, inSQL(`SELECT seq, hashes FROM log_leaves WHERE seq IN`, len(part)), part...)
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
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
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

// EventsInLog implements chronicle.Log.
func (s *Store) EventsInLog(ctx context.Context, from, to int64, limit int) ([]*chronicle.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+prefixed("a.", readColumns)+`
FROM log_leaves l JOIN audit_events a ON a.id = l.event_id
WHERE l.seq >= ? AND l.seq < ? ORDER BY l.seq LIMIT ?`, from, to, limit)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*chronicle.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// EventsInLogMatching implements chronicle.Log. A page walks
// idx_audit_events_seq (migration 00010) over a window of the log and
// filters the events it reads, whatever the filter: the planner, left to
// itself, would read every event of an actor and sort them for each
// page. A correlation group is small, so that filter is left to its own
// index.
func (s *Store) EventsInLogMatching(ctx context.Context, f chronicle.EventFilter, from, to int64, limit int) ([]*chronicle.Event, int64, error) {
	if err := s.usable(); err != nil {
		return nil, 0, err
	}
	from = max(from, 0)
	end := min(to, from+chronicle.LogScanWindow)
	if end <= from {
		return nil, from, nil
	}
	w, args := where(f, false)
	cond := ` WHERE seq >= ? AND seq < ?`
	if w != "" {
		cond += " AND " + strings.TrimPrefix(w, " WHERE ")
	}
	args = append([]any{from, end}, args...)
	args = append(args, limit)
	table := ` FROM audit_events INDEXED BY idx_audit_events_seq`
	if f.CorrelationID != "" {
		table = ` FROM audit_events`
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+readColumns+table+cond+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, 0, translate(err)
	}
	defer rows.Close()
	var out []*chronicle.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, 0, translate(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, translate(err)
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
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO log_checkpoints (size, note, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			c.Size, string(c.Note), c.CreatedAt.UnixMicro())
		return err
	})
}

// Checkpoint implements chronicle.Log.
func (s *Store) Checkpoint(ctx context.Context, size int64) (*chronicle.Checkpoint, error) {
	q, args := `SELECT size, note, created_at FROM log_checkpoints WHERE size = ?`, []any{size}
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
	return s.checkpoints(ctx, `SELECT size, note, created_at FROM log_checkpoints WHERE size >= ? ORDER BY size LIMIT ?`, from, limit)
}

func (s *Store) checkpoints(ctx context.Context, q string, args ...any) ([]*chronicle.Checkpoint, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*chronicle.Checkpoint
	for rows.Next() {
		var c chronicle.Checkpoint
		var note string
		var at int64
		if err := rows.Scan(&c.Size, &note, &at); err != nil {
			return nil, translate(err)
		}
		c.Note, c.CreatedAt = []byte(note), time.UnixMicro(at).UTC()
		out = append(out, &c)
	}
	return out, translate(rows.Err())
}

// TrustKey implements chronicle.Log.
func (s *Store) TrustKey(ctx context.Context, verifier string, rotate bool) (string, error) {
	var have string
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow(`SELECT verifier FROM log_keys WHERE retired_at IS NULL`).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case have == verifier || !rotate:
			return nil
		default:
			if _, err := tx.Exec(`UPDATE log_keys SET retired_at = ? WHERE retired_at IS NULL`, time.Now().UnixMicro()); err != nil {
				return err
			}
		}
		have = verifier
		_, err = tx.Exec(`INSERT INTO log_keys (verifier, added_at) VALUES (?, ?)
ON CONFLICT (verifier) DO UPDATE SET retired_at = NULL, added_at = excluded.added_at`, verifier, time.Now().UnixMicro())
		return err
	})
	return have, err
}

// Redact implements chronicle.Log.
func (s *Store) Redact(ctx context.Context, id string, r chronicle.Redaction, record *chronicle.Event) error {
	leaves := leafHashes([]*chronicle.Event{record})
	r.At = r.At.UTC().Truncate(time.Microsecond)
	redaction, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var done sql.NullString
		err := tx.QueryRow(`SELECT redaction FROM audit_events WHERE id = ?`, id).Scan(&done)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
		case err != nil:
			return err
		case done.Valid:
			return chronicle.Errorf(chronicle.ErrConflict, "event %s was redacted already", id)
		}
		if err := s.insertEvents(tx, []*chronicle.Event{record}, leaves); err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE audit_events SET actor = '', action = '', resource_type = '', resource_id = '',
    correlation_id = NULL, entity_key = NULL, metadata = NULL, occurred_at = NULL, redaction = ? WHERE id = ?`, string(redaction), id)
		return err
	})
}
