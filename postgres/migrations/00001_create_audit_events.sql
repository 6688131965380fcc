-- The original system's first migration: the audit_events table and its indexes.
-- Every listing index ends in (timestamp DESC, id DESC): a filtered,
-- newest-first listing walks one index in order, continues below a
-- (timestamp, id) position with an index condition, and stops at its
-- LIMIT, with no sort. ids are time-ordered UUIDs, so new rows land at
-- the end of the primary key.

-- +goose Up
CREATE TABLE audit_events (
    id            UUID         PRIMARY KEY,
    actor         VARCHAR(255) NOT NULL,
    action        VARCHAR(255) NOT NULL,
    resource_type VARCHAR(255) NOT NULL,
    resource_id   VARCHAR(255) NOT NULL,
    timestamp     TIMESTAMPTZ  NOT NULL,
    metadata      JSONB,
    created_at    TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_events_actor ON audit_events (actor, timestamp DESC, id DESC);
CREATE INDEX idx_audit_events_timestamp ON audit_events (timestamp DESC, id DESC);
CREATE INDEX idx_audit_events_resource ON audit_events (resource_type, resource_id, timestamp DESC, id DESC);

-- +goose Down
DROP TABLE audit_events;
