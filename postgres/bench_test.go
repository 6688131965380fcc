package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/storetest"
	"github.com/chronicle-audit/chronicle/postgres"
)

// benchEvents returns n events after the seq-th, with the metadata a
// typical event carries.
func benchEvents(seq, n int) []*chronicle.Event {
	out := make([]*chronicle.Event, n)
	for j := range out {
		out[j] = storetest.NewEvent(time.Duration(seq+j)*time.Microsecond, func(e *chronicle.Event) {
			e.Metadata = map[string]string{"ip": "192.0.2.17"}
		})
	}
	return out
}

// benchWrites runs write on batches of size fresh events and reports
// rows/s. Making the events is not timed.
func benchWrites(b *testing.B, size int, write func(ctx context.Context, events []*chronicle.Event) error) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch := benchEvents(i*size, size)
		b.StartTimer()
		if err := write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkStoreEvents measures the store's batched, idempotent writes
// (one statement, one round trip per batch).
func BenchmarkStoreEvents(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, _ := open(b)
			benchWrites(b, size, s.StoreEvents)
		})
	}
}

// BenchmarkStoreRoutes measures what the store writes for the seed
// topology: every event twice, once from each of its two routes, in
// batches of 100 from each, with and without Message History (each
// route's path). It reports events/s.
func BenchmarkStoreRoutes(b *testing.B) {
	for _, history := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", history), func(b *testing.B) {
			s, _ := open(b)
			const size = 100
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				all, category := storetest.Routed(i*size, size, history)
				b.StartTimer()
				for _, batch := range [][]*chronicle.Event{all, category} {
					if err := s.StoreEvents(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCopy is the physical ceiling of StoreEvents: the same rows
// COPYed into a table with the same columns and indexes, with no
// duplicate handling (a duplicate would fail the whole COPY).
func BenchmarkCopy(b *testing.B) {
	b.Run("batch=1000", func(b *testing.B) {
		_, name := open(b)
		pool := benchPool(b, name)
		if _, err := pool.Exec(context.Background(), `CREATE TABLE scratch (LIKE audit_events INCLUDING ALL)`); err != nil {
			b.Fatal(err)
		}
		benchWrites(b, 1000, func(ctx context.Context, events []*chronicle.Event) error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"scratch"}, copyColumns, copyRows(events))
			return err
		})
	})
}

// BenchmarkWriteMethod compares the ways StoreEvents could write a batch
// idempotently (see sqlInsertEvents for the choice):
//   - unnest: one INSERT … SELECT FROM unnest(array per column) ON CONFLICT
//     DO NOTHING (what StoreEvents does);
//   - values: one multi-row INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING;
//   - batch: a pgx batch of single-row INSERTs, pipelined in one round trip;
//   - copystage: in a transaction, COPY into a temporary table, then
//     INSERT … SELECT … ON CONFLICT DO NOTHING.
func BenchmarkWriteMethod(b *testing.B) {
	methods := []struct {
		name  string
		write func(b *testing.B, pool *pgxpool.Pool) func(context.Context, []*chronicle.Event) error
	}{
		{"unnest", func(b *testing.B, pool *pgxpool.Pool) func(context.Context, []*chronicle.Event) error {
			s := postgres.New(pool, postgres.Options{})
			b.Cleanup(func() { s.Close() })
			return s.StoreEvents
		}},
		{"values", func(b *testing.B, pool *pgxpool.Pool) func(context.Context, []*chronicle.Event) error {
			return func(ctx context.Context, events []*chronicle.Event) error {
				_, err := pool.Exec(ctx, valuesInsert(len(events)), valuesArgs(events)...)
				return err
			}
		}},
		{"batch", func(b *testing.B, pool *pgxpool.Pool) func(context.Context, []*chronicle.Event) error {
			return func(ctx context.Context, events []*chronicle.Event) error {
				q := valuesInsert(1)
				batch := &pgx.Batch{}
				for _, e := range events {
					batch.Queue(q, valuesArgs([]*chronicle.Event{e})...)
				}
				return pool.SendBatch(ctx, batch).Close()
			}
		}},
		{"copystage", func(b *testing.B, pool *pgxpool.Pool) func(context.Context, []*chronicle.Event) error {
			return func(ctx context.Context, events []*chronicle.Event) error {
				return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS staging (LIKE audit_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
						return err
					}
					if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, copyColumns, copyRows(events)); err != nil {
						return err
					}
					cols := strings.Join(copyColumns, ", ")
					_, err := tx.Exec(ctx, `INSERT INTO audit_events (`+cols+`) SELECT `+cols+` FROM staging ON CONFLICT (id) DO NOTHING`)
					return err
				})
			}
		}},
	}
	for _, m := range methods {
		for _, size := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("method=%s/batch=%d", m.name, size), func(b *testing.B) {
				_, name := open(b)
				benchWrites(b, size, m.write(b, benchPool(b, name)))
			})
		}
	}
}

// benchPool is a pool on the test database name, closed at cleanup.
func benchPool(b *testing.B, name string) *pgxpool.Pool {
	pool, err := pgxpool.New(context.Background(), withDatabase(b, adminURL(), name))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

var copyColumns = []string{"id", "actor", "action", "resource_type", "resource_id", "timestamp", "event_type", "correlation_id", "entity_key", "metadata"}

func copyRows(events []*chronicle.Event) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		e := events[i]
		return []any{uuid.MustParse(e.ID), e.Actor, e.Action, e.ResourceType, e.ResourceID, e.Timestamp,
			nullString(e.EventType), nullString(e.CorrelationID), nullString(e.EntityKey), metadataJSON(e.Metadata)}, nil
	})
}

func valuesInsert(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_events (` + strings.Join(copyColumns, ", ") + `) VALUES `)
	for r := range rows {
		if r > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for c := range len(copyColumns) {
			if c > 0 {
				q.WriteByte(',')
			}
			q.WriteString("$" + strconv.Itoa(r*len(copyColumns)+c+1))
		}
		q.WriteByte(')')
	}
	q.WriteString(` ON CONFLICT (id) DO NOTHING`)
	return q.String()
}

func valuesArgs(events []*chronicle.Event) []any {
	args := make([]any, 0, len(events)*len(copyColumns))
	for _, e := range events {
		args = append(args, e.ID, e.Actor, e.Action, e.ResourceType, e.ResourceID, e.Timestamp,
			nullString(e.EventType), nullString(e.CorrelationID), nullString(e.EntityKey), metadataJSON(e.Metadata))
	}
	return args
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func metadataJSON(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m // pgx encodes a map as JSON
}
