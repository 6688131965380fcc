package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// The sinks' cursors live in sink_cursors. One process delivers a sink at
// a time: the lease is an exclusive flock on a file beside the database
// (<file>.sink-<name>.lock), held by the open file, so it ends with the
// process, however it ends.

var _ chronicle.SinkStore = (*Store)(nil)

// SinkStates implements chronicle.SinkStore.
func (s *Store) SinkStates(ctx context.Context) ([]chronicle.SinkState, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, next_seq, replay_from, replay_to, updated_at FROM sink_cursors ORDER BY name`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []chronicle.SinkState{}
	for rows.Next() {
		st, err := scanSinkState(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, st)
	}
	return out, translate(rows.Err())
}

func scanSinkState(r scanner) (chronicle.SinkState, error) {
	var st chronicle.SinkState
	var at int64
	err := r.Scan(&st.Name, &st.Cursor, &st.ReplayFrom, &st.ReplayTo, &at)
	st.UpdatedAt = time.UnixMicro(at).UTC()
	return st, err
}

// ReplaySink implements chronicle.SinkStore.
func (s *Store) ReplaySink(ctx context.Context, name string, from, to int64) (chronicle.SinkState, error) {
	var st chronicle.SinkState
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = scanSinkState(tx.QueryRow(`INSERT INTO sink_cursors (name, replay_from, replay_to, updated_at) VALUES (?, ?, min(?, 0), ?)
ON CONFLICT (name) DO UPDATE SET replay_from = excluded.replay_from, replay_to = min(?, sink_cursors.next_seq), updated_at = excluded.updated_at
RETURNING name, next_seq, replay_from, replay_to, updated_at`, name, from, to, time.Now().UnixMicro(), to))
		return err
	})
	return st, err
}

// LeaseSink implements chronicle.SinkStore.
func (s *Store) LeaseSink(ctx context.Context, name string) (chronicle.SinkLease, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path+".sink-"+name+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock of sink %q: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, chronicle.Errorf(chronicle.ErrConflict, "sink %q is delivered by another process", name)
		}
		return nil, fmt.Errorf("lock sink %q: %w", name, err)
	}
	return &sinkLease{s: s, name: name, lock: f}, nil
}

type sinkLease struct {
	s    *Store
	name string
	mu   sync.Mutex
	lock *os.File // nil once released
}

func (l *sinkLease) held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock == nil {
		return chronicle.Errorf(chronicle.ErrClosed, "the lease of sink %q was released", l.name)
	}
	return nil
}

func (l *sinkLease) State(ctx context.Context) (chronicle.SinkState, error) {
	if err := l.held(); err != nil {
		return chronicle.SinkState{}, err
	}
	st, err := scanSinkState(l.s.rdb.QueryRowContext(ctx,
		`SELECT name, next_seq, replay_from, replay_to, updated_at FROM sink_cursors WHERE name = ?`, l.name))
	if errors.Is(err, sql.ErrNoRows) {
		return chronicle.SinkState{Name: l.name}, nil
	}
	return st, translate(err)
}

func (l *sinkLease) Advance(ctx context.Context, cursor int64) error {
	if err := l.held(); err != nil {
		return err
	}
	return l.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO sink_cursors (name, next_seq, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET next_seq = excluded.next_seq, updated_at = excluded.updated_at`, l.name, cursor, time.Now().UnixMicro())
		return err
	})
}

func (l *sinkLease) ReplayProgress(ctx context.Context, from, to, next int64) error {
	if err := l.held(); err != nil {
		return err
	}
	return l.s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE sink_cursors SET replay_from = min(?, replay_to), updated_at = ?
WHERE name = ? AND replay_from = ? AND replay_to = ?`, next, time.Now().UnixMicro(), l.name, from, to)
		return err
	})
}

func (l *sinkLease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close() // closing the file releases the flock
	l.lock = nil
	return err
}
