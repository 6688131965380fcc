-- Idempotency keys belong to the principal that used them (the API key's
-- identity; '' when access control is off), so one producer can neither
-- see nor block another's keys. The table is rebuilt with the scope in
-- its primary key; existing keys keep the shared scope.

-- +goose Up
CREATE TABLE idempotency_keys_scoped (
    scope       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    response    BLOB    NOT NULL,
    events      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
INSERT INTO idempotency_keys_scoped (scope, key, fingerprint, status, response, events, created_at)
    SELECT '', key, fingerprint, status, response, events, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_scoped RENAME TO idempotency_keys;
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
CREATE TABLE idempotency_keys_unscoped (
    key         TEXT    NOT NULL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    response    BLOB    NOT NULL,
    events      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT OR IGNORE INTO idempotency_keys_unscoped (key, fingerprint, status, response, events, created_at)
    SELECT key, fingerprint, status, response, events, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_unscoped RENAME TO idempotency_keys;
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);
