package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicle-audit/chronicle"
)

// The sinks' cursors live in sink_cursors. One process delivers a sink at
// a time, as one integrates the log: it holds a session advisory lock
// (one key per sink) on a connection taken out of the pool for good, and
// moves the sink's cursor on that connection only. When the session ends
// (the process dies, the network fails) the lock goes with it, and so
// does the lease: its next call fails, and another process may take over.

var _ chronicle.SinkStore = (*Store)(nil)

// sinkLockKey is the advisory lock key of sink name: a hash of the name,
// so each sink has its own.
func sinkLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("chronicle sink\x00" + name))
	return int64(h.Sum64())
}

const sinkColumns = `name, next_seq, replay_from, replay_to, updated_at`

func scanSinkState(r pgx.Row) (chronicle.SinkState, error) {
	var st chronicle.SinkState
	err := r.Scan(&st.Name, &st.Cursor, &st.ReplayFrom, &st.ReplayTo, &st.UpdatedAt)
	st.UpdatedAt = st.UpdatedAt.UTC()
	return st, err
}

// SinkStates implements chronicle.SinkStore.
func (s *Store) SinkStates(ctx context.Context) ([]chronicle.SinkState, error) {
	var out []chronicle.SinkState
	err := s.run(ctx, true, func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+sinkColumns+` FROM sink_cursors ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []chronicle.SinkState{}
		for rows.Next() {
			st, err := scanSinkState(rows)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}

// ReplaySink implements chronicle.SinkStore.
func (s *Store) ReplaySink(ctx context.Context, name string, from, to int64) (chronicle.SinkState, error) {
	var st chronicle.SinkState
	err := s.run(ctx, true, func() error {
		var err error
		st, err = scanSinkState(s.pool.QueryRow(ctx, `INSERT INTO sink_cursors (name, replay_from, replay_to, updated_at)
VALUES ($1, $2, least($3, 0), now())
ON CONFLICT (name) DO UPDATE SET replay_from = excluded.replay_from, replay_to = least($3, sink_cursors.next_seq), updated_at = now()
RETURNING `+sinkColumns, name, from, to))
		return err
	})
	return st, err
}

// LeaseSink implements chronicle.SinkStore.
func (s *Store) LeaseSink(ctx context.Context, name string) (chronicle.SinkLease, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, translate(err)
	}
	// The lock belongs to this session: the connection leaves the pool
	// for good, so no other use of it can unlock it.
	raw := conn.Hijack()
	var got bool
	if err := raw.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sinkLockKey(name)).Scan(&got); err != nil || !got {
		raw.Close(context.Background())
		if err != nil {
			return nil, translate(err)
		}
		return nil, chronicle.Errorf(chronicle.ErrConflict, "sink %q is delivered by another process", name)
	}
	return &sinkLease{name: name, conn: raw}, nil
}

type sinkLease struct {
	name string
	mu   sync.Mutex // a pgx.Conn serves one call at a time
	conn *pgx.Conn  // nil once released
}

// do runs fn on the lease's connection. Its errors are not retried on
// another connection: the lock is this session's.
func (l *sinkLease) do(fn func(*pgx.Conn) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return chronicle.Errorf(chronicle.ErrClosed, "the lease of sink %q was released", l.name)
	}
	if l.conn.IsClosed() {
		return chronicle.Unavailable(0, "the lease of sink "+l.name+" was lost with its database session", nil)
	}
	return translate(fn(l.conn))
}

func (l *sinkLease) State(ctx context.Context) (chronicle.SinkState, error) {
	st := chronicle.SinkState{Name: l.name}
	err := l.do(func(c *pgx.Conn) error {
		got, err := scanSinkState(c.QueryRow(ctx, `SELECT `+sinkColumns+` FROM sink_cursors WHERE name = $1`, l.name))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		st = got
		return nil
	})
	return st, err
}

func (l *sinkLease) Advance(ctx context.Context, cursor int64) error {
	return l.do(func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO sink_cursors (name, next_seq, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET next_seq = excluded.next_seq, updated_at = now()`, l.name, cursor)
		return err
	})
}

func (l *sinkLease) ReplayProgress(ctx context.Context, from, to, next int64) error {
	return l.do(func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `UPDATE sink_cursors SET replay_from = least($4, replay_to), updated_at = now()
WHERE name = $1 AND replay_from = $2 AND replay_to = $3`, l.name, from, to, next)
		return err
	})
}

func (l *sinkLease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	// Unlock first: the server ends a closed session's locks only some
	// time after the client hangs up, and another lease may come at once.
	// Ending the session releases the lock anyway if this fails.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, sinkLockKey(l.name))
	err := l.conn.Close(ctx)
	l.conn = nil
	return translate(err)
}
