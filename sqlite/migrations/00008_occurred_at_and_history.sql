-- occurred_at: when the producer says the event happened (microseconds
-- since the Unix epoch, UTC), a filter of GET /events, so indexed; NULL
-- when the producer did not say.

-- event_paths: the event's Message History, one path (a JSON array of
-- hops) per queue whose consumer stored it. A table of its own, written
-- once per path and never updated: an event routed to two queues costs
-- two small inserts instead of rewriting its row, and the rows of
-- audit_events stay small.

-- The in-process journal carries each message's history in a column of
-- its own.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN occurred_at INTEGER;
CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at, timestamp, id) WHERE occurred_at IS NOT NULL;
CREATE TABLE event_paths (
    event_id TEXT NOT NULL,
    queue    TEXT NOT NULL,
    history  TEXT NOT NULL,
    PRIMARY KEY (event_id, queue)
) WITHOUT ROWID;
ALTER TABLE inproc_journal ADD COLUMN history TEXT;

-- +goose Down
ALTER TABLE inproc_journal DROP COLUMN history;
DROP TABLE event_paths;
DROP INDEX idx_audit_events_occurred_at;
ALTER TABLE audit_events DROP COLUMN occurred_at;
