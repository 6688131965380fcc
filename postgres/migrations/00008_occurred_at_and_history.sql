-- occurred_at: when the producer says the event happened, a filter of
-- GET /events, so indexed (partial: NULL when the producer did not say).

-- The event's Message History: the path (a JSON array of hops, as text:
-- written as it comes, never parsed on the hot path) of the first queue
-- whose consumer stored it goes in its row (queue, history); each other
-- queue's path goes in event_paths, written once and never updated, as a
-- branch of the first (without the hops they share) when it has one. An
-- event routed to two queues costs one small extra insert, not a second
-- version of its row in the heap and in every index.

-- The in-process journal carries each message's history in a column of
-- its own (text: it is only carried, never queried).

-- +goose Up
ALTER TABLE audit_events ADD COLUMN occurred_at TIMESTAMPTZ;
ALTER TABLE audit_events ADD COLUMN queue TEXT;
ALTER TABLE audit_events ADD COLUMN history TEXT;
CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at DESC, timestamp DESC, id DESC) WHERE occurred_at IS NOT NULL;
CREATE TABLE event_paths (
    event_id UUID NOT NULL,
    queue    TEXT NOT NULL,
    history  TEXT NOT NULL,
    PRIMARY KEY (event_id, queue)
);
ALTER TABLE inproc_journal ADD COLUMN history TEXT;

-- +goose Down
ALTER TABLE inproc_journal DROP COLUMN history;
DROP TABLE event_paths;
DROP INDEX idx_audit_events_occurred_at;
ALTER TABLE audit_events DROP COLUMN history;
ALTER TABLE audit_events DROP COLUMN queue;
ALTER TABLE audit_events DROP COLUMN occurred_at;
