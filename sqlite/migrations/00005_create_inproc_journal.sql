-- The journal of the in-process transport's queues: a message is written
-- here before its producer gets 202 and removed in the transaction that
-- stores its event, so queued events survive kill -9 and power cuts.

-- +goose Up
CREATE TABLE inproc_journal (
    seq          INTEGER NOT NULL PRIMARY KEY,
    queue        TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    message_type TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    headers      TEXT
);

-- +goose Down
DROP TABLE inproc_journal;
