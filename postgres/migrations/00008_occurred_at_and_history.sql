-- occurred_at: when the producer says the event happened, a filter of
-- GET /events, so indexed (partial: NULL when the producer did not say).
-- history: the event's Message History, a JSON array of hops that each
-- route's consumer appends its path to; never indexed, read with one event,
-- so text (written as it comes, no JSON to parse on the hot path).

-- The in-process journal carries each message's history in a column of
-- its own (text: it is only carried, never queried).

-- +goose Up
ALTER TABLE audit_events ADD COLUMN occurred_at TIMESTAMPTZ;
ALTER TABLE audit_events ADD COLUMN history TEXT;
CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at DESC, timestamp DESC, id DESC) WHERE occurred_at IS NOT NULL;
ALTER TABLE inproc_journal ADD COLUMN history TEXT;

-- +goose Down
ALTER TABLE inproc_journal DROP COLUMN history;
DROP INDEX idx_audit_events_occurred_at;
ALTER TABLE audit_events DROP COLUMN history;
ALTER TABLE audit_events DROP COLUMN occurred_at;
