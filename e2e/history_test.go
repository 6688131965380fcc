package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// processName is how a process names itself in hops: host:pid.
func (p *proc) processName(t *testing.T) string {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%d", host, p.cmd.Process.Pid)
}

type historyAnswer struct {
	ID         string          `json:"id"`
	OccurredAt string          `json:"occurred_at"`
	History    []chronicle.Hop `json:"history"`
}

// Message History across processes on RabbitMQ: two producers and two
// consumer processes (security and analytics roles). Each event names the
// producer that accepted it, the exchange and both queues it was routed
// to, and, per route, the consumer process that consumed and stored it.
func TestHistoryAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	security := c.consumer("security", "CHRONICLE_CONSUMER_COUNT", "1")
	analytics := c.consumer("analytics")
	p1, p2 := c.producer(), c.producer()
	waitConsumers(t, p1, "chronicle.security", 1)
	waitConsumers(t, p1, "chronicle.all", 1)
	occurred := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	body := `{"actor":"alice@example.com","action":"login","resource_type":"auth","resource_id":"s-1","event_type":"security.login","occurred_at":"` + occurred.Format(time.RFC3339Nano) + `"}`
	for _, producer := range []*proc{p1, p2} {
		var a struct{ ID string }
		producer.do("POST", "/events", body).json(t, &a)
		var got historyAnswer
		eventually(t, 20*time.Second, "both routes' paths stored", func() bool {
			r, err := producer.try("GET", "/events/"+a.ID+"?include=history", "")
			if err != nil || r.Status != 200 {
				return false
			}
			r.json(t, &got)
			n := 0
			for _, h := range got.History {
				if h.Hop == chronicle.HopStored {
					n++
				}
			}
			return n == 2
		})
		if got.OccurredAt != occurred.Format(chronicle.TimestampLayout) {
			t.Errorf("occurred_at = %q, want %s", got.OccurredAt, occurred.Format(chronicle.TimestampLayout))
		}
		want := map[string]string{"chronicle.security": security.processName(t), "chronicle.all": analytics.processName(t)}
		var story []string
		for _, h := range got.History {
			story = append(story, h.Hop+" "+h.Queue)
			switch h.Hop {
			case chronicle.HopAccepted:
				if h.Process != producer.processName(t) {
					t.Errorf("accepted by %q, want the producer %q", h.Process, producer.processName(t))
				}
			case chronicle.HopPublished:
				if h.Transport != "rabbitmq" || h.Exchange != "audit_events" || len(h.Queues) != 2 {
					t.Errorf("published hop = %+v", h)
				}
			case chronicle.HopConsumed, chronicle.HopStored:
				if h.Process != want[h.Queue] {
					t.Errorf("%s from %s by %q, want %q", h.Hop, h.Queue, h.Process, want[h.Queue])
				}
			}
		}
		t.Logf("event %s: %v", a.ID, story)
		if len(got.History) != 6 {
			t.Fatalf("history of %s = %v", a.ID, story)
		}
	}
}
