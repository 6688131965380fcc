-- The verifiable log (package integrity). Every event takes the next seq
-- as the store's single writer stores it, in the same transaction, so the
-- log has no gap and no event twice whatever crashes. log_leaves keeps,
-- per seq, the event's id and the hashes of the Merkle tree its record
-- stores (tlog.StoredHashes: the leaf hash, then the subtrees it
-- completes), so proofs read a few rows by primary key.
-- audit_events.seq is each event's place, shown with it; events stored
-- before this migration are added to the log in the background, oldest
-- first (idx_audit_events_unsequenced finds them, and holds no other row).
-- redaction: on a redacted event, who erased its content (JSON).
-- log_checkpoints: every signed checkpoint. log_keys: the key that signs
-- them, and the keys that did before a rotation.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN seq INTEGER;
ALTER TABLE audit_events ADD COLUMN redaction TEXT;
CREATE INDEX idx_audit_events_unsequenced ON audit_events (timestamp, id) WHERE seq IS NULL;
CREATE TABLE log_leaves (
    seq      INTEGER NOT NULL PRIMARY KEY,
    event_id TEXT    NOT NULL,
    hashes   BLOB    NOT NULL
);
CREATE TABLE log_checkpoints (
    size       INTEGER NOT NULL PRIMARY KEY,
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE log_keys (
    verifier   TEXT    NOT NULL PRIMARY KEY,
    added_at   INTEGER NOT NULL,
    retired_at INTEGER
);

-- +goose Down
DROP TABLE log_keys;
DROP TABLE log_checkpoints;
DROP TABLE log_leaves;
DROP INDEX idx_audit_events_unsequenced;
ALTER TABLE audit_events DROP COLUMN redaction;
ALTER TABLE audit_events DROP COLUMN seq;
