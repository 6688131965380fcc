package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/chronicle-audit/chronicle"
)

const (
	sqlJournalInsert = `INSERT INTO inproc_journal (seq, queue, message_id, message_type, body, headers, history) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlJournalDelete = `DELETE FROM inproc_journal WHERE seq = ?`
	sqlJournalMove   = `UPDATE inproc_journal SET queue = ?, message_id = ?, headers = ?, history = ? WHERE seq = ?`
)

// Durable implements chronicle.Journal: entries are committed to the SQLite file.
func (s *Store) Durable() bool { return true }

// Append implements chronicle.Journal. Concurrent appends share a
// transaction, so many requests cost one fsync.
func (s *Store) Append(ctx context.Context, entries []*chronicle.JournalEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := s.stmt(tx, sqlJournalInsert)
		if err != nil {
			return err
		}
		seq := s.nextSeq
		for _, e := range entries {
			h, err := encodeMap(e.Message.Headers)
			if err != nil {
				return err
			}
			if _, err := st.Exec(seq, e.Queue, e.Message.ID, e.Message.Type, e.Message.Body, h, nullableHistory(e.Message.History)); err != nil {
				return err
			}
			e.Seq = seq
			seq++
		}
		// nextSeq only moves forward: if this transaction rolls back, the
		// op is retried with fresh seqs, never one that may be committed.
		s.nextSeq = seq
		return nil
	})
}

// Pending implements chronicle.Journal.
func (s *Store) Pending(ctx context.Context) ([]*chronicle.JournalEntry, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, queue, message_id, message_type, body, headers, history FROM inproc_journal ORDER BY seq`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*chronicle.JournalEntry
	for rows.Next() {
		var e chronicle.JournalEntry
		var h, history sql.NullString
		if err := rows.Scan(&e.Seq, &e.Queue, &e.Message.ID, &e.Message.Type, &e.Message.Body, &h, &history); err != nil {
			return nil, err
		}
		if history.Valid {
			e.Message.History = chronicle.History(history.String)
		}
		if h.Valid {
			if err := json.Unmarshal([]byte(h.String), &e.Message.Headers); err != nil {
				return nil, fmt.Errorf("journal entry %d: corrupt headers: %w", e.Seq, err)
			}
		}
		out = append(out, &e)
	}
	return out, translate(rows.Err())
}

// Settle implements chronicle.Journal: the events are stored and the
// entries removed or moved in one transaction.
func (s *Store) Settle(ctx context.Context, st *chronicle.Settlement) error {
	leaves := leafHashes(st.Events)
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.insertEvents(tx, st.Events, leaves); err != nil {
			return err
		}
		if len(st.Remove) > 0 {
			del, err := s.stmt(tx, sqlJournalDelete)
			if err != nil {
				return err
			}
			for _, seq := range st.Remove {
				if _, err := del.Exec(seq); err != nil {
					return err
				}
			}
		}
		if len(st.Move) > 0 {
			mv, err := s.stmt(tx, sqlJournalMove)
			if err != nil {
				return err
			}
			for _, e := range st.Move {
				h, err := encodeMap(e.Message.Headers)
				if err != nil {
					return err
				}
				if _, err := mv.Exec(e.Queue, e.Message.ID, h, nullableHistory(e.Message.History), e.Seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
