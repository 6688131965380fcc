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
	"github.com/chronicle-audit/chronicle/integrity"
)

// eventColumns are an event's content; a read also takes its place in
// the log and its redaction (readColumns).
const (
	eventColumns = `id, actor, action, resource_type, resource_id, timestamp, event_type, correlation_id, entity_key, metadata, occurred_at`
	readColumns  = eventColumns + `, seq, redaction`
)

// insertChunk rows go into one statement: fewer statements per batch,
// within SQLite's limit on parameters.
const insertChunk = 32

// valuesSQL is head, then "VALUES (?,…),…" for rows rows of cols columns,
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

// inSQL is head, then "(?,…)" of n parameters.
func inSQL(head string, n int) string {
	return head + ` (` + strings.Repeat("?,", n-1) + `?)`
}

// An event already stored (another route's copy, or a redelivery) is not
// stored again; its path joins its history, unless a path through the
// same queue is there already. The first path is stored with the event,
// the others in event_paths as branches of it.
const (
	sqlInsertEventsHead = `INSERT INTO audit_events (` + eventColumns + `, seq, queue, history)`
	sqlInsertLeavesHead = `INSERT INTO log_leaves (seq, event_id, hashes)`
	sqlInsertPathsHead  = `INSERT INTO event_paths (event_id, queue, history)`
	sqlStored           = `SELECT id, queue, history FROM audit_events WHERE id IN (SELECT value FROM json_each(?))`
	onConflictSkip      = ` ON CONFLICT DO NOTHING`
)

var (
	insertEventOne  = valuesSQL(sqlInsertEventsHead, 1, 14, "")
	insertEventMany = valuesSQL(sqlInsertEventsHead, insertChunk, 14, "")
	insertLeafOne   = valuesSQL(sqlInsertLeavesHead, 1, 3, "")
	insertLeafMany  = valuesSQL(sqlInsertLeavesHead, insertChunk, 3, "")
	insertPathOne   = valuesSQL(sqlInsertPathsHead, 1, 3, onConflictSkip)
	insertPathMany  = valuesSQL(sqlInsertPathsHead, insertChunk, 3, onConflictSkip)
	errNotEvent     = errors.New("nil event")
)

// insertEvents adds to tx the events not stored yet, each with the next
// seq of the log, and the paths of all of them. leaves are the events'
// leaf hashes, computed before the writer's turn.
func (s *Store) insertEvents(tx *sql.Tx, events []*chronicle.Event, leaves []chronicle.Hash) error {
	if slices.Contains(events, nil) {
		return errNotEvent
	}
	fresh, firsts, err := s.unstored(tx, events)
	if err != nil {
		return err
	}
	if len(fresh) > 0 {
		log, err := s.appender(tx)
		if err != nil {
			return err
		}
		seqs := make([]int64, len(fresh))
		hashes := make([][]byte, len(fresh))
		for i, k := range fresh {
			if seqs[i], hashes[i], err = log.Append(leaves[k]); err != nil {
				return err
			}
		}
		err = s.chunked(tx, len(fresh), insertEventOne, insertEventMany, func(args []any, i int) ([]any, error) {
			e := events[fresh[i]]
			md, err := encodeMap(e.Metadata)
			if err != nil {
				return nil, err
			}
			return append(args, e.ID, e.Actor, e.Action, e.ResourceType, e.ResourceID,
				e.Timestamp.UnixMicro(), nullable(e.EventType), nullable(e.CorrelationID), nullable(e.EntityKey), md,
				nullableTime(e.OccurredAt), seqs[i], nullable(e.Queue), nullable(string(e.History))), nil
		})
		if err != nil {
			return err
		}
		err = s.chunked(tx, len(fresh), insertLeafOne, insertLeafMany, func(args []any, i int) ([]any, error) {
			return append(args, seqs[i], events[fresh[i]].ID, hashes[i]), nil
		})
		if err != nil {
			return err
		}
	}
	// The others' paths: each a branch of the first, unless it came
	// through the first's queue (a redelivery).
	isFresh := make([]bool, len(events))
	for _, i := range fresh {
		e := events[i]
		firsts[e.ID] = firstPath{e.Queue, e.History}
		isFresh[i] = true
	}
	var branches []*chronicle.Event
	for i, e := range events {
		first := firsts[e.ID]
		if isFresh[i] || len(e.History) == 0 || e.Queue == first.queue {
			continue
		}
		branches = append(branches, &chronicle.Event{ID: e.ID, Queue: e.Queue, History: e.History.Branch(first.history)})
	}
	return s.chunked(tx, len(branches), insertPathOne, insertPathMany, func(args []any, i int) ([]any, error) {
		e := branches[i]
		return append(args, e.ID, e.Queue, string(e.History)), nil
	})
}

// firstPath is the path an event was stored with: its queue and history.
type firstPath struct {
	queue   string
	history chronicle.History
}

// unstored returns the indexes of the events that tx does not hold yet,
// the first of each id, and the first paths of those it holds: one query
// for the whole batch, its ids passed as one JSON array.
func (s *Store) unstored(tx *sql.Tx, events []*chronicle.Event) ([]int, map[string]firstPath, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.stmt(tx, sqlStored)
	if err != nil {
		return nil, nil, err
	}
	rows, err := st.Query(string(list))
	if err != nil {
		return nil, nil, err
	}
	stored := make(map[string]bool, len(events))
	firsts := map[string]firstPath{}
	for rows.Next() {
		var id string
		var queue, history sql.NullString
		if err := rows.Scan(&id, &queue, &history); err != nil {
			rows.Close()
			return nil, nil, err
		}
		stored[id] = true
		firsts[id] = firstPath{queue.String, chronicle.History(history.String)}
	}
	if err := rows.Close(); err != nil {
		return nil, nil, err
	}
	fresh := make([]int, 0, len(events))
	for i, e := range events {
		if !stored[e.ID] {
			stored[e.ID] = true // a second copy in the batch is not fresh
			fresh = append(fresh, i)
		}
	}
	return fresh, firsts, nil
}

// chunked runs one (a row) or many (insertChunk rows) for rows rows, add
// appending the values of each.
func (s *Store) chunked(tx *sql.Tx, rows int, one, many string, add func(args []any, i int) ([]any, error)) error {
	args := make([]any, 0, 12*insertChunk)
	for start := 0; start < rows; {
		n, query := insertChunk, many
		if rows-start < insertChunk {
			n, query = 1, one
		}
		args = args[:0]
		for i := start; i < start+n; i++ {
			var err error
			if args, err = add(args, i); err != nil {
				return err
			}
		}
		st, err := s.stmt(tx, query)
		if err != nil {
			return err
		}
		if _, err := st.Exec(args...); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// leafHashes returns the events' leaf hashes: computed by the caller, so
// the single writer's turn does not.
func leafHashes(events []*chronicle.Event) []chronicle.Hash {
	out := make([]chronicle.Hash, len(events))
	for i, e := range events {
		if e != nil {
			out[i] = integrity.LeafHash(e)
		}
	}
	return out
}

// StoreEvents implements chronicle.EventStore.
func (s *Store) StoreEvents(ctx context.Context, events []*chronicle.Event) error {
	if len(events) == 0 {
		return nil
	}
	leaves := leafHashes(events)
	return s.write(ctx, func(tx *sql.Tx) error { return s.insertEvents(tx, events, leaves) })
}

// Event implements chronicle.EventStore.
func (s *Store) Event(ctx context.Context, id string) (*chronicle.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	row := s.rdb.QueryRowContext(ctx, `SELECT `+readColumns+` FROM audit_events WHERE id = ?`, id)
	e, err := scanEvent(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	if err != nil {
		return nil, translate(err)
	}
	var first sql.NullString
	if err := s.rdb.QueryRowContext(ctx, `SELECT history FROM audit_events WHERE id = ?`, id).Scan(&first); err != nil {
		return nil, translate(err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT history FROM event_paths WHERE event_id = ?`, id)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var others []chronicle.History
	for rows.Next() {
		var path string
		if err := rows.Scan(&path); err != nil {
			return nil, translate(err)
		}
		others = append(others, chronicle.History(path))
	}
	e.History = chronicle.JoinPaths(chronicle.History(first.String), others)
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
	q := `SELECT ` + readColumns + ` FROM audit_events` + w + ` ORDER BY timestamp DESC, id DESC LIMIT ?`
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

// scanEvent reads readColumns.
func scanEvent(r scanner) (*chronicle.Event, error) {
	var e chronicle.Event
	var ts int64
	var occurred, seq sql.NullInt64
	var eventType, corr, entity, md, redaction sql.NullString
	if err := r.Scan(&e.ID, &e.Actor, &e.Action, &e.ResourceType, &e.ResourceID, &ts, &eventType, &corr, &entity, &md, &occurred, &seq, &redaction); err != nil {
		return nil, err
	}
	if seq.Valid {
		e.Seq = &seq.Int64
	}
	if redaction.Valid {
		e.Redacted = new(chronicle.Redaction)
		if err := json.Unmarshal([]byte(redaction.String), e.Redacted); err != nil {
			return nil, fmt.Errorf("event %s: corrupt redaction: %w", e.ID, err)
		}
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
