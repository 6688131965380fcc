-- Idempotency-Key of POST /events: the answer given and the events
-- accepted, so a retry (from any producer process) gets the same answer
-- and stores nothing new. Kept at least CHRONICLE_IDEMPOTENCY_TTL; the
-- created_at index serves the sweep that forgets older keys.

-- +goose Up
CREATE TABLE idempotency_keys (
    key         TEXT        PRIMARY KEY,
    fingerprint TEXT        NOT NULL,
    status      INTEGER     NOT NULL,
    response    BYTEA       NOT NULL,
    events      JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
