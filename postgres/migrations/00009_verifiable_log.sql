-- The verifiable log (package integrity). Consumers in any number of
-- processes store events concurrently; each new event also enters
-- log_pending (with its leaf hash), in the statement that stores it. One
-- integrator at a time, under an advisory lock, moves pending events into
-- log_leaves, giving each the next seq, in batches: ingestion never waits
-- on the log, and a crash leaves no gap and no duplicate seq (a batch is
-- one transaction, and seq is the primary key).
-- log_leaves keeps, per seq, the event's id and the hashes of the Merkle
-- tree its record stores (tlog.StoredHashes), so proofs read a few rows
-- by primary key; an event's seq is found by its id (unique).
-- Events stored before this migration are pending, oldest first, their
-- leaf hash computed by the integrator.
-- redaction: on a redacted event, who erased its content (JSON).
-- log_checkpoints: every signed checkpoint. log_keys: the key that signs
-- them, and the keys that did before a rotation.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN redaction TEXT;
CREATE TABLE log_pending (
    pos      BIGSERIAL PRIMARY KEY,
    event_id UUID  NOT NULL,
    leaf     BYTEA
);
CREATE TABLE log_leaves (
    seq      BIGINT PRIMARY KEY,
    event_id UUID   NOT NULL UNIQUE,
    hashes   BYTEA  NOT NULL
);
CREATE TABLE log_checkpoints (
    size       BIGINT PRIMARY KEY,
    note       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE log_keys (
    verifier   TEXT PRIMARY KEY,
    added_at   TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);
INSERT INTO log_pending (event_id) SELECT id FROM audit_events ORDER BY timestamp, id;

-- +goose Down
DROP TABLE log_keys;
DROP TABLE log_checkpoints;
DROP TABLE log_leaves;
DROP TABLE log_pending;
ALTER TABLE audit_events DROP COLUMN redaction;
