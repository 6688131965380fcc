package sqlite

import (
	"context"
	"database/sql"
)

// ExecForTest runs a statement on the writer, for tests that need to set
// up states the API cannot reach.
func (s *Store) ExecForTest(query string, args ...any) error {
	return s.write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(query, args...)
		return err
	})
}
