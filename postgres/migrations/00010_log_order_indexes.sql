-- Reading the log in seq order with the filters of GET /events (GET
-- /events/export, GET /events/stream): a page walks log_leaves by seq
-- and joins each event by its primary key. This index gives the walk
-- (seq, event_id) without reading log_leaves' rows, whose hashes make
-- them wide: an index-only scan.

-- +goose Up
CREATE UNIQUE INDEX idx_log_leaves_seq_event ON log_leaves (seq) INCLUDE (event_id);

-- +goose Down
DROP INDEX idx_log_leaves_seq_event;
