package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
)

func TestQueuesInProcess(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	r := execCLI(t, s.vars(), "queues").expect(t, ExitOK)
	for _, want := range []string{"chronicle.all ", "chronicle.all.dlq", "chronicle.unrouted", "in-process transport"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("queues output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = execCLI(t, s.vars(), "queues", "--json").expect(t, ExitOK)
	var qs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &qs); err != nil || len(qs) != 9 {
		t.Fatalf("queues --json = %s (%v)", r.stdout, err)
	}
	s.stop(t)
	execCLI(t, s.vars(), "queues").expect(t, ExitFailure)
}

func TestQueuesAndExchangesRabbitMQ(t *testing.T) {
	t.Parallel()
	u, _ := rabbitmqtest.Vhost(t)
	vars := map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "RABBITMQ_URL": u}
	// Nothing declared yet: the commands say so.
	r := execCLI(t, vars, "queues").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "(not declared)") {
		t.Fatalf("queues on an empty vhost:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "exchanges").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "audit_events") || !strings.Contains(r.stdout, "no (declared when Chronicle starts)") {
		t.Fatalf("exchanges on an empty vhost:\n%s", r.stdout)
	}
	execCLI(t, map[string]string{}, "exchanges").expect(t, ExitUsage)
	bad := map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "RABBITMQ_URL": strings.Replace(u, "guest:guest", "guest:nope", 1)}
	if r := execCLI(t, bad, "queues").expect(t, ExitFailure); strings.Contains(r.stderr, "nope") {
		t.Fatalf("the password leaked: %s", r.stderr)
	}
}

func TestDLQCommand(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)
	vars := s.vars()
	execCLI(t, vars, "dlq").expect(t, ExitUsage)
	execCLI(t, vars, "dlq", "peek").expect(t, ExitUsage)
	r := execCLI(t, vars, "dlq", "list").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "chronicle.security.dlq") {
		t.Fatalf("dlq list:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "dlq", "peek", "chronicle.all.dlq").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "is empty") {
		t.Fatalf("dlq peek:\n%s", r.stdout)
	}
	execCLI(t, vars, "dlq", "peek", "chronicle.nope").expect(t, ExitFailure)
	execCLI(t, vars, "dlq", "purge", "chronicle.all.dlq", "--all").expect(t, ExitUsage)
	r = execCLI(t, vars, "dlq", "purge", "chronicle.all.dlq", "--all", "--yes", "--json").expect(t, ExitOK)
	if strings.TrimSpace(r.stdout) != `{"purged":0}` && !strings.Contains(r.stdout, `"purged": 0`) {
		t.Fatalf("purge --json: %s", r.stdout)
	}
	r = execCLI(t, vars, "dlq", "replay", "chronicle.all.dlq", "-n", "5").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "replayed 0") {
		t.Fatalf("replay: %s", r.stdout)
	}
}

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "m.db")}
	r := execCLI(t, vars, "migrate", "status").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "00001_create_audit_events.sql") || !strings.Contains(r.stdout, "pending") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "migrate", "up").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "applied 00001_create_audit_events.sql") {
		t.Fatalf("up:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "migrate").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("second up:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "migrate", "down").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "rolled back") {
		t.Fatalf("down:\n%s", r.stdout)
	}
	r = execCLI(t, vars, "migrate", "status", "--json").expect(t, ExitOK)
	var st []struct{ Applied bool }
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st[0].Applied || st[len(st)-1].Applied {
		t.Fatalf("status --json after down: %s", r.stdout)
	}
	execCLI(t, vars, "migrate", "sideways").expect(t, ExitUsage)
	execCLI(t, map[string]string{"CHRONICLE_STORE": "memory"}, "migrate").expect(t, ExitUsage)
}
