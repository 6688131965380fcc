-- The journal of the in-process transport's queues: a message is written
-- here before its producer gets 202 and removed in the transaction that
-- stores its event, so queued events survive a crash. seq comes from a
-- sequence, which never hands out a number twice, even after a rollback.

-- +goose Up
CREATE SEQUENCE inproc_journal_seq;
CREATE TABLE inproc_journal (
    seq          BIGINT PRIMARY KEY DEFAULT nextval('inproc_journal_seq'),
    queue        TEXT   NOT NULL,
    message_id   TEXT   NOT NULL,
    message_type TEXT   NOT NULL,
    body         BYTEA  NOT NULL,
    headers      JSONB
);
ALTER SEQUENCE inproc_journal_seq OWNED BY inproc_journal.seq;

-- +goose Down
DROP TABLE inproc_journal;
