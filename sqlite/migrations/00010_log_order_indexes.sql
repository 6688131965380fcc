-- Reading the log in seq order with the filters of GET /events (GET
-- /events/export, GET /events/stream). audit_events.seq orders it; each
-- filter that leads a listing index gets one ending in seq too, so a
-- filtered export or stream seeks to its next page rather than walking
-- the log. action, the time ranges and occurred_at filter a walk of
-- idx_audit_events_seq (a window of the log per query).

-- +goose Up
CREATE INDEX idx_audit_events_seq ON audit_events (seq);
CREATE INDEX idx_audit_events_actor_seq ON audit_events (actor, seq);
CREATE INDEX idx_audit_events_event_type_seq ON audit_events (event_type, seq);
CREATE INDEX idx_audit_events_resource_seq ON audit_events (resource_type, resource_id, seq);

-- +goose Down
DROP INDEX idx_audit_events_resource_seq;
DROP INDEX idx_audit_events_event_type_seq;
DROP INDEX idx_audit_events_actor_seq;
DROP INDEX idx_audit_events_seq;
