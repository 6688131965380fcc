-- Outbound sinks (package outbound): each sink's cursor, the seq of the
-- next event it delivers, moved only after a batch was delivered; and a
-- pending replay [replay_from, replay_to) of events it already delivered.
-- updated_at: Unix microseconds.

-- +goose Up
CREATE TABLE sink_cursors (
    name        TEXT    NOT NULL PRIMARY KEY,
    next_seq    INTEGER NOT NULL DEFAULT 0,
    replay_from INTEGER NOT NULL DEFAULT 0,
    replay_to   INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE sink_cursors;
