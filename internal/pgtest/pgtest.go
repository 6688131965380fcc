// Package pgtest gives each test its own PostgreSQL database, created and
// dropped by the test, so tests run in parallel and never see each other's
// rows. PostgreSQL is required: without it a test fails and says how to
// start it (make test does).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminURL is the database tests connect to in order to create their own
// (CHRONICLE_TEST_DATABASE_URL; scripts/test.sh sets it).
func AdminURL() string {
	if u := os.Getenv("CHRONICLE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"
}

// Admin returns a connection to the admin database, closed at cleanup.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable (%v): run `make test`, which starts it, or set CHRONICLE_TEST_DATABASE_URL", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// NewDatabase creates an empty database for one test, dropped at cleanup,
// and returns its URL and name.
func NewDatabase(t testing.TB) (dbURL, name string) {
	t.Helper()
	conn := Admin(t)
	b := make([]byte, 6)
	rand.Read(b)
	name = "chronicle_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return WithDatabase(t, AdminURL(), name), name
}

// WithDatabase returns the connection string u pointed at database name.
func WithDatabase(t testing.TB, u, name string) string {
	t.Helper()
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return u + " dbname=" + name // keyword/value form
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("CHRONICLE_TEST_DATABASE_URL: %v", err)
	}
	pu.Path, pu.RawPath = "/"+name, ""
	return pu.String()
}

// TerminateBackends ends every server process connected to database
// name, as a database restart or failover would, and returns how many.
func TerminateBackends(t testing.TB, name string) int {
	t.Helper()
	conn := Admin(t)
	var n int
	err := conn.QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name).Scan(&n)
	if err != nil {
		t.Fatalf("terminate backends of %s: %v", name, err)
	}
	return n
}

// Count runs a count query on database dbURL.
func Count(t testing.TB, dbURL, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
