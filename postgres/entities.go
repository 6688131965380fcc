package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chronicle-audit/chronicle"
)

// PutEntity implements chronicle.EntityStore: an upsert that replaces the
// name and every attribute.
func (s *Store) PutEntity(ctx context.Context, e *chronicle.Entity) error {
	attrs, err := json.Marshal(nonNil(e.Attributes))
	if err != nil {
		return fmt.Errorf("entity %s: attributes: %w", e.Key, err)
	}
	return s.run(ctx, true, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO entities (key, name, attributes) VALUES ($1, $2, $3::text::jsonb)
			ON CONFLICT (key) DO UPDATE SET name = excluded.name, attributes = excluded.attributes, updated_at = now()`,
			e.Key, e.Name, string(attrs))
		return err
	})
}

// Entity implements chronicle.EntityStore.
func (s *Store) Entity(ctx context.Context, key string) (*chronicle.Entity, error) {
	var e *chronicle.Entity
	err := s.run(ctx, true, func() error {
		var err error
		e, err = scanEntity(s.pool.QueryRow(ctx, `SELECT key, name, attributes FROM entities WHERE key = $1`, key))
		return err
	})
	if errors.Is(err, chronicle.ErrNotFound) {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	return e, err
}

// Entities implements chronicle.EntityStore.
func (s *Store) Entities(ctx context.Context) ([]*chronicle.Entity, error) {
	return s.queryEntities(ctx, `SELECT key, name, attributes FROM entities ORDER BY key`)
}

// EntitiesByKey implements chronicle.EntityStore.
func (s *Store) EntitiesByKey(ctx context.Context, keys []string) (map[string]*chronicle.Entity, error) {
	out := make(map[string]*chronicle.Entity, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	list, err := s.queryEntities(ctx, `SELECT key, name, attributes FROM entities WHERE key = ANY($1::text[])`, keys)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		out[e.Key] = e
	}
	return out, nil
}

func (s *Store) queryEntities(ctx context.Context, q string, args ...any) ([]*chronicle.Entity, error) {
	var out []*chronicle.Entity
	err := s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			e, err := scanEntity(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteEntity implements chronicle.EntityStore.
func (s *Store) DeleteEntity(ctx context.Context, key string) error {
	var n int64
	// Not retried blindly: a delete that committed before its connection
	// broke would be reported as not found on the second try.
	err := s.run(ctx, false, func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM entities WHERE key = $1`, key)
		n = tag.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		return chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	return err
}

// CountEntities implements chronicle.EntityStore.
func (s *Store) CountEntities(ctx context.Context) (int, error) {
	var n int
	err := s.run(ctx, true, func() error {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM entities`).Scan(&n)
	})
	return n, err
}

func scanEntity(r pgx.Row) (*chronicle.Entity, error) {
	var e chronicle.Entity
	var attrs []byte
	if err := r.Scan(&e.Key, &e.Name, &attrs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(attrs, &e.Attributes); err != nil {
		return nil, fmt.Errorf("entity %s: corrupt attributes: %w", e.Key, err)
	}
	e.Attributes = nonNil(e.Attributes)
	return &e, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
