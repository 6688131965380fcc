package cli

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/loadgen"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// findStored waits for the event with id to be stored and returns it.
func (s *liveService) findStored(t *testing.T, id string, total int) storedEvent {
	t.Helper()
	for _, e := range s.waitStored(t, total) {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("event %s not stored", id)
	return storedEvent{}
}

func TestPost(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)

	r := execCLI(t, s.vars(), "post").expect(t, ExitOK)
	id := strings.TrimSpace(r.stdout)
	if !uuidRE.MatchString(id) {
		t.Fatalf("post printed %q, want the accepted id", r.stdout)
	}
	e := s.findStored(t, id, 1)
	if e.Actor != "alice@example.com" || e.Action != "login" || e.ResourceType != "security" || e.ResourceID != "session-123" || e.EventType != "security.login" {
		t.Errorf("stored %+v, want post's basic event", e)
	}

	r = execCLI(t, s.vars(), "post", "--json", "--actor", "Bob@Example.com", "--action", "update",
		"--resource-type", "document", "--resource-id", "", "--event-type", "project.renamed",
		"--entity-key", "org:acme", "--metadata", "ip=10.0.0.1", "--metadata", "note=a=b").expect(t, ExitOK)
	var acc struct {
		Status string         `json:"status"`
		ID     string         `json:"id"`
		Event  api.EventInput `json:"event"`
	}
	r.decode(t, &acc)
	if acc.Status != "accepted" || !uuidRE.MatchString(acc.ID) || acc.Event.Actor != "Bob@Example.com" {
		t.Errorf("post --json printed %+v", acc)
	}
	e = s.findStored(t, acc.ID, 2)
	if e.Actor != "bob@example.com" || e.Action != "update" || e.ResourceType != "document" || e.ResourceID != "" ||
		e.EventType != "project.renamed" || e.EntityKey != "org:acme" {
		t.Errorf("stored %+v, want the flags' fields", e)
	}
	if e.Metadata["ip"] != "10.0.0.1" || e.Metadata["note"] != "a=b" || len(e.Metadata) != 2 {
		t.Errorf("stored metadata %v, want ip and note", e.Metadata)
	}

	t.Run("ErrValidation", func(t *testing.T) {
		r := execCLI(t, s.vars(), "post", "--actor", " ").expect(t, ExitFailure)
		if !strings.Contains(r.stderr, "422") || !strings.Contains(r.stderr, "actor is required") || r.stdout != "" {
			t.Errorf("stdout %q, stderr %q: want the service's 422 reason on stderr only", r.stdout, r.stderr)
		}
	})
	t.Run("ErrBadFlags", func(t *testing.T) {
		for _, args := range [][]string{
			{"post", "--metadata", "novalue"},
			{"post", "--metadata", "=v"},
			{"post", "--nope"},
			{"post", "extra"},
		} {
			execCLI(t, s.vars(), args...).expect(t, ExitUsage)
		}
	})
}

func TestIngest(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)

	type ingested struct {
		ID    string         `json:"id"`
		Event api.EventInput `json:"event"`
	}
	var a, b ingested
	execCLI(t, s.vars(), "ingest", "--seed", "42", "--json").expect(t, ExitOK).decode(t, &a)
	execCLI(t, s.vars(), "ingest", "--json", "--seed", "42").expect(t, ExitOK).decode(t, &b)
	if a.ID == b.ID || a.Event.Actor == "" || a.Event.ResourceID == "" {
		t.Errorf("ingest --json printed %+v and %+v", a, b)
	}
	if want := loadgen.RandomEvent(loadgen.NewRand(42)); !reflect.DeepEqual(a.Event, want) || !reflect.DeepEqual(b.Event, want) {
		t.Errorf("--seed 42 gave %+v and %+v, want loadgen's %+v", a.Event, b.Event, want)
	}

	r := execCLI(t, s.vars(), "ingest").expect(t, ExitOK)
	fields := strings.Fields(r.stdout)
	if len(fields) != 4 || !uuidRE.MatchString(fields[0]) {
		t.Fatalf("ingest printed %q, want: id actor action type/id", r.stdout)
	}
	e := s.findStored(t, fields[0], 3)
	if e.Actor != fields[1] || e.Action != fields[2] || e.ResourceType+"/"+e.ResourceID != fields[3] {
		t.Errorf("stored %+v, printed %q", e, r.stdout)
	}

	execCLI(t, s.vars(), "ingest", "--seed", "x").expect(t, ExitUsage)
	execCLI(t, s.vars(), "ingest", "again").expect(t, ExitUsage)
}

func TestSend(t *testing.T) {
	t.Parallel()
	s := startLiveService(t)

	for i, tc := range []struct {
		args                     []string
		eventType, actor, action string
	}{
		{[]string{"send", "--type", "security"}, "security.login", "alice@example.com", "login"},
		{[]string{"send", "--type", "user"}, "user.created", "admin@example.com", "create"},
		{[]string{"send", "billing"}, "billing.charge", "billing@example.com", "charge"},
		{[]string{"send", "--type", "Project.Archived"}, "project.archived", "alice@example.com", "archived"},
		{[]string{"send", "security", "--actor", "carol@example.com"}, "security.login", "carol@example.com", "login"},
	} {
		r := execCLI(t, s.vars(), tc.args...).expect(t, ExitOK)
		e := s.findStored(t, strings.TrimSpace(r.stdout), i+1)
		if e.EventType != tc.eventType || e.Actor != tc.actor || e.Action != tc.action {
			t.Errorf("%v stored %+v, want %s by %s", tc.args, e, tc.eventType, tc.actor)
		}
	}

	t.Run("ErrBadArgs", func(t *testing.T) {
		for _, args := range [][]string{
			{"send"},
			{"send", "--type", "bad type"},
			{"send", "--type", "a..b"},
			{"send", "--type", "user", "billing"},
			{"send", "user", "billing"},
		} {
			execCLI(t, s.vars(), args...).expect(t, ExitUsage)
		}
	})
}
