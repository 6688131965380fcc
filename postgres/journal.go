package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chronicle-audit/chronicle"
)

// sqlJournalAppend inserts a batch of entries in one statement and returns
// the seq given to each, by position in the batch. Seqs come from a
// sequence, so they only move forward: a rolled-back append never hands
// out a seq that another append may commit.
const sqlJournalAppend = `WITH seqs AS MATERIALIZED (
    SELECT nextval('inproc_journal_seq') AS seq, ord FROM generate_series(1, $1::int) AS ord
), ins AS (
    INSERT INTO inproc_journal (seq, queue, message_id, message_type, body, headers, history)
    SELECT s.seq, e.queue, e.message_id, e.message_type, e.body, e.headers::jsonb, e.history
    FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[]) WITH ORDINALITY
        AS e(queue, message_id, message_type, body, headers, history, ord)
    JOIN seqs s USING (ord)
)
SELECT ord, seq FROM seqs ORDER BY ord`

const (
	sqlJournalRemove = `DELETE FROM inproc_journal WHERE seq = ANY($1::bigint[])`
	sqlJournalMove   = `UPDATE inproc_journal j SET queue = m.queue, message_id = m.message_id, headers = m.headers::jsonb, history = m.history
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS m(seq, queue, message_id, headers, history) WHERE j.seq = m.seq`
)

// Durable implements chronicle.Journal: entries are committed to the database.
func (s *Store) Durable() bool { return true }

// Append implements chronicle.Journal: the entries are committed (and
// their seqs set) when it returns nil.
func (s *Store) Append(ctx context.Context, entries []*chronicle.JournalEntry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	queues, ids, types, heads, histories := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
	bodies := make([][]byte, n)
	for i, e := range entries {
		h, err := encodeMap(e.Message.Headers)
		if err != nil {
			return fmt.Errorf("journal entry %s: headers: %w", e.Message.ID, err)
		}
		queues[i], ids[i], types[i], bodies[i], heads[i] = e.Queue, e.Message.ID, e.Message.Type, nonNilBytes(e.Message.Body), h
		histories[i] = nullable(string(e.Message.History))
	}
	seqs := make([]int64, n)
	// Not idempotent: retried only when nothing reached the server.
	err := s.run(ctx, false, func() error {
		rows, err := s.pool.Query(ctx, sqlJournalAppend, n, queues, ids, types, bodies, heads, histories)
		if err != nil {
			return err
		}
		defer rows.Close()
		got := 0
		for rows.Next() {
			var ord, seq int64
			if err := rows.Scan(&ord, &seq); err != nil {
				return err
			}
			if ord < 1 || ord > int64(n) {
				return fmt.Errorf("journal append: unexpected position %d", ord)
			}
			seqs[ord-1] = seq
			got++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("journal append: %d seqs for %d entries", got, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range entries {
		e.Seq = seqs[i]
	}
	return nil
}

// Pending implements chronicle.Journal.
func (s *Store) Pending(ctx context.Context) ([]*chronicle.JournalEntry, error) {
	var out []*chronicle.JournalEntry
	err := s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, `SELECT seq, queue, message_id, message_type, body, headers, history FROM inproc_journal ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var e chronicle.JournalEntry
			var h []byte
			var history *string
			if err := rows.Scan(&e.Seq, &e.Queue, &e.Message.ID, &e.Message.Type, &e.Message.Body, &h, &history); err != nil {
				return err
			}
			if history != nil {
				e.Message.History = chronicle.History(*history)
			}
			if h != nil {
				if err := json.Unmarshal(h, &e.Message.Headers); err != nil {
					return fmt.Errorf("journal entry %d: corrupt headers: %w", e.Seq, err)
				}
			}
			out = append(out, &e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Settle implements chronicle.Journal. The events, the removals and the
// moves go in one batch: one round trip, run by the server as one
// implicit transaction (a pipeline ending in a single Sync), so they all
// happen or none does. Settling twice changes nothing more, so a broken
// connection is retried.
func (s *Store) Settle(ctx context.Context, st *chronicle.Settlement) error {
	var queries []pgx.QueuedQuery
	if len(st.Events) > 0 {
		args, err := insertArgs(st.Events)
		if err != nil {
			return err
		}
		queries = append(queries, pgx.QueuedQuery{SQL: sqlInsertEvents, Arguments: args})
	}
	if len(st.Remove) > 0 {
		queries = append(queries, pgx.QueuedQuery{SQL: sqlJournalRemove, Arguments: []any{st.Remove}})
	}
	if n := len(st.Move); n > 0 {
		seqs, queues, ids, heads, histories := make([]int64, n), make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
		for i, e := range st.Move {
			h, err := encodeMap(e.Message.Headers)
			if err != nil {
				return fmt.Errorf("journal entry %d: headers: %w", e.Seq, err)
			}
			seqs[i], queues[i], ids[i], heads[i] = e.Seq, e.Queue, e.Message.ID, h
			histories[i] = nullable(string(e.Message.History))
		}
		queries = append(queries, pgx.QueuedQuery{SQL: sqlJournalMove, Arguments: []any{seqs, queues, ids, heads, histories}})
	}
	if len(queries) == 0 {
		return nil
	}
	return s.run(ctx, true, func() error {
		b := &pgx.Batch{}
		for _, q := range queries {
			b.Queue(q.SQL, q.Arguments...)
		}
		return s.pool.SendBatch(ctx, b).Close()
	})
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
