-- Idempotency keys belong to the principal that used them (the API key's
-- identity; '' when access control is off), so one producer can neither
-- see nor block another's keys. Existing keys keep the shared scope.

-- +goose Up
ALTER TABLE idempotency_keys ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);

-- +goose Down
DELETE FROM idempotency_keys a USING idempotency_keys b
    WHERE a.key = b.key AND a.scope > b.scope;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys DROP COLUMN scope;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (key);
