-- occurred_at: when the producer says the event happened (microseconds
-- since the Unix epoch, UTC), a filter of GET /events, so indexed; NULL
-- when the producer did not say. history: the event's Message History, a
-- JSON array of hops that each route's consumer appends its path to.

-- The in-process journal carries each message's history in a column of
-- its own.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN occurred_at INTEGER;
ALTER TABLE audit_events ADD COLUMN history TEXT;
CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at, timestamp, id) WHERE occurred_at IS NOT NULL;
ALTER TABLE inproc_journal ADD COLUMN history TEXT;

-- +goose Down
ALTER TABLE inproc_journal DROP COLUMN history;
DROP INDEX idx_audit_events_occurred_at;
ALTER TABLE audit_events DROP COLUMN history;
ALTER TABLE audit_events DROP COLUMN occurred_at;
