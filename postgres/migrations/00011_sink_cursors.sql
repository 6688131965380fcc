-- Outbound sinks (package outbound): each sink's cursor, the seq of the
-- next event it delivers, moved only after a batch was delivered; and a
-- pending replay [replay_from, replay_to) of events it already delivered.
-- The process that delivers a sink holds a session advisory lock for it.

-- +goose Up
CREATE TABLE sink_cursors (
    name        TEXT        PRIMARY KEY,
    next_seq    BIGINT      NOT NULL DEFAULT 0,
    replay_from BIGINT      NOT NULL DEFAULT 0,
    replay_to   BIGINT      NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE sink_cursors;
