package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
)

// eventColumns are an event's content.
const eventColumns = `id, actor, action, resource_type, resource_id, timestamp, event_type, correlation_id, entity_key, metadata, occurred_at`

// readColumns are what a read takes: the content, the event's place in
// the log (a primary-key lookup per event) and its redaction.
const readColumns = eventColumns + `, (SELECT seq FROM log_leaves WHERE log_leaves.event_id = audit_events.id), redaction`

// sqlInsertEvents stores a whole batch in one statement: each column
// travels as one array parameter and unnest turns the arrays back into
// rows. ON CONFLICT skips ids already stored (redeliveries, and duplicates
// within the batch); the statement is its own transaction, so a batch is
// stored whole or not at all. Measured on the project's 2-core machine
// (BenchmarkWriteMethod, medians of 3, rows/s for batches of 1 / 100 /
// 1000): unnest 2,400 / 28,300 / 31,700; multi-row VALUES 2,600 / 29,800 /
// 26,600; a pgx batch of one-row INSERTs 1,200 / 22,200 / 21,500; COPY into
// a temporary table then INSERT … SELECT 440 / 16,300 / 28,800; a plain
// COPY, which cannot skip duplicates, 36,300 at 1000 (BenchmarkCopy).
// unnest is the fastest or within noise at every size, in one round trip
// (staging takes five) and with one statement text for every batch size,
// prepared once per connection (VALUES needs one per size, and ten
// parameters a row). What remains is the server's work: nine b-trees to
// update per row.
//
// An event already stored (another route's copy, or a redelivery) is not
// stored again; its path joins its history in event_paths, unless its
// first path (stored with it) came through the same queue: a branch of
// the first when they share a trunk (chronicle.History.Branch), else the
// whole path. A copy stored at the same moment by another transaction is
// invisible to this statement's snapshot, so its path goes whole. A new
// event enters the log's queue, log_pending, with its leaf hash, in batch
// order; the integrator gives it its seq. It is all one statement, so an
// event, its path and its place in the queue are stored together or not
// at all.
const sqlInsertEvents = `WITH e AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::text[], $14::bytea[], $15::text[], $16::text[])
    WITH ORDINALITY AS e(id, actor, action, resource_type, resource_id, ts, event_type, correlation_id, entity_key, metadata, occurred_at, queue, history, leaf, trunk, branch, ord)
), stored AS (
  INSERT INTO audit_events (` + eventColumns + `, queue, history)
  SELECT id, actor, action, resource_type, resource_id, ts, event_type, correlation_id, entity_key, metadata::jsonb, occurred_at, queue, history FROM e
  ON CONFLICT (id) DO NOTHING
  RETURNING id
), pending AS (
  INSERT INTO log_pending (event_id, leaf) SELECT e.id, e.leaf FROM e JOIN stored USING (id) ORDER BY e.ord
)
INSERT INTO event_paths (event_id, queue, history)
SELECT e.id, e.queue, CASE WHEN starts_with(a.history, e.trunk) THEN e.branch ELSE e.history END
FROM e LEFT JOIN audit_events a ON a.id = e.id
WHERE e.history IS NOT NULL AND e.id NOT IN (SELECT id FROM stored) AND a.queue IS DISTINCT FROM e.queue
ON CONFLICT DO NOTHING`

var errNilEvent = chronicle.Errorf(chronicle.ErrInvalid, "nil event")

// insertArgs returns the sixteen column arrays of sqlInsertEvents, one
// row per id.
func insertArgs(events []*chronicle.Event) ([]any, error) {
	if slices.Contains(events, nil) {
		return nil, errNilEvent
	}
	if hasDuplicates(events) {
		seen := make(map[string]bool, len(events))
		events = slices.DeleteFunc(slices.Clone(events), func(e *chronicle.Event) bool {
			dup := seen[e.ID]
			seen[e.ID] = true
			return dup
		})
	}
	n := len(events)
	ids := make([]string, n)
	actors, actions, types, resIDs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts := make([]time.Time, n)
	occurred := make([]*time.Time, n)
	eventTypes, corrs, entities, mds, histories := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	queues := make([]string, n)
	leaves := make([][]byte, n)
	trunks, branches := make([]*string, n), make([]*string, n)
	for i, e := range events {
		md, err := encodeMap(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("event %s: metadata: %w", e.ID, err)
		}
		ids[i], actors[i], actions[i], types[i], resIDs[i] = e.ID, e.Actor, e.Action, e.ResourceType, e.ResourceID
		ts[i] = e.Timestamp
		if !e.OccurredAt.IsZero() {
			occurred[i] = &e.OccurredAt
		}
		eventTypes[i], corrs[i], entities[i], mds[i] = nullable(e.EventType), nullable(e.CorrelationID), nullable(e.EntityKey), md
		queues[i], histories[i] = e.Queue, nullable(string(e.History))
		if trunk, branch := e.History.Split(); trunk != nil {
			trunks[i], branches[i] = nullable(string(trunk)), nullable(string(branch))
		}
		leaf := integrity.LeafHash(e)
		leaves[i] = leaf[:]
	}
	return []any{ids, actors, actions, types, resIDs, ts, eventTypes, corrs, entities, mds, occurred, queues, histories, leaves, trunks, branches}, nil
}

// hasDuplicates reports whether two events share an id.
func hasDuplicates(events []*chronicle.Event) bool {
	if len(events) < 2 {
		return false
	}
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if seen[e.ID] {
			return true
		}
		seen[e.ID] = true
	}
	return false
}

// StoreEvents implements chronicle.EventStore: one statement, one round
// trip, all or nothing.
func (s *Store) StoreEvents(ctx context.Context, events []*chronicle.Event) error {
	if len(events) == 0 {
		return nil
	}
	args, err := insertArgs(events)
	if err != nil {
		return err
	}
	return s.run(ctx, true, func() error {
		_, err := s.pool.Exec(ctx, sqlInsertEvents, args...)
		return err
	})
}

// Event implements chronicle.EventStore. An id that is not a UUID names
// no event.
func (s *Store) Event(ctx context.Context, id string) (*chronicle.Event, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		if err := s.usable(); err != nil {
			return nil, err
		}
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	var e *chronicle.Event
	err = s.run(ctx, true, func() error {
		var err error
		e, err = scanEvent(s.pool.QueryRow(ctx, `SELECT `+readColumns+`, history,
  ARRAY(SELECT history FROM event_paths WHERE event_id = audit_events.id) FROM audit_events WHERE id = $1`, u.String()), true)
		return err
	})
	if errors.Is(err, chronicle.ErrNotFound) {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "event not found: %s", id)
	}
	return e, err
}

// Events implements chronicle.EventStore. Every filter is an equality on
// a column that leads an index ending in (timestamp DESC, id DESC), and a
// page continues strictly below a (timestamp, id) position, never with
// OFFSET: a listing walks one index, newest first, and stops at its limit.
func (s *Store) Events(ctx context.Context, f chronicle.EventFilter) ([]*chronicle.Event, error) {
	q, args, err := eventsQuery(f)
	if err != nil {
		return nil, err
	}
	// Planned for its values every time (the unnamed statement; only the
	// description is cached): a cached generic plan would be chosen for
	// an average value and read every row of a hot actor or resource,
	// then sort them.
	args = append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	var out []*chronicle.Event
	err = s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = make([]*chronicle.Event, 0, min(f.Limit, 128))
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
		return nil, err
	}
	return out, nil
}

// CountEvents implements chronicle.EventStore. It is served by the same
// indexes as Events (f.After and f.Limit play no part).
func (s *Store) CountEvents(ctx context.Context, f chronicle.EventFilter) (int64, error) {
	w, args, err := whereSQL(f, false)
	if err != nil {
		return 0, err
	}
	args = append([]any{pgx.QueryExecModeCacheDescribe}, args...) // planned for its values, as Events
	var n int64
	err = s.run(ctx, true, func() error {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events`+w, args...).Scan(&n)
	})
	return n, err
}

// eventsQuery is the listing query of f and its arguments.
func eventsQuery(f chronicle.EventFilter) (string, []any, error) {
	w, args, err := whereSQL(f, true)
	if err != nil {
		return "", nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = chronicle.DefaultLimit
	}
	limit = min(limit, chronicle.MaxLimit)
	return `SELECT ` + readColumns + ` FROM audit_events` + w +
		` ORDER BY timestamp DESC, id DESC LIMIT ` + strconv.Itoa(limit), args, nil
}

// whereSQL is the WHERE clause of f's filters (and, withAfter, of its
// position) and its arguments: an equality per filter, on a column that
// leads an index ending in (timestamp DESC, id DESC).
func whereSQL(f chronicle.EventFilter, withAfter bool) (string, []any, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = "+arg(v))
		}
	}
	eq("actor", f.Actor)
	eq("action", f.Action)
	eq("event_type", f.EventType)
	eq("resource_type", f.ResourceType)
	if f.ResourceID != nil {
		conds = append(conds, "resource_id = "+arg(*f.ResourceID))
	}
	eq("correlation_id", f.CorrelationID)
	eq("entity_key", f.EntityKey)
	if !f.Since.IsZero() {
		conds = append(conds, "timestamp >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "timestamp < "+arg(f.Until))
	}
	if !f.OccurredSince.IsZero() {
		conds = append(conds, "occurred_at >= "+arg(f.OccurredSince))
	}
	if !f.OccurredUntil.IsZero() {
		conds = append(conds, "occurred_at < "+arg(f.OccurredUntil))
	}
	if withAfter && f.After != nil {
		id, err := uuid.Parse(f.After.ID)
		if err != nil {
			return "", nil, chronicle.Errorf(chronicle.ErrInvalid, "invalid position: %q is not an event id", f.After.ID)
		}
		ts := arg(f.After.Timestamp)
		conds = append(conds, "(timestamp, id) < ("+ts+", "+arg(id.String())+"::uuid)")
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return ` WHERE ` + strings.Join(conds, " AND "), args, nil
}

// scanEvent reads readColumns, and the paths of the history when
// withHistory.
func scanEvent(r pgx.Row, withHistory bool) (*chronicle.Event, error) {
	var e chronicle.Event
	var eventType, corr, entity *string
	var occurred *time.Time
	var md []byte
	var paths []string
	var redaction *string
	dest := []any{&e.ID, &e.Actor, &e.Action, &e.ResourceType, &e.ResourceID, &e.Timestamp, &eventType, &corr, &entity, &md, &occurred, &e.Seq, &redaction}
	var first *string
	if withHistory {
		dest = append(dest, &first, &paths)
	}
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	e.Timestamp = e.Timestamp.UTC()
	if occurred != nil {
		e.OccurredAt = occurred.UTC()
	}
	if withHistory {
		others := make([]chronicle.History, len(paths))
		for i, p := range paths {
			others[i] = chronicle.History(p)
		}
		var h chronicle.History
		if first != nil {
			h = chronicle.History(*first)
		}
		e.History = chronicle.JoinPaths(h, others)
	}
	if redaction != nil {
		e.Redacted = new(chronicle.Redaction)
		if err := json.Unmarshal([]byte(*redaction), e.Redacted); err != nil {
			return nil, fmt.Errorf("event %s: corrupt redaction: %w", e.ID, err)
		}
	}
	e.EventType, e.CorrelationID, e.EntityKey = deref(eventType), deref(corr), deref(entity)
	if md != nil {
		if err := json.Unmarshal(md, &e.Metadata); err != nil {
			return nil, fmt.Errorf("event %s: corrupt metadata: %w", e.ID, err)
		}
	}
	return &e, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// encodeMap is m as JSON text, or nil (SQL NULL) when m is empty.
func encodeMap(m map[string]string) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}
