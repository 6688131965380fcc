-- The original system's second migration: event_type, the routing key, and its index.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN event_type TEXT;
CREATE INDEX idx_audit_events_event_type ON audit_events (event_type, timestamp, id);

-- +goose Down
DROP INDEX idx_audit_events_event_type;
ALTER TABLE audit_events DROP COLUMN event_type;
