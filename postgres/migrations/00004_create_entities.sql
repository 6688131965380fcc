-- The entity registry used for read-time enrichment.

-- +goose Up
CREATE TABLE entities (
    key        VARCHAR(255) PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    attributes JSONB        NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE entities;
