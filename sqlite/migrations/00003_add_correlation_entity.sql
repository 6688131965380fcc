-- correlation_id and entity_key are filters of GET /events: indexed too.
-- (action is not: it is rarely selective alone, and every index costs each
-- insert a b-tree write.)

-- +goose Up
ALTER TABLE audit_events ADD COLUMN correlation_id TEXT;
ALTER TABLE audit_events ADD COLUMN entity_key TEXT;
CREATE INDEX idx_audit_events_correlation_id ON audit_events (correlation_id, timestamp, id) WHERE correlation_id IS NOT NULL;
CREATE INDEX idx_audit_events_entity_key ON audit_events (entity_key, timestamp, id) WHERE entity_key IS NOT NULL;

-- +goose Down
DROP INDEX idx_audit_events_entity_key;
DROP INDEX idx_audit_events_correlation_id;
ALTER TABLE audit_events DROP COLUMN entity_key;
ALTER TABLE audit_events DROP COLUMN correlation_id;
