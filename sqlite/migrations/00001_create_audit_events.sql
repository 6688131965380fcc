-- The original system's first migration: the audit_events table and its indexes.
-- Timestamps are microseconds since the Unix epoch (UTC), so (timestamp, id)
-- orders and compares exactly. Every index ends in (timestamp, id): a
-- filtered listing walks one index, newest first, and stops at its limit.
-- WITHOUT ROWID: the table is the id index, one b-tree fewer per insert.

-- +goose Up
CREATE TABLE audit_events (
    id            TEXT    NOT NULL PRIMARY KEY,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    timestamp     INTEGER NOT NULL,
    metadata      TEXT,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) WITHOUT ROWID;
CREATE INDEX idx_audit_events_actor ON audit_events (actor, timestamp, id);
CREATE INDEX idx_audit_events_timestamp ON audit_events (timestamp, id);
CREATE INDEX idx_audit_events_resource ON audit_events (resource_type, resource_id, timestamp, id);

-- +goose Down
DROP TABLE audit_events;
