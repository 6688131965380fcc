package postgres_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/postgres"
)

// loadEvents fills audit_events with n rows: 40 actors, six actions, four
// resource types with 48 resources (one in 48 has an empty resource_id),
// 24 event types, correlation ids shared by three events, an entity on one
// event in ten, metadata on one in four, microsecond timestamps in
// insertion order.
const loadEvents = `INSERT INTO audit_events (id, actor, action, resource_type, resource_id, timestamp, event_type, correlation_id, entity_key, metadata, occurred_at)
SELECT gen_random_uuid(), actor, action, resource_type, resource_id, ts, resource_type || '.' || action, correlation_id, entity_key, metadata,
       CASE WHEN g % 2 = 0 THEN ts - (g % 600) * interval '1 second' END
FROM (
    SELECT 'user' || (g % 40) || '@example.com' AS actor,
           (ARRAY['login','logout','created','updated','deleted','charge'])[1 + (g / 5) % 6] AS action,
           (ARRAY['security','user','billing','document'])[1 + g % 4] AS resource_type,
           CASE WHEN g % 48 = 0 THEN '' ELSE 'res-' || (g % 48) END AS resource_id,
           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' + (g % 997) * interval '1 microsecond' AS ts,
           'corr-' || (g / 3) AS correlation_id,
           CASE WHEN g % 10 = 0 THEN 'org:' || (g % 20) END AS entity_key,
           CASE WHEN g % 4 = 0 THEN jsonb_build_object('ip', '10.0.0.' || (g % 250)) END AS metadata,
           g
    FROM generate_series(1, $1::int) AS g
) AS rows`

// TestListingPlans checks, on 50k rows, that every filter of GET /events
// (alone, with a time range, and continuing below a position) is served
// by an index scan in (timestamp, id) order that stops at the LIMIT, with
// the filter and the position as index conditions: no Sort, no Seq Scan,
// no bitmap scan. It EXPLAINs exactly the query Events runs, with its
// values (Events plans every listing for its values: see eventsQuery).
//
// The values filtered on match hundreds of rows or more, where a sort
// would mean reading every match; for a value that matches fewer rows
// than the page, the planner may rightly read them all and sort them.
// A filter that matches a large share of the table (one action in six,
// one resource type in four) may be served by walking the timestamp index
// and filtering: that too stops after about LIMIT/share rows.
func TestListingPlans(t *testing.T) {
	t.Parallel()
	s, name := open(t)
	ctx := t.Context()
	conn := dbConn(t, name)
	const rows = 50_000
	if _, err := conn.Exec(ctx, loadEvents, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE audit_events`); err != nil {
		t.Fatal(err)
	}
	mid := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(rows / 2 * time.Second)
	after := &chronicle.Position{Timestamp: mid, ID: "80000000-0000-7000-8000-000000000000"}
	res7, empty := "res-7", ""
	const byTime = "idx_audit_events_timestamp"
	tests := []struct {
		name    string
		f       chronicle.EventFilter
		indexes []string // acceptable indexes, best first
	}{
		{"All", chronicle.EventFilter{}, []string{byTime}},
		{"Actor", chronicle.EventFilter{Actor: "user7@example.com"}, []string{"idx_audit_events_actor"}},
		{"Action", chronicle.EventFilter{Action: "charge"}, []string{"idx_audit_events_action", byTime}},
		{"EventType", chronicle.EventFilter{EventType: "billing.charge"}, []string{"idx_audit_events_event_type"}},
		{"ResourceType", chronicle.EventFilter{ResourceType: "billing"}, []string{"idx_audit_events_resource", byTime}},
		{"ResourceID", chronicle.EventFilter{ResourceID: &res7}, []string{"idx_audit_events_resource_id"}},
		{"ResourceIDEmpty", chronicle.EventFilter{ResourceID: &empty}, []string{"idx_audit_events_resource_id"}},
		{"ResourceTypeAndID", chronicle.EventFilter{ResourceType: "document", ResourceID: &res7}, []string{"idx_audit_events_resource"}},
		{"CorrelationID", chronicle.EventFilter{CorrelationID: "corr-1000"}, []string{"idx_audit_events_correlation_id"}},
		{"EntityKey", chronicle.EventFilter{EntityKey: "org:10"}, []string{"idx_audit_events_entity_key"}},
		{"SinceUntil", chronicle.EventFilter{Since: mid.Add(-time.Hour), Until: mid.Add(time.Hour)}, []string{byTime}},
		{"ActorSince", chronicle.EventFilter{Actor: "user7@example.com", Since: mid.Add(-24 * time.Hour)}, []string{"idx_audit_events_actor"}},
	}
	for _, tt := range tests {
		for _, cont := range []bool{false, true} {
			f := tt.f
			f.Limit = chronicle.DefaultLimit
			label := tt.name
			if cont {
				f.After = after
				label += "/After"
			}
			q, args, err := postgres.EventsQuery(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Events(ctx, f)
			if err != nil {
				t.Fatalf("%s: Events: %v", label, err)
			}
			if tt.name != "CorrelationID" && len(got) != f.Limit {
				t.Errorf("%s: %d events, want a full page: the test data no longer fits the test", label, len(got))
			}
			var plan []byte
			if err := conn.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q, args...).Scan(&plan); err != nil {
				t.Fatalf("%s: explain: %v\n%s", label, err, q)
			}
			checkPlan(t, label, plan, tt.indexes, f)
		}
	}
}

type planNode struct {
	NodeType  string     `json:"Node Type"`
	Parent    string     `json:"Parent Relationship"`
	IndexName string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Filter    string     `json:"Filter"`
	Plans     []planNode `json:"Plans"`
}

func checkPlan(t *testing.T, label string, raw []byte, indexes []string, f chronicle.EventFilter) {
	t.Helper()
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("%s: plan %s: %v", label, raw, err)
	}
	var scan *planNode
	var walk func(n *planNode, depth int)
	walk = func(n *planNode, depth int) {
		if depth > 20 {
			return
		}
		if n.Parent == "SubPlan" {
			// Each row's seq: a primary-key lookup in log_leaves.
			if n.IndexName != "log_leaves_event_id_key" {
				t.Errorf("%s: the seq of an event is read with %s %s:\n%s", label, n.NodeType, n.IndexName, raw)
			}
			return
		}
		switch n.NodeType {
		case "Seq Scan", "Sort", "Incremental Sort", "Bitmap Heap Scan", "Bitmap Index Scan":
			t.Errorf("%s: the plan has a %s:\n%s", label, n.NodeType, raw)
		case "Index Scan", "Index Only Scan":
			scan = n
		}
		for i := range n.Plans {
			walk(&n.Plans[i], depth+1)
		}
	}
	root := &plans[0].Plan
	walk(root, 0)
	if root.NodeType != "Limit" {
		t.Errorf("%s: the plan does not stop at a LIMIT:\n%s", label, raw)
	}
	if scan == nil {
		t.Errorf("%s: no index scan:\n%s", label, raw)
		return
	}
	if !slices.Contains(indexes, scan.IndexName) {
		t.Errorf("%s: scans %s, want %s:\n%s", label, scan.IndexName, strings.Join(indexes, " or "), raw)
	} else if scan.IndexName != indexes[0] {
		t.Logf("%s: scans %s rather than %s", label, scan.IndexName, indexes[0])
	}
	if f.After != nil && !strings.Contains(scan.IndexCond, "ROW(") {
		t.Errorf("%s: the position is not an index condition:\n%s", label, raw)
	}
	if !f.Since.IsZero() && !strings.Contains(scan.IndexCond, ">=") {
		t.Errorf("%s: since is not an index condition:\n%s", label, raw)
	}
}

// TestOccurredAtPlan: a range of occurred_at (events ordered, as always,
// by the time they were received) is served by an index, the occurred_at
// index or the listing order's, never by reading the table; the planner
// picks by its estimates.
func TestOccurredAtPlan(t *testing.T) {
	t.Parallel()
	s, name := open(t)
	ctx := t.Context()
	conn := dbConn(t, name)
	const rows = 50_000
	if _, err := conn.Exec(ctx, loadEvents, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE audit_events`); err != nil {
		t.Fatal(err)
	}
	mid := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(rows / 2 * time.Second)
	f := chronicle.EventFilter{OccurredSince: mid.Add(-time.Hour), OccurredUntil: mid, Limit: chronicle.DefaultLimit}
	got, err := s.Events(ctx, f)
	if err != nil || len(got) != f.Limit {
		t.Fatalf("Events = %d, %v", len(got), err)
	}
	for _, e := range got {
		if e.OccurredAt.Before(f.OccurredSince) || !e.OccurredAt.Before(f.OccurredUntil) {
			t.Fatalf("event occurred at %v, outside the range", e.OccurredAt)
		}
	}
	q, args, err := postgres.EventsQuery(f)
	if err != nil {
		t.Fatal(err)
	}
	var plan []byte
	if err := conn.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+q, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plan), "Seq Scan") || !strings.Contains(string(plan), "Index") {
		t.Fatalf("occurred_at range not served by an index:\n%s", plan)
	}
}
