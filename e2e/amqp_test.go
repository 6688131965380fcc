package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
)

// The AMQP ingestion contract, against the real binary: applications that
// speak AMQP publish events straight to the exchange, with producers that
// are not Chronicle's code (the RabbitMQ management API, Debian's
// amqp-publish), and Chronicle's consumers run them through the pipeline
// POST /events runs.

type deadLetter struct {
	ID         string `json:"id"`
	Reason     string `json:"reason"`
	RoutingKey string `json:"routing_key"`
	Count      int    `json:"count"`
}

func (p *proc) deadLetters(t *testing.T, queue string) []deadLetter {
	t.Helper()
	var out []deadLetter
	p.do("GET", "/dlq/"+queue+"?limit=100", "").json(t, &out)
	return out
}

// httpReason is what POST /events says of body: the reason of a 422, the
// error of a 400.
func (p *proc) httpReason(t *testing.T, body string) string {
	t.Helper()
	r := p.do("POST", "/events", body)
	var a struct{ Error, Reason string }
	r.json(t, &a)
	if r.Status != 400 && r.Status != 422 {
		t.Fatalf("POST /events %s: %d %s", body, r.Status, r.Body)
	}
	if a.Reason != "" {
		return a.Reason
	}
	return a.Error
}

// tool finds a program the tests drive, which scripts/test.sh installs
// (Debian package pkg). With CI=true a missing one fails the test.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/test.sh installs Debian's %s package)", name, pkg)
		}
		t.Skipf("%s is not installed (scripts/test.sh installs Debian's %s package)", name, pkg)
	}
	return path
}

// The main story, on RabbitMQ and PostgreSQL: events published through the
// management API are stored once, with the message_id as id, the AMQP
// timestamp (else the consumer's clock) as time, the routing key as
// event_type; a message without message_id, and invalid events, are
// dead-lettered with the reason HTTP gives; a replay never turns a
// dead letter's made-up id into an event.
func TestAMQPManagementPublishRabbitPostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	p := serve(t, c.with()) // full: the API and a consumer of every route
	publish := func(key string, props map[string]any, body string) {
		t.Helper()
		props["content_type"], props["delivery_mode"] = "application/json", 2
		if !rabbitmqtest.Publish(t, c.vhost, "audit_events", key, props, []byte(body)) {
			t.Fatalf("the broker routed %s nowhere", key)
		}
	}

	stamped, clockless := uuid.NewString(), uuid.NewString()
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	occurred := at.Add(-30 * time.Second)
	publish("security.login", map[string]any{"message_id": stamped, "timestamp": at.Unix()},
		`{"actor":" Alice@Example.com ","action":"login","resource_type":"auth","resource_id":"s-1","occurred_at":"`+occurred.Format(time.RFC3339)+`","metadata":{"ip":"192.0.2.7"}}`)
	before := time.Now().Truncate(time.Microsecond)
	publish("billing.charge", map[string]any{"message_id": clockless},
		`{"actor":"bob@example.com","action":"charge","resource_type":"billing","resource_id":"inv-1","correlation_id":"order-17"}`)
	valid := `{"actor":"carol@example.com","action":"login","resource_type":"auth","resource_id":"s-2"}`
	publish("security.login", map[string]any{}, valid) // no message_id

	// Invalid events, each dead-lettered with what HTTP says of its body.
	invalid := []struct{ class, body string }{
		{"parse error", `{"actor":`},
		{"missing field", `{"action":"login","resource_type":"auth","resource_id":"s-3"}`},
		{"invalid field", `{"actor":"  ","action":"login","resource_type":"auth","resource_id":"s-3"}`},
		{"invalid text", "{\"actor\":\"\xff\xfe\",\"action\":\"login\",\"resource_type\":\"auth\",\"resource_id\":\"s-3\"}"},
		{"invalid field", `{"actor":"dave@example.com","action":"login","resource_type":"auth","resource_id":"s-3","occurred_at":"` + time.Now().Add(-40*24*time.Hour).Format(time.RFC3339) + `"}`},
	}
	want := map[string]string{} // dead letter id -> reason
	for _, inv := range invalid {
		id := uuid.NewString()
		publish("security.login", map[string]any{"message_id": id}, inv.body)
		reason := p.httpReason(t, inv.body)
		if inv.class == "missing field" {
			reason = strings.TrimPrefix(reason, "missing required field ")
		}
		want[id] = inv.class + ": " + reason
	}
	publish("security.login", map[string]any{"message_id": "order-17"}, valid)
	want["order-17"] = `invalid message_id: AMQP message_id "order-17" is not a UUID: it is the event's id`

	// Stored once, both routes' paths in its history.
	var got struct {
		event
		OccurredAt string          `json:"occurred_at"`
		History    []chronicle.Hop `json:"history"`
	}
	eventually(t, 30*time.Second, "the stamped event stored by both routes", func() bool {
		r := p.do("GET", "/events/"+stamped+"?include=history", "")
		if r.Status != 200 {
			return false
		}
		r.json(t, &got)
		return strings.Count(string(r.Body), `"hop":"stored"`) == 2
	})
	after := time.Now()
	if got.ID != stamped || got.Timestamp != at.UTC().Format(chronicle.TimestampLayout) || got.EventType != "security.login" ||
		got.Actor != "alice@example.com" || got.CorrelationID != stamped || got.OccurredAt != occurred.UTC().Format(chronicle.TimestampLayout) ||
		got.Metadata["ip"] != "192.0.2.7" {
		t.Fatalf("stored %+v", got)
	}
	var story []string
	for _, h := range got.History {
		story = append(story, h.Hop+" "+h.Queue)
		if h.Hop == chronicle.HopAccepted && (h.Clock != chronicle.ClockAMQP || !h.At.Equal(at) || h.Process != p.processName(t)) {
			t.Errorf("accepted hop = %+v", h)
		}
	}
	t.Logf("history of %s: %v", stamped, story)
	if strings.Join(story, ",") != "accepted ,consumed chronicle.all,stored chronicle.all,consumed chronicle.security,stored chronicle.security" &&
		strings.Join(story, ",") != "accepted ,consumed chronicle.security,stored chronicle.security,consumed chronicle.all,stored chronicle.all" {
		t.Fatalf("history = %v", story)
	}

	// Without a timestamp: the clock of the consumer that stored it.
	eventually(t, 30*time.Second, "the clockless event stored", func() bool {
		r := p.do("GET", "/events/"+clockless+"?include=history", "")
		if r.Status == 200 {
			r.json(t, &got)
		}
		return r.Status == 200 && strings.Count(string(r.Body), `"hop":"stored"`) == 2
	})
	ts, err := time.Parse(time.RFC3339Nano, got.Timestamp)
	if err != nil || ts.Before(before) || ts.After(time.Now()) || got.EventType != "billing.charge" || got.CorrelationID != "order-17" {
		t.Fatalf("clockless event %+v (published after %s, read before %s)", got.event, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
	}
	clocked := false
	for _, h := range got.History {
		if h.Hop == chronicle.HopAccepted {
			clocked = clocked || h.Clock == chronicle.ClockConsumer && h.At.Equal(ts)
		}
	}
	if !clocked {
		t.Fatalf("no accepted hop says the consumer's clock set %s: %+v", got.Timestamp, got.History)
	}

	// The dead letters, on both routes, each with its reason.
	var madeUp string
	for _, q := range []string{"chronicle.all.dlq", "chronicle.security.dlq"} {
		var dl []deadLetter
		eventually(t, 30*time.Second, "7 dead letters in "+q, func() bool { dl = p.deadLetters(t, q); return len(dl) == 7 })
		for _, d := range dl {
			switch reason, ok := want[d.ID]; {
			case ok && !strings.HasPrefix(d.Reason, reason):
				t.Errorf("%s: %s dead-lettered for %q, want %q", q, d.ID, d.Reason, reason)
			case !ok && !strings.HasPrefix(d.Reason, "missing message_id: AMQP message_id is required: it is the event's id"):
				t.Errorf("%s: %s dead-lettered for %q", q, d.ID, d.Reason)
			case !ok && q == "chronicle.all.dlq":
				madeUp = d.ID
			}
			if d.RoutingKey != "security.login" {
				t.Errorf("%s: %+v", q, d)
			}
		}
	}
	// Replayed, the message without message_id dies again: the id its
	// dead letter was given is no event's.
	p.do("POST", "/dlq/chronicle.all.dlq/replay", `{"ids":["`+madeUp+`"]}`).expect(t, 200, `"replayed":1`)
	eventually(t, 30*time.Second, "the replayed message dead again", func() bool {
		for _, d := range p.deadLetters(t, "chronicle.all.dlq") {
			if d.ID == madeUp {
				return d.Count == 2
			}
		}
		return false
	})
	events := p.allEvents("")
	if len(events) != 2 {
		t.Fatalf("%d events stored, want 2: %+v", len(events), events)
	}
	eventually(t, 10*time.Second, "the dead-letter counters", func() bool {
		return metric(t, p, `chronicle_events_dead_lettered_total{queue="chronicle.all",reason="missing_message_id"}`) == 2 &&
			metric(t, p, `chronicle_events_dead_lettered_total{queue="chronicle.security",reason="invalid_message_id"}`) == 1
	})
}

// Debian's amqp-publish cannot set message_id: its events are
// dead-lettered on every route they reach, saying so, and none is stored.
func TestAMQPPublishToolRabbit(t *testing.T) {
	t.Parallel()
	amqpPublish := tool(t, "amqp-publish", "amqp-tools")
	c := newCluster(t)
	p := serve(t, c.with())
	out, err := exec.Command(amqpPublish, "--url", c.url, "-e", "audit_events", "-r", "security.login", "-p", "-C", "application/json",
		"-b", `{"actor":"alice@example.com","action":"login","resource_type":"security","resource_id":"session-123"}`).CombinedOutput()
	if err != nil {
		t.Fatalf("amqp-publish: %v\n%s", err, out)
	}
	const reason = "missing message_id: AMQP message_id is required: it is the event's id"
	for _, q := range []string{"chronicle.all.dlq", "chronicle.security.dlq"} {
		var dl []deadLetter
		eventually(t, 30*time.Second, "the message in "+q, func() bool { dl = p.deadLetters(t, q); return len(dl) == 1 })
		if !strings.HasPrefix(dl[0].Reason, reason) || dl[0].RoutingKey != "security.login" {
			t.Fatalf("%s: %+v", q, dl[0])
		}
	}
	r := p.do("GET", "/events/count", "")
	var n struct{ Count int }
	r.json(t, &n)
	if n.Count != 0 {
		t.Fatalf("%d events stored from a message without message_id", n.Count)
	}
	// The operator sees why with the CLI.
	peek := run(t, map[string]string{"CHRONICLE_URL": p.url}, "dlq", "peek", "chronicle.all.dlq")
	if code := peek.wait(30 * time.Second); code != 0 || !strings.Contains(peek.stdout.String(), "reason:  "+reason) {
		t.Fatalf("chronicle dlq peek: exit %d\n%s%s", code, peek.stdout, peek.stderr)
	}
}
