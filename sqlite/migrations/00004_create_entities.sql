-- The entity registry used for read-time enrichment.

-- +goose Up
CREATE TABLE entities (
    key        TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- +goose Down
DROP TABLE entities;
