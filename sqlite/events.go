package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// eventColumns are what a listing and a single event read.
const eventColumns = `id, actor, action, resource_type, resource_id, timestamp, event_type, correlation_id, entity_key, metadata, occurred_at`

// insertChunk rows go into one INSERT statement: fewer statements per
// batch, within SQLite's limit on parameters.
const insertChunk = 32

// valuesSQL is "INSERT … VALUES (?,…),…" for rows rows of cols columns,
// then tail.
func valuesSQL(head string, rows, cols int, tail string) string {
	var b strings.Builder
	b.WriteString(head + ` VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		b.WriteString(strings.Repeat("?,", cols-1))
		b.WriteString("?)")
	}
	b.WriteString(tail)
	return b.String()
}

// An event already stored (another route's copy, or a redelivery) is not
// stored again; its path joins its history, unless a path through the
// same queue is there already.
const (
	sqlInsertEventsHead = `INSERT INTO audit_events (` + eventColumns + `)`
	sqlInsertPathsHead  = `INSERT INTO event_paths (event_id, queue, history)`
	onConflictSkip      = ` ON CONFLICT DO NOTHING`
)

var (
	insertEventOne  = valuesSQL(sqlInsertEventsHead, 1, 11, onConflictSkip)
	insertEventMany = valuesSQL(sqlInsertEventsHead, insertChunk, 11, onConflictSkip)
	insertPathOne   = valuesSQL(sqlInsertPathsHead, 1, 3, onConflictSkip)
	insertPathMany  = valuesSQL(sqlInsertPathsHead, insertChunk, 3, onConflictSkip)
	errNotEvent     = errors.New("nil event")
)

// insertEvents adds events to tx, skipping IDs already stored, and their
// paths.
func (s *Store) insertEvents(tx *sql.Tx, events []*chronicle.Event) error {
	if slices.Contains(events, nil) {
		return errNotEvent
	}
	args := make([]any, 0, 11*insertChunk)
	err := s.chunked(tx, events, insertEventOne, insertEventMany, func(e *chronicle.Event) error {
		md, err := encodeMap(e.Metadata)
		if err != nil {
			return err
		}
		args = append(args, e.ID, e.Actor, e.Action, e.ResourceType, e.ResourceID,
			e.Timestamp.UnixMicro(), nullable(e.EventType), nullable(e.CorrelationID), nullable(e.EntityKey), md,
			nullableTime(e.OccurredAt))
		return nil
	}, &args)
	if err != nil {
		return err
	}
	withPath := events
	if slices.ContainsFunc(events, func(e *chronicle.Event) bool { return len(e.History) == 0 }) {
		withPath = slices.DeleteFunc(slices.Clone(events), func(e *chronicle.Event) bool { return len(e.History) == 0 })
	}
	return s.chunked(tx, withPath, insertPathOne, insertPathMany, func(e *chronicle.Event) error {
		args = append(args, e.ID, e.Queue, string(e.History))
		return nil
	}, &args)
}

// chunked runs one (a row) or many (insertChunk rows) for all of events,
// add appending each event's values to *args.
func (s *Store) chunked(tx *sql.Tx, events []*chronicle.Event, one, many string, add func(*chronicle.Event) error, args *[]any) error {
	for len(events) > 0 {
		n, query := insertChunk, many
		if len(events) < insertChunk {
			n, query = 1, one
		}
		*args = (*args)[:0]
		for _, e := range events[:n] {
			if err := add(e); err != nil {
				return err
			}
		}
		st, err := s.stmt(tx, query)
		if err != nil {
			return err
		}
		if _, err := st.Exec(*args...); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// StoreEvents implements chronicle.EventStore.
func (s *Store) StoreEvents(ctx context.Context, events []*chronicle.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error { return s.insertEvents(tx, events) })
}

// Event implements chronicle.EventStore.
func (s *Store) Event(ctx context.Context, id string) (*chronicle.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	row := s.rdb.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE id = ?`, id)
	e, err := scanEvent(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	if err != nil {
		return nil, translate(err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT history FROM event_paths WHERE event_id = ?`, id)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var path string
		if err := rows.Scan(&path); err != nil {
			return nil, translate(err)
		}
		e.History = e.History.Concat(chronicle.History(path))
	}
	return e, translate(rows.Err())
}

// where builds the WHERE clause of a listing or count: each filter is an
// equality on an indexed column whose index ends in (timestamp, id).
func where(f chronicle.EventFilter, withAfter bool) (string, []any) {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	eq("actor", f.Actor)
	eq("action", f.Action)
	eq("event_type", f.EventType)
	eq("resource_type", f.ResourceType)
	if f.ResourceID != nil {
		conds = append(conds, "resource_id = ?")
		args = append(args, *f.ResourceID)
	}
	eq("correlation_id", f.CorrelationID)
	eq("entity_key", f.EntityKey)
	if !f.Since.IsZero() {
		conds = append(conds, "timestamp >= ?")
		args = append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		conds = append(conds, "timestamp < ?")
		args = append(args, f.Until.UnixMicro())
	}
	if !f.OccurredSince.IsZero() {
		conds = append(conds, "occurred_at >= ?")
		args = append(args, f.OccurredSince.UnixMicro())
	}
	if !f.OccurredUntil.IsZero() {
		conds = append(conds, "occurred_at < ?")
		args = append(args, f.OccurredUntil.UnixMicro())
	}
	if withAfter && f.After != nil {
		conds = append(conds, "(timestamp, id) < (?, ?)")
		args = append(args, f.After.Timestamp.UnixMicro(), f.After.ID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Events implements chronicle.EventStore: the page continues below a
// (timestamp, id) position, never with OFFSET.
func (s *Store) Events(ctx context.Context, f chronicle.EventFilter) ([]*chronicle.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	w, args := where(f, true)
	q := `SELECT ` + eventColumns + ` FROM audit_events` + w + ` ORDER BY timestamp DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make([]*chronicle.Event, 0, min(f.Limit, 128))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// CountEvents implements chronicle.EventStore.
func (s *Store) CountEvents(ctx context.Context, f chronicle.EventFilter) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	w, args := where(f, false)
	var n int64
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM audit_events`+w, args...).Scan(&n)
	return n, translate(err)
}

type scanner interface{ Scan(...any) error }

// scanEvent reads eventColumns.
func scanEvent(r scanner) (*chronicle.Event, error) {
	var e chronicle.Event
	var ts int64
	var occurred sql.NullInt64
	var eventType, corr, entity, md sql.NullString
	if err := r.Scan(&e.ID, &e.Actor, &e.Action, &e.ResourceType, &e.ResourceID, &ts, &eventType, &corr, &entity, &md, &occurred); err != nil {
		return nil, err
	}
	e.Timestamp = time.UnixMicro(ts).UTC()
	if occurred.Valid {
		e.OccurredAt = time.UnixMicro(occurred.Int64).UTC()
	}
	e.EventType, e.CorrelationID, e.EntityKey = eventType.String, corr.String, entity.String
	if md.Valid {
		if err := json.Unmarshal([]byte(md.String), &e.Metadata); err != nil {
			return nil, fmt.Errorf("event %s: corrupt metadata: %w", e.ID, err)
		}
	}
	return &e, nil
}

func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func nullableHistory(h chronicle.History) any {
	if len(h) == 0 {
		return nil
	}
	return string(h)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func encodeMap(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
