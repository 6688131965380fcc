-- correlation_id and entity_key, and an index for each filter of GET /events
-- that has none yet: action, and resource_id without resource_type.
-- entity_key is mostly NULL and a NULL never matches a filter, so its
-- index (like correlation_id's) is partial: smaller, and cheaper to keep.
-- A resource_id almost always belongs to one resource_type: without
-- statistics on that dependency the planner multiplies the two filters'
-- selectivities, expects a page's worth of rows, and sorts them rather
-- than walking the resource index.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN correlation_id VARCHAR(255);
ALTER TABLE audit_events ADD COLUMN entity_key VARCHAR(255);
CREATE INDEX idx_audit_events_correlation_id ON audit_events (correlation_id, timestamp DESC, id DESC) WHERE correlation_id IS NOT NULL;
CREATE INDEX idx_audit_events_entity_key ON audit_events (entity_key, timestamp DESC, id DESC) WHERE entity_key IS NOT NULL;
CREATE INDEX idx_audit_events_action ON audit_events (action, timestamp DESC, id DESC);
CREATE INDEX idx_audit_events_resource_id ON audit_events (resource_id, timestamp DESC, id DESC);
CREATE STATISTICS audit_events_resource_deps (dependencies) ON resource_type, resource_id FROM audit_events;

-- +goose Down
DROP STATISTICS audit_events_resource_deps;
DROP INDEX idx_audit_events_resource_id;
DROP INDEX idx_audit_events_action;
DROP INDEX idx_audit_events_entity_key;
DROP INDEX idx_audit_events_correlation_id;
ALTER TABLE audit_events DROP COLUMN entity_key;
ALTER TABLE audit_events DROP COLUMN correlation_id;
