package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"

	"github.com/chronicle-audit/chronicle/internal/pgtest"
)

// The verifiable log, end to end: a real service, the real CLI, and a
// database edited behind Chronicle's back.

// logFixture is a running service whose log holds n events, all in a
// signed checkpoint that the test saved, and a way to edit its database.
type logFixture struct {
	t     *testing.T
	store string
	p     *proc
	n     int
	key   string // the verifier key, pinned
	saved string // the saved checkpoint's file
	dir   string
	db    string // the SQLite file or DATABASE_URL
}

func newLogFixture(t *testing.T, store string, n int) *logFixture {
	t.Helper()
	f := &logFixture{t: t, store: store, dir: t.TempDir()}
	env := map[string]string{"CHRONICLE_CHECKPOINT_INTERVAL": "100ms", "CHRONICLE_CHECKPOINT_DIR": filepath.Join(f.dir, "checkpoints")}
	switch store {
	case "sqlite":
		f.db = filepath.Join(f.dir, "chronicle.db")
		env["CHRONICLE_SQLITE_PATH"] = f.db
	case "postgres":
		f.db, _ = pgtest.NewDatabase(t)
		env["CHRONICLE_STORE"], env["DATABASE_URL"] = "postgres", f.db
	}
	f.p = serve(t, env)
	f.post(n)
	f.key = strings.TrimSpace(string(f.p.do("GET", "/log/key", "").Body))
	f.saved = filepath.Join(f.dir, "saved.checkpoint")
	f.cli(0, "log", "checkpoint", "--save", f.saved)
	return f
}

// post sends n events and waits until a signed checkpoint holds them all.
func (f *logFixture) post(n int) {
	f.t.Helper()
	var batch []string
	for i := range n {
		batch = append(batch, fmt.Sprintf(`{"actor":"user%d@example.com","action":"login","resource_type":"security","resource_id":"s-%d","metadata":{"ip":"192.0.2.%d"}}`, i%7, i, i%250))
	}
	f.p.do("POST", "/events", "["+strings.Join(batch, ",")+"]").expect(f.t, 202, "accepted")
	f.n += n
	f.waitCheckpoint()
}

// waitCheckpoint waits until the latest checkpoint holds the f.n events
// the log should hold.
func (f *logFixture) waitCheckpoint() {
	f.t.Helper()
	eventually(f.t, 20*time.Second, fmt.Sprintf("a checkpoint of %d events", f.n), func() bool {
		r := f.p.do("GET", "/log/checkpoint", "")
		lines := strings.Split(string(r.Body), "\n")
		return r.Status == 200 && len(lines) > 1 && lines[1] == fmt.Sprint(f.n)
	})
}

// cli runs the chronicle command against the fixture's service with the
// pinned key, wants exit code want, and returns its output.
func (f *logFixture) cli(want int, args ...string) string {
	f.t.Helper()
	args = append(args[:1:1], append([]string{"--url", f.p.url, "--key", f.key}, args[1:]...)...)
	return runCLI(f.t, want, args...)
}

func runCLI(t *testing.T, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("chronicle %s: %v", strings.Join(args, " "), err)
	}
	if code != want {
		t.Fatalf("chronicle %s: exit code %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// verify runs chronicle verify against the saved checkpoint.
func (f *logFixture) verify(want int) string {
	f.t.Helper()
	return f.cli(want, "verify", "--checkpoint", f.saved)
}

// exec runs SQL on the database behind Chronicle's back: SQLite's
// statements first, PostgreSQL's second.
func (f *logFixture) exec(sqliteSQL, pgSQL string, args ...any) {
	f.t.Helper()
	switch f.store {
	case "sqlite":
		db, err := sql.Open("sqlite", "file:"+f.db+"?_pragma=busy_timeout(10000)")
		if err != nil {
			f.t.Fatal(err)
		}
		defer db.Close()
		// One transaction, as a careful attacker would: a checkpointer
		// that saw half the change would record the wrong size.
		tx, err := db.Begin()
		if err != nil {
			f.t.Fatal(err)
		}
		for _, q := range strings.Split(sqliteSQL, ";\n") {
			if _, err := tx.Exec(q, args...); err != nil {
				f.t.Fatalf("%s: %v", q, err)
			}
		}
		if err := tx.Commit(); err != nil {
			f.t.Fatal(err)
		}
	case "postgres":
		conn, err := pgx.Connect(context.Background(), f.db)
		if err != nil {
			f.t.Fatal(err)
		}
		defer conn.Close(context.Background())
		tx, err := conn.Begin(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, q := range strings.Split(pgSQL, ";\n") {
			if _, err := tx.Exec(context.Background(), q, args...); err != nil {
				f.t.Fatalf("%s: %v", q, err)
			}
		}
		if err := tx.Commit(context.Background()); err != nil {
			f.t.Fatal(err)
		}
	}
}

// idAt returns the id of the event at seq, as the service says.
func (f *logFixture) idAt(seq int) string {
	f.t.Helper()
	r := f.p.do("GET", fmt.Sprintf("/events/export?from_seq=%d&to_seq=%d", seq, seq+1), "")
	var e struct{ ID string }
	if err := json.Unmarshal([]byte(strings.SplitN(string(r.Body), "\n", 2)[0]), &e); err != nil || e.ID == "" {
		f.t.Fatalf("event at seq %d: %s", seq, r.Body)
	}
	return e.ID
}

func expectFailure(t *testing.T, out string, seq int, kind string) {
	t.Helper()
	want := fmt.Sprintf("FAIL: first bad seq %d (%s)", seq, kind)
	if !strings.Contains(out, want) {
		t.Fatalf("verify said:\n%s\nwant %q", out, want)
	}
}

// Tampering with the database, every way the log must catch, on both
// stores: chronicle verify names the first bad seq and what is wrong.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			t.Run("Untouched", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				out := f.verify(0)
				if !strings.Contains(out, "OK: the log verifies") || !strings.Contains(out, "events: 120 checked") {
					t.Fatalf("verify:\n%s", out)
				}
			})
			t.Run("ChangeOneField", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				f.exec(`UPDATE audit_events SET actor = 'mallory@example.com' WHERE seq = 57`,
					`UPDATE audit_events SET actor = 'mallory@example.com' WHERE id = (SELECT event_id FROM log_leaves WHERE seq = 57)`)
				expectFailure(t, f.verify(1), 57, "modified")
			})
			t.Run("DeleteRowInTheMiddle", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				f.exec(`DELETE FROM audit_events WHERE seq = 64`,
					`DELETE FROM audit_events WHERE id = (SELECT event_id FROM log_leaves WHERE seq = 64)`)
				expectFailure(t, f.verify(1), 64, "missing")
			})
			t.Run("DeleteLogRecordToo", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				f.exec("DELETE FROM log_leaves WHERE seq = 33;\nDELETE FROM audit_events WHERE seq = 33",
					"DELETE FROM audit_events WHERE id = (SELECT event_id FROM log_leaves WHERE seq = 33);\nDELETE FROM log_leaves WHERE seq = 33")
				expectFailure(t, f.verify(1), 33, "missing")
			})
			t.Run("TruncateTail", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				f.exec("DELETE FROM audit_events WHERE seq >= 100;\nDELETE FROM log_leaves WHERE seq >= 100;\nDELETE FROM log_checkpoints WHERE size > 100",
					"DELETE FROM audit_events WHERE id IN (SELECT event_id FROM log_leaves WHERE seq >= 100);\nDELETE FROM log_leaves WHERE seq >= 100;\nDELETE FROM log_checkpoints WHERE size > 100")
				out := f.verify(1)
				expectFailure(t, out, 100, "truncated")
				if !strings.Contains(out, "rollback") {
					t.Fatalf("verify:\n%s\nwant it to name the rollback", out)
				}
			})
			t.Run("SwapTwoRows", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				a, b := f.idAt(10), f.idAt(20)
				f.exec("UPDATE audit_events SET seq = -1 WHERE seq = 10;\nUPDATE audit_events SET seq = 10 WHERE seq = 20;\nUPDATE audit_events SET seq = 20 WHERE seq = -1;\n"+
					"UPDATE log_leaves SET event_id = '"+b+"' WHERE seq = 10;\nUPDATE log_leaves SET event_id = '"+a+"' WHERE seq = 20",
					"UPDATE log_leaves SET event_id = gen_random_uuid() WHERE seq = 10;\nUPDATE log_leaves SET event_id = '"+a+"' WHERE seq = 20;\nUPDATE log_leaves SET event_id = '"+b+"' WHERE seq = 10")
				out := f.verify(1)
				expectFailure(t, out, 10, "reordered")
				if !strings.Contains(out, "seq 20: reordered") {
					t.Fatalf("verify:\n%s\nwant seq 20 named too", out)
				}
			})
			t.Run("ForgeCheckpoint", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				forged := forgeCheckpoint(t, 500)
				f.exec(`INSERT INTO log_checkpoints (size, note, created_at) VALUES (500, ?, 0)`,
					`INSERT INTO log_checkpoints (size, note, created_at) VALUES (500, $1, now())`, forged)
				out := f.verify(1)
				if !strings.Contains(out, "FAIL latest checkpoint") && !strings.Contains(out, "(forged?)") {
					t.Fatalf("verify:\n%s\nwant the forged checkpoint refused", out)
				}
			})
			t.Run("RedactWithoutRecord", func(t *testing.T) {
				t.Parallel()
				f := newLogFixture(t, store, 120)
				redaction := `{"by":"mallory","at":"2026-01-01T00:00:00Z","record_id":"01900000-0000-7000-8000-000000000000"}`
				f.exec(`UPDATE audit_events SET actor = '', action = '', resource_type = '', resource_id = '', metadata = NULL, redaction = ? WHERE seq = 42`,
					`UPDATE audit_events SET actor = '', action = '', resource_type = '', resource_id = '', metadata = NULL, redaction = $1 WHERE id = (SELECT event_id FROM log_leaves WHERE seq = 42)`, redaction)
				expectFailure(t, f.verify(1), 42, "redacted without record")
			})
		})
	}
}

// forgeCheckpoint signs a checkpoint of size with a key of the log's name
// that is not the log's.
func forgeCheckpoint(t *testing.T, size uint64) string {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "chronicle.local/audit-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	root := make([]byte, 32)
	rand.Read(root)
	signed, err := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: "chronicle.local/audit-log", Size: size, Hash: root}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// A redaction keeps the log verifiable; receipts and proofs check out
// offline; a monitor saves only checkpoints consistent with the last.
func TestVerifyRedactionReceiptsMonitor(t *testing.T) {
	t.Parallel()
	f := newLogFixture(t, "sqlite", 50)
	state := filepath.Join(f.dir, "monitor.state")
	if out := f.cli(0, "monitor", "--state", state); !strings.Contains(out, "grew from 0 to 50") {
		t.Fatalf("monitor: %s", out)
	}

	// A receipt, kept by the producer, verifies with no service at all.
	victim := f.idAt(7)
	receipt := filepath.Join(f.dir, "receipt")
	f.cli(0, "prove", victim, "--receipt", receipt)
	out := runCLI(t, 0, "verify-receipt", "--key", f.key, "--event", receipt+".event.json", receipt)
	if !strings.Contains(out, "is seq 7 of the log") {
		t.Fatalf("verify-receipt: %s", out)
	}
	changed := strings.Replace(string(mustRead(t, receipt+".event.json")), "login", "logout", 1)
	os.WriteFile(receipt+".changed.json", []byte(changed), 0o600)
	runCLI(t, 1, "verify-receipt", "--key", f.key, "--event", receipt+".changed.json", receipt)

	// Redaction: the content goes, the proofs stay.
	out = runCLI(t, 0, "redact", "--url", f.p.url, victim, "--reason", "erasure request 17")
	if !strings.Contains(out, "redacted by") {
		t.Fatalf("redact: %s", out)
	}
	f.p.do("POST", "/events/"+victim+"/redact", `{}`).expect(t, 409, "redacted already")
	f.n++ // the redaction's record
	f.waitCheckpoint()
	out = f.verify(0)
	if !strings.Contains(out, "1 redacted") {
		t.Fatalf("verify after a redaction:\n%s", out)
	}
	f.cli(0, "prove", victim)

	// An export verifies offline; changed, it does not.
	export := filepath.Join(f.dir, "export.ndjson")
	os.WriteFile(export, f.p.do("GET", "/events/export", "").Body, 0o600)
	if out := runCLI(t, 0, "verify", "--key", f.key, "--checkpoint", f.saved, "--events", export, "--checkpoints", filepath.Join(f.dir, "checkpoints")); !strings.Contains(out, "OK") || strings.Contains(out, "roots: 1 of") {
		t.Fatalf("offline verify, with the checkpoint files: %s", out)
	}
	lines := strings.Split(string(mustRead(t, export)), "\n")
	lines[3] = strings.Replace(lines[3], "login", "logout", 1)
	os.WriteFile(export, []byte(strings.Join(lines, "\n")), 0o600)
	out = runCLI(t, 1, "verify", "--key", f.key, "--checkpoint", f.saved, "--events", export)
	if !strings.Contains(out, "FAIL: first bad seq 0 (rewritten)") || !strings.Contains(out, "seq 0 to 49") {
		t.Fatalf("offline verify of a changed export:\n%s", out)
	}

	// The monitor: growth is fine; a rollback is an alert, and the state
	// file keeps the last good checkpoint.
	f.post(10)
	if out := f.cli(0, "monitor", "--state", state); !strings.Contains(out, "grew from 50 to 61") {
		t.Fatalf("monitor: %s", out)
	}
	good := mustRead(t, state)
	f.exec("DELETE FROM audit_events WHERE seq >= 55;\nDELETE FROM log_leaves WHERE seq >= 55;\nDELETE FROM log_checkpoints WHERE size > 55", "")
	eventually(t, 10*time.Second, "a checkpoint of the truncated log", func() bool {
		return strings.Split(string(f.p.do("GET", "/log/checkpoint", "").Body), "\n")[1] == "55"
	})
	if out := f.cli(1, "monitor", "--state", state); !strings.Contains(out, "ALERT: rollback") {
		t.Fatalf("monitor after a rollback: %s", out)
	}
	if string(mustRead(t, state)) != string(good) {
		t.Fatal("the monitor saved a checkpoint that failed its checks")
	}
	// A key that is not the log's is refused before anything is trusted.
	other := forgeKey(t)
	runCLI(t, 1, "log", "checkpoint", "--url", f.p.url, "--key", other)
}

func forgeKey(t *testing.T) string {
	_, vkey, err := note.GenerateKey(rand.Reader, "chronicle.local/audit-log")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two consumer processes on PostgreSQL, and the integrator killed with
// SIGKILL in the middle of a flood: every stored event ends with one seq,
// with no gap, and the final checkpoint verifies.
func TestIntegratorKilledMidFloodRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	c.env["CHRONICLE_CHECKPOINT_INTERVAL"] = "200ms"
	key := filepath.Join(t.TempDir(), "log.key")
	c.env["CHRONICLE_SIGNING_KEY_FILE"] = key
	first := c.consumer("analytics")
	eventually(t, 10*time.Second, "an integrator", func() bool {
		return strings.Contains(first.stderr.String(), "this process integrates the log")
	})
	second := c.consumer("analytics")
	p := c.producer()
	waitConsumers(t, p, "chronicle.all", 2)
	fl := startFlood(p, 8, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	first.stop(syscall.SIGKILL, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	accepted, unavailable, _ := fl.halt()
	storedOnceInPG(t, c, accepted, unavailable)
	stored := pgtest.Count(t, c.db, `SELECT count(*) FROM audit_events`)
	eventually(t, 30*time.Second, "every stored event in the log", func() bool {
		return pgtest.Count(t, c.db, `SELECT count(*) FROM log_leaves`) == stored
	})
	if n := pgtest.Count(t, c.db, `SELECT count(DISTINCT seq) FROM log_leaves WHERE seq BETWEEN 0 AND $1 - 1`, stored); n != stored {
		t.Fatalf("%d stored events, %d distinct seqs from 0 to %d", stored, n, stored-1)
	}
	if n := pgtest.Count(t, c.db, `SELECT count(*) FROM audit_events a WHERE NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.event_id = a.id)`); n != 0 {
		t.Fatalf("%d stored events have no seq", n)
	}
	if !strings.Contains(second.stderr.String()+p.stderr.String(), "this process integrates the log") {
		t.Fatal("no process took over the integration")
	}
	t.Logf("integrator killed mid-flood: %d accepted, %d stored, seq 0 to %d gapless", len(accepted), stored, stored-1)
	vkey := strings.TrimSpace(string(p.do("GET", "/log/key", "").Body))
	eventually(t, 20*time.Second, "a checkpoint of every event", func() bool {
		return strings.Split(string(p.do("GET", "/log/checkpoint", "").Body), "\n")[1] == fmt.Sprint(stored)
	})
	saved := filepath.Join(t.TempDir(), "cp")
	runCLI(t, 0, "log", "checkpoint", "--url", p.url, "--key", vkey, "--save", saved)
	if out := runCLI(t, 0, "verify", "--url", p.url, "--key", vkey, "--checkpoint", saved); !strings.Contains(out, "OK: the log verifies") {
		t.Fatalf("verify: %s", out)
	}
}

// The signing key: generated on first start (mode 0600), refused when it
// is not what the log needs, replaced only when asked; every checkpoint
// also lands in CHRONICLE_CHECKPOINT_DIR.
func TestSigningKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "chronicle.db")
	keyFile := filepath.Join(dir, "log.key")
	cpDir := filepath.Join(dir, "checkpoints")
	env := map[string]string{"CHRONICLE_SQLITE_PATH": db, "CHRONICLE_SIGNING_KEY_FILE": keyFile,
		"CHRONICLE_CHECKPOINT_DIR": cpDir, "CHRONICLE_CHECKPOINT_INTERVAL": "100ms"}
	p := serve(t, env)
	if m := fileMode(t, keyFile); m.Perm() != 0o600 {
		t.Fatalf("generated key file mode %v", m)
	}
	first := strings.TrimSpace(string(p.do("GET", "/log/key", "").Body))
	if !strings.Contains(p.stderr.String(), first) {
		t.Fatal("the generated key's verifier key is not logged")
	}
	p.do("POST", "/events", `{"actor":"a","action":"b","resource_type":"c","resource_id":"d"}`).expect(t, 202, "accepted")
	eventually(t, 10*time.Second, "a checkpoint file of 1 event", func() bool {
		_, err := os.Stat(filepath.Join(cpDir, fmt.Sprintf("%020d.checkpoint", 1)))
		return err == nil
	})
	p.stop(syscall.SIGTERM, 20*time.Second)

	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, mustRead(t, keyFile), 0o644)
	other := filepath.Join(dir, "other.key")
	runCLIEnv(t, map[string]string{"CHRONICLE_STORE": "memory", "CHRONICLE_SIGNING_KEY_FILE": other}) // makes a key of the same name
	for _, c := range []struct {
		key, want string
		extra     []string
	}{
		{garbage, "not a signing key", nil},
		{open, "chmod 600", nil},
		{dir, "is a directory", nil},
		{keyFile, `is for the log "chronicle.local/audit-log", not "example.com/other"`, []string{"CHRONICLE_LOG_ORIGIN", "example.com/other"}},
		{other, "the log is signed with another key", nil},
	} {
		e := map[string]string{"CHRONICLE_SQLITE_PATH": db, "CHRONICLE_SIGNING_KEY_FILE": c.key, "CHRONICLE_PORT": fmt.Sprint(freePort(t))}
		for i := 0; i < len(c.extra); i += 2 {
			e[c.extra[i]] = c.extra[i+1]
		}
		q := run(t, e, "serve")
		if code := q.wait(15 * time.Second); code == 0 || !strings.Contains(q.stderr.String(), c.want) {
			t.Errorf("key %s: exit %d, stderr:\n%s\nwant it to say %q", c.key, code, q.stderr.String(), c.want)
		}
	}
	// Rotation, asked for: the new key signs from now on.
	env["CHRONICLE_SIGNING_KEY_FILE"], env["CHRONICLE_SIGNING_KEY_ROTATE"] = other, "true"
	q := serve(t, env)
	if now := strings.TrimSpace(string(q.do("GET", "/log/key", "").Body)); now == first {
		t.Fatal("the key did not rotate")
	}
}

// runCLIEnv starts a memory-store service with env just long enough for it
// to make its key, then stops it.
func runCLIEnv(t *testing.T, env map[string]string) {
	t.Helper()
	env["CHRONICLE_PORT"] = fmt.Sprint(freePort(t))
	env["CHRONICLE_LISTEN_HOST"] = "127.0.0.1"
	p := run(t, env, "serve")
	p.waitHealthy(20 * time.Second)
	p.stop(syscall.SIGTERM, 20*time.Second)
}
