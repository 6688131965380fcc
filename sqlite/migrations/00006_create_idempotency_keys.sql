-- Idempotency-Key of POST /events: the answer given and the events
-- accepted, so a retry (from any producer process) gets the same answer
-- and stores nothing new. Kept at least CHRONICLE_IDEMPOTENCY_TTL.

-- +goose Up
CREATE TABLE idempotency_keys (
    key         TEXT    NOT NULL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    response    BLOB    NOT NULL,
    events      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
