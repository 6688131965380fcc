package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/chronicle-audit/chronicle"
)

const sqlEntityPut = `INSERT INTO entities (key, name, attributes) VALUES (?, ?, ?)
	ON CONFLICT (key) DO UPDATE SET name = excluded.name, attributes = excluded.attributes,
	updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`

// PutEntity implements chronicle.EntityStore.
func (s *Store) PutEntity(ctx context.Context, e *chronicle.Entity) error {
	attrs, err := json.Marshal(nonNil(e.Attributes))
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := s.stmt(tx, sqlEntityPut)
		if err != nil {
			return err
		}
		_, err = st.Exec(e.Key, e.Name, string(attrs))
		return err
	})
}

// Entity implements chronicle.EntityStore.
func (s *Store) Entity(ctx context.Context, key string) (*chronicle.Entity, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	e, err := scanEntity(s.rdb.QueryRowContext(ctx, `SELECT key, name, attributes FROM entities WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	return e, translate(err)
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
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	list, err := s.queryEntities(ctx, `SELECT key, name, attributes FROM entities WHERE key IN (?`+strings.Repeat(",?", len(keys)-1)+`)`, args...)
	for _, e := range list {
		out[e.Key] = e
	}
	return out, err
}

func (s *Store) queryEntities(ctx context.Context, q string, args ...any) ([]*chronicle.Entity, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*chronicle.Entity
	for rows.Next() {
		e, err := scanEntity(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// DeleteEntity implements chronicle.EntityStore.
func (s *Store) DeleteEntity(ctx context.Context, key string) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM entities WHERE key = ?`, key)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		return chronicle.Errorf(chronicle.ErrNotFound, "Entity not found: %s", key)
	}
	return err
}

// CountEntities implements chronicle.EntityStore.
func (s *Store) CountEntities(ctx context.Context) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM entities`).Scan(&n)
	return n, translate(err)
}

func scanEntity(r scanner) (*chronicle.Entity, error) {
	var e chronicle.Entity
	var attrs string
	if err := r.Scan(&e.Key, &e.Name, &attrs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attrs), &e.Attributes); err != nil {
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
