// Package storetest is the behaviour suite every chronicle.Store passes:
// memory, SQLite and PostgreSQL run the same tests, so they behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
)

// Open returns a new, empty store for one test. It registers its own
// cleanup with t.
type Open func(t *testing.T) chronicle.Store

// Exercise runs the whole suite against the stores open returns. Each
// subtest gets its own store and runs in parallel.
func Exercise(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, chronicle.Store)
	}{
		{"StoreAndGet", testStoreAndGet},
		{"StoreIdempotent", testStoreIdempotent},
		{"EventNotFound", testEventNotFound},
		{"OrderNewestFirst", testOrderNewestFirst},
		{"Filters", testFilters},
		{"SinceUntil", testSinceUntil},
		{"KeysetPagination", testKeysetPagination},
		{"ConcurrentWrites", testConcurrentWrites},
		{"ReturnsCopies", testReturnsCopies},
		{"Entities", testEntities},
		{"EntityNotFound", testEntityNotFound},
		{"Ping", testPing},
		{"IdempotencyKeys", testIdempotency},
		{"OccurredAt", testOccurredAt},
		{"HistoryPerRoute", testHistory},
		{"LogSequence", testLogSequence},
		{"LogTree", testLogTree},
		{"LogCheckpoints", testLogCheckpoints},
		{"LogKeys", testLogKeys},
		{"LogRedact", testLogRedact},
		{"LogMatching", testLogMatching},
		{"LogMatchingWindow", testLogMatchingWindow},
		{"SinkCursors", testSinkCursors},
		{"SinkReplay", testSinkReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// NewEvent returns a valid, normalised event at base + offset.
func NewEvent(offset time.Duration, mutate ...func(*chronicle.Event)) *chronicle.Event {
	ts := base.Add(offset)
	id := uuid.Must(uuid.NewV7())
	e := &chronicle.Event{
		ID:            id.String(),
		Actor:         "alice@example.com",
		Action:        "login",
		ResourceType:  "security",
		ResourceID:    "session-1",
		Timestamp:     ts,
		EventType:     "security.login",
		CorrelationID: uuid.NewString(),
	}
	for _, m := range mutate {
		m(e)
	}
	return e
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustStore(t *testing.T, s chronicle.Store, events ...*chronicle.Event) {
	t.Helper()
	if err := s.StoreEvents(ctx(t), events); err != nil {
		t.Fatalf("StoreEvents: %v", err)
	}
}

func list(t *testing.T, s chronicle.Store, f chronicle.EventFilter) []*chronicle.Event {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = chronicle.MaxLimit
	}
	got, err := s.Events(ctx(t), f)
	if err != nil {
		t.Fatalf("Events(%+v): %v", f, err)
	}
	return got
}

func ids(events []*chronicle.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func equalEvent(a, b *chronicle.Event) bool {
	return a.ID == b.ID && a.Actor == b.Actor && a.Action == b.Action &&
		a.ResourceType == b.ResourceType && a.ResourceID == b.ResourceID &&
		a.Timestamp.Equal(b.Timestamp) && a.EventType == b.EventType &&
		a.CorrelationID == b.CorrelationID && a.EntityKey == b.EntityKey &&
		a.OccurredAt.Equal(b.OccurredAt) && maps.Equal(a.Metadata, b.Metadata)
}

func testStoreAndGet(t *testing.T, s chronicle.Store) {
	e := NewEvent(1234567*time.Microsecond, func(e *chronicle.Event) {
		e.EntityKey = "org:acme"
		e.Metadata = map[string]string{"ip": "10.0.0.1", "ünïcode": "✓"}
		e.ResourceID = ""
	})
	mustStore(t, s, e)
	got, err := s.Event(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if !equalEvent(got, e) {
		t.Fatalf("Event = %+v\nwant %+v", got, e)
	}
	if got.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp location = %v, want UTC", got.Timestamp.Location())
	}
	// Unset optional fields stay unset.
	bare := NewEvent(time.Second, func(e *chronicle.Event) { e.CorrelationID = "" })
	mustStore(t, s, bare)
	got, _ = s.Event(ctx(t), bare.ID)
	if got.CorrelationID != "" || got.EntityKey != "" || got.Metadata != nil {
		t.Errorf("unset fields came back set: %+v", got)
	}
	// An empty batch is fine.
	mustStore(t, s)
}

func testStoreIdempotent(t *testing.T, s chronicle.Store) {
	a, b := NewEvent(0), NewEvent(time.Second)
	mustStore(t, s, a)
	changed := *a
	changed.Actor = "mallory@example.com"
	// A redelivery (same ID) in a batch with a new event: the new one is
	// stored, the old one is not stored twice nor overwritten.
	mustStore(t, s, &changed, b)
	mustStore(t, s, b, b)
	got := list(t, s, chronicle.EventFilter{})
	if len(got) != 2 {
		t.Fatalf("stored %d events, want 2: %v", len(got), ids(got))
	}
	if e, _ := s.Event(ctx(t), a.ID); e.Actor != a.Actor {
		t.Errorf("redelivery overwrote the event: actor %q", e.Actor)
	}
}

func testEventNotFound(t *testing.T, s chronicle.Store) {
	_, err := s.Event(ctx(t), uuid.NewString())
	if !errors.Is(err, chronicle.ErrNotFound) {
		t.Fatalf("Event(unknown) error = %v, want ErrNotFound", err)
	}
	_, err = s.Event(ctx(t), "not-a-uuid")
	if !errors.Is(err, chronicle.ErrNotFound) {
		t.Fatalf("Event(not-a-uuid) error = %v, want ErrNotFound", err)
	}
}

func testOrderNewestFirst(t *testing.T, s chronicle.Store) {
	var events []*chronicle.Event
	for i := range 5 {
		events = append(events, NewEvent(time.Duration(i)*time.Millisecond))
	}
	// Same timestamp: ordered by id, descending.
	tie1 := NewEvent(2*time.Millisecond, func(e *chronicle.Event) { e.ID = "00000000-0000-7000-8000-000000000001" })
	tie2 := NewEvent(2*time.Millisecond, func(e *chronicle.Event) { e.ID = "ffffffff-0000-7000-8000-000000000001" })
	// Stored out of order.
	mustStore(t, s, events[3], tie1, events[0], events[4])
	mustStore(t, s, events[1], tie2, events[2])
	got := ids(list(t, s, chronicle.EventFilter{}))
	want := []string{events[4].ID, events[3].ID, tie2.ID, events[2].ID, tie1.ID, events[1].ID, events[0].ID}
	if !slices.Equal(got, want) {
		t.Fatalf("order:\n got %v\nwant %v", got, want)
	}
	if got := list(t, s, chronicle.EventFilter{Limit: 2}); !slices.Equal(ids(got), want[:2]) {
		t.Fatalf("limit 2: %v", ids(got))
	}
}

func testFilters(t *testing.T, s chronicle.Store) {
	a := NewEvent(1*time.Second, func(e *chronicle.Event) { e.Actor = "alice@example.com"; e.EntityKey = "org:acme" })
	b := NewEvent(2*time.Second, func(e *chronicle.Event) {
		e.Actor = "bob@example.com"
		e.Action = "created"
		e.ResourceType = "user"
		e.ResourceID = "u-1"
		e.EventType = "user.created"
		e.CorrelationID = "corr-1"
	})
	c := NewEvent(3*time.Second, func(e *chronicle.Event) { e.Actor = "bob@example.com"; e.ResourceID = ""; e.CorrelationID = "corr-1" })
	d := NewEvent(4*time.Second, func(e *chronicle.Event) {
		e.Action = "charge"
		e.ResourceType = "billing"
		e.ResourceID = "inv-9"
		e.EventType = "billing.charge"
		e.EntityKey = "org:acme"
	})
	mustStore(t, s, a, b, c, d)
	empty := ""
	u1 := "u-1"
	tests := []struct {
		name string
		f    chronicle.EventFilter
		want []*chronicle.Event
	}{
		{"All", chronicle.EventFilter{}, []*chronicle.Event{d, c, b, a}},
		{"Actor", chronicle.EventFilter{Actor: "bob@example.com"}, []*chronicle.Event{c, b}},
		{"Action", chronicle.EventFilter{Action: "login"}, []*chronicle.Event{c, a}},
		{"EventType", chronicle.EventFilter{EventType: "billing.charge"}, []*chronicle.Event{d}},
		{"ResourceType", chronicle.EventFilter{ResourceType: "user"}, []*chronicle.Event{b}},
		{"ResourceID", chronicle.EventFilter{ResourceID: &u1}, []*chronicle.Event{b}},
		{"ResourceIDEmpty", chronicle.EventFilter{ResourceID: &empty}, []*chronicle.Event{c}},
		{"ResourceTypeAndID", chronicle.EventFilter{ResourceType: "security", ResourceID: &empty}, []*chronicle.Event{c}},
		{"CorrelationID", chronicle.EventFilter{CorrelationID: "corr-1"}, []*chronicle.Event{c, b}},
		{"EntityKey", chronicle.EventFilter{EntityKey: "org:acme"}, []*chronicle.Event{d, a}},
		{"Combined", chronicle.EventFilter{Actor: "bob@example.com", EventType: "security.login"}, []*chronicle.Event{c}},
		{"NoMatch", chronicle.EventFilter{Actor: "nobody"}, nil},
		{"ExactNotPrefix", chronicle.EventFilter{Actor: "bob"}, nil},
	}
	for _, tt := range tests {
		if got := list(t, s, tt.f); !slices.Equal(ids(got), ids(tt.want)) {
			t.Errorf("%s: got %v, want %v", tt.name, ids(got), ids(tt.want))
		}
		if n, err := s.CountEvents(ctx(t), tt.f); err != nil || n != int64(len(tt.want)) {
			t.Errorf("%s: CountEvents = %d, %v; want %d", tt.name, n, err, len(tt.want))
		}
	}
}

func testSinceUntil(t *testing.T, s chronicle.Store) {
	var ev []*chronicle.Event
	for i := range 4 {
		ev = append(ev, NewEvent(time.Duration(i)*time.Second))
	}
	mustStore(t, s, ev...)
	// since is inclusive, until exclusive.
	got := list(t, s, chronicle.EventFilter{Since: base.Add(time.Second), Until: base.Add(3 * time.Second)})
	if want := []string{ev[2].ID, ev[1].ID}; !slices.Equal(ids(got), want) {
		t.Fatalf("since/until: %v, want %v", ids(got), want)
	}
	got = list(t, s, chronicle.EventFilter{Since: base.Add(3 * time.Second)})
	if !slices.Equal(ids(got), []string{ev[3].ID}) {
		t.Fatalf("since: %v", ids(got))
	}
	got = list(t, s, chronicle.EventFilter{Until: base.Add(time.Microsecond)})
	if !slices.Equal(ids(got), []string{ev[0].ID}) {
		t.Fatalf("until: %v", ids(got))
	}
	if n, err := s.CountEvents(ctx(t), chronicle.EventFilter{Since: base.Add(time.Second), Until: base.Add(3 * time.Second)}); err != nil || n != 2 {
		t.Fatalf("CountEvents(since, until) = %d, %v", n, err)
	}
}

func testKeysetPagination(t *testing.T, s chronicle.Store) {
	var all []*chronicle.Event
	for i := range 25 {
		// Some share a timestamp, so the id breaks ties.
		all = append(all, NewEvent(time.Duration(i/3)*time.Millisecond, func(e *chronicle.Event) {
			if i%2 == 0 {
				e.Actor = "even@example.com"
			}
		}))
	}
	mustStore(t, s, all...)
	for _, f := range []chronicle.EventFilter{{}, {Actor: "even@example.com"}} {
		want := ids(list(t, s, f))
		var got []string
		f.Limit = 4
		for page := 0; ; page++ {
			if page > 20 {
				t.Fatal("pagination does not end")
			}
			events := list(t, s, f)
			got = append(got, ids(events)...)
			if len(events) < f.Limit {
				break
			}
			p := chronicle.PositionOf(events[len(events)-1])
			f.After = &p
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages:\n got %v\nwant %v", got, want)
		}
	}
}

func testConcurrentWrites(t *testing.T, s chronicle.Store) {
	const writers, batches, size = 4, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var batch []*chronicle.Event
				for i := range size {
					batch = append(batch, NewEvent(time.Duration(w*1000+b*size+i)*time.Microsecond))
				}
				// Every batch is sent twice, as a redelivery would.
				for range 2 {
					if err := s.StoreEvents(ctx(t), batch); err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	f := chronicle.EventFilter{Limit: chronicle.MaxLimit}
	for {
		page := list(t, s, f)
		total += len(page)
		if len(page) < f.Limit {
			break
		}
		p := chronicle.PositionOf(page[len(page)-1])
		f.After = &p
	}
	if total != writers*batches*size {
		t.Fatalf("stored %d events, want %d", total, writers*batches*size)
	}
}

func testReturnsCopies(t *testing.T, s chronicle.Store) {
	e := NewEvent(0, func(e *chronicle.Event) { e.Metadata = map[string]string{"k": "v"} })
	mustStore(t, s, e)
	e.Metadata["k"] = "changed after store"
	got, _ := s.Event(ctx(t), e.ID)
	got.Metadata["k"] = "changed after read"
	again, _ := s.Event(ctx(t), e.ID)
	if again.Metadata["k"] != "v" {
		t.Fatalf("stored metadata changed to %q", again.Metadata["k"])
	}
}

func testEntities(t *testing.T, s chronicle.Store) {
	if n, err := s.CountEntities(ctx(t)); err != nil || n != 0 {
		t.Fatalf("CountEntities on empty store = %d, %v", n, err)
	}
	acme := &chronicle.Entity{Key: "org:acme", Name: "Acme Corp", Attributes: map[string]string{"tier": "enterprise"}}
	beta := &chronicle.Entity{Key: "org:beta", Name: "Beta", Attributes: map[string]string{}}
	for _, e := range []*chronicle.Entity{acme, beta} {
		if err := s.PutEntity(ctx(t), e); err != nil {
			t.Fatalf("PutEntity: %v", err)
		}
	}
	got, err := s.Entity(ctx(t), "org:acme")
	if err != nil || got.Name != "Acme Corp" || got.Attributes["tier"] != "enterprise" {
		t.Fatalf("Entity = %+v, %v", got, err)
	}
	// Upsert replaces: the old attributes are gone.
	if err := s.PutEntity(ctx(t), &chronicle.Entity{Key: "org:acme", Name: "Acme", Attributes: map[string]string{"region": "eu"}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Entity(ctx(t), "org:acme")
	if got.Name != "Acme" || got.Attributes["region"] != "eu" || got.Attributes["tier"] != "" {
		t.Fatalf("after upsert: %+v", got)
	}
	all, err := s.Entities(ctx(t))
	if err != nil || len(all) != 2 || all[0].Key != "org:acme" || all[1].Key != "org:beta" {
		t.Fatalf("Entities = %+v, %v", all, err)
	}
	if all[1].Attributes == nil {
		t.Errorf("empty attributes came back nil")
	}
	byKey, err := s.EntitiesByKey(ctx(t), []string{"org:beta", "org:ghost", "org:beta"})
	if err != nil || len(byKey) != 1 || byKey["org:beta"].Name != "Beta" {
		t.Fatalf("EntitiesByKey = %+v, %v", byKey, err)
	}
	if n, _ := s.CountEntities(ctx(t)); n != 2 {
		t.Fatalf("CountEntities = %d", n)
	}
	if err := s.DeleteEntity(ctx(t), "org:beta"); err != nil {
		t.Fatalf("DeleteEntity: %v", err)
	}
	if n, _ := s.CountEntities(ctx(t)); n != 1 {
		t.Fatalf("CountEntities after delete = %d", n)
	}
}

func testEntityNotFound(t *testing.T, s chronicle.Store) {
	if _, err := s.Entity(ctx(t), "ghost"); !errors.Is(err, chronicle.ErrNotFound) {
		t.Errorf("Entity(ghost) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteEntity(ctx(t), "ghost"); !errors.Is(err, chronicle.ErrNotFound) {
		t.Errorf("DeleteEntity(ghost) = %v, want ErrNotFound", err)
	}
}

func testPing(t *testing.T, s chronicle.Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	switch s.Name() {
	case "memory", "sqlite", "postgres":
	default:
		t.Fatalf("Name() = %q is not canonical", s.Name())
	}
}

func testIdempotency(t *testing.T, is chronicle.Store) {
	e := NewEvent(0, func(e *chronicle.Event) { e.Metadata = map[string]string{"k": "v"} })
	rec := &chronicle.IdempotencyRecord{Key: "key-1", Fingerprint: "fp-1", Status: 202,
		Response: []byte(`{"status":"accepted","id":"` + e.ID + `"}`), Events: []*chronicle.Event{e}, CreatedAt: base}
	if old, claimed, err := is.ClaimIdempotencyKey(ctx(t), rec); err != nil || !claimed || old != nil {
		t.Fatalf("first claim = %v, %v, %v", old, claimed, err)
	}
	other := *rec
	other.Fingerprint, other.Response, other.Events = "fp-2", []byte("{}"), nil
	old, claimed, err := is.ClaimIdempotencyKey(ctx(t), &other)
	if err != nil || claimed || old == nil {
		t.Fatalf("second claim = %v, %v, %v", old, claimed, err)
	}
	if old.Fingerprint != "fp-1" || old.Status != 202 || string(old.Response) != string(rec.Response) ||
		len(old.Events) != 1 || !equalEvent(old.Events[0], e) || !old.CreatedAt.Equal(base) || old.Scope != "" {
		t.Fatalf("existing record = %+v", old)
	}
	// The same key in another scope (another API key) is another key.
	scoped := other
	scoped.Scope = "principal-b"
	if old, claimed, err := is.ClaimIdempotencyKey(ctx(t), &scoped); err != nil || !claimed || old != nil {
		t.Fatalf("the key in another scope = %v, %v, %v; want a claim of its own", old, claimed, err)
	}
	if old, claimed, err := is.ClaimIdempotencyKey(ctx(t), &scoped); err != nil || claimed || old.Fingerprint != "fp-2" || old.Scope != "principal-b" {
		t.Fatalf("the key again in its scope = %+v, %v, %v", old, claimed, err)
	}
	// Concurrent claims of one key: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := range 8 {
		wg.Go(func() {
			r := *rec
			r.Key, r.Fingerprint = "race", fmt.Sprint(i)
			_, claimed, err := is.ClaimIdempotencyKey(ctx(t), &r)
			if err != nil {
				t.Error(err)
			}
			wins <- claimed
		})
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent claims won, want 1", n)
	}
	recent := *rec
	recent.Key, recent.CreatedAt = "key-2", base.Add(48*time.Hour)
	if _, _, err := is.ClaimIdempotencyKey(ctx(t), &recent); err != nil {
		t.Fatal(err)
	}
	forgot, err := is.ForgetIdempotencyKeys(ctx(t), base.Add(24*time.Hour))
	if err != nil || forgot != 3 {
		t.Fatalf("forget = %d, %v (want key-1 in both scopes and race)", forgot, err)
	}
	if _, claimed, _ := is.ClaimIdempotencyKey(ctx(t), rec); !claimed {
		t.Fatal("a forgotten key is still claimed")
	}
	if _, claimed, _ := is.ClaimIdempotencyKey(ctx(t), &recent); claimed {
		t.Fatal("a recent key was forgotten")
	}
}

// occurred_at is kept to the microsecond, in UTC, and filtered on as a
// half-open range; an event without one matches no occurred_at bound.
func testOccurredAt(t *testing.T, s chronicle.Store) {
	east := time.FixedZone("UTC+5", 5*3600)
	at := func(d time.Duration) time.Time { return base.Add(d).In(east) }
	a := NewEvent(1*time.Second, func(e *chronicle.Event) { e.OccurredAt = at(-time.Hour + 123456*time.Microsecond) })
	b := NewEvent(2*time.Second, func(e *chronicle.Event) { e.OccurredAt = at(-2 * time.Hour) })
	c := NewEvent(3*time.Second, func(e *chronicle.Event) { e.OccurredAt = at(-30 * time.Minute) })
	none := NewEvent(4 * time.Second)
	mustStore(t, s, a, b, c, none)
	got, err := s.Event(ctx(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OccurredAt.Equal(a.OccurredAt) || got.OccurredAt.Location() != time.UTC {
		t.Fatalf("occurred_at = %v, want %v in UTC", got.OccurredAt, a.OccurredAt)
	}
	if e, _ := s.Event(ctx(t), none.ID); !e.OccurredAt.IsZero() {
		t.Fatalf("an event without occurred_at came back with %v", e.OccurredAt)
	}
	for _, tt := range []struct {
		name string
		f    chronicle.EventFilter
		want []string
	}{
		{"Since", chronicle.EventFilter{OccurredSince: a.OccurredAt}, []string{c.ID, a.ID}},
		{"Until", chronicle.EventFilter{OccurredUntil: a.OccurredAt}, []string{b.ID}},
		{"Range", chronicle.EventFilter{OccurredSince: b.OccurredAt, OccurredUntil: c.OccurredAt}, []string{b.ID, a.ID}},
		{"WithOtherFilters", chronicle.EventFilter{OccurredSince: b.OccurredAt, Until: base.Add(2 * time.Second)}, []string{a.ID}},
	} {
		if got := ids(list(t, s, tt.f)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		f := tt.f
		if n, err := s.CountEvents(ctx(t), f); err != nil || n != int64(len(tt.want)) {
			t.Errorf("%s: count %d, %v; want %d", tt.name, n, err, len(tt.want))
		}
	}
}

// path is a route's path into the store, ending with its stored hop.
func path(queue string, at time.Time) chronicle.History {
	var h chronicle.History
	h = h.Append(chronicle.Hop{Hop: chronicle.HopAccepted, At: at, Process: "producer:1"})
	h = h.Append(chronicle.Hop{Hop: chronicle.HopConsumed, At: at.Add(time.Millisecond), Queue: queue, Worker: "w-1", Delivery: 1})
	return h.Append(chronicle.Hop{Hop: chronicle.HopStored, At: at.Add(2 * time.Millisecond), Queue: queue, Store: "test", Batch: 1})
}

// An event stored by two routes' consumers keeps each route's path, once:
// a redelivery through the same queue adds nothing.
func testHistory(t *testing.T, s chronicle.Store) {
	e := NewEvent(0)
	first := *e
	first.History, first.Queue = path("chronicle.security", base), "chronicle.security"
	mustStore(t, s, &first)
	second := *e
	second.History, second.Queue = path("chronicle.all", base.Add(time.Second)), "chronicle.all"
	again := *e
	again.History, again.Queue = path("chronicle.security", base.Add(2*time.Second)), "chronicle.security"
	mustStore(t, s, &second)
	mustStore(t, s, &again)
	got, err := s.Event(ctx(t), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	hops, err := got.History.Hops()
	if err != nil {
		t.Fatalf("stored history %q: %v", got.History, err)
	}
	var stored []string
	for _, h := range hops {
		if h.Hop == chronicle.HopStored {
			stored = append(stored, h.Queue)
		}
	}
	if !slices.Equal(stored, []string{"chronicle.security", "chronicle.all"}) || len(hops) != 6 {
		t.Fatalf("history = %+v; want the security then the all path, once each", hops)
	}
	// An event stored without a history keeps none until a path comes.
	plain := NewEvent(time.Second)
	mustStore(t, s, plain)
	if got, _ := s.Event(ctx(t), plain.ID); len(got.History) != 0 {
		t.Fatalf("history of an event stored without one: %q", got.History)
	}
	withPath := *plain
	withPath.History, withPath.Queue = path("chronicle.all", base), "chronicle.all"
	mustStore(t, s, &withPath)
	if got, _ := s.Event(ctx(t), plain.ID); len(got.History) == 0 {
		t.Fatal("a path for an event stored without history was lost")
	}
	// Routes' copies share their trunk (accepted, published): the history
	// is the one their whole paths make, whatever form the store keeps.
	shared := NewEvent(2 * time.Second)
	trunk := chronicle.History(nil).AppendHops(
		chronicle.Hop{Hop: chronicle.HopAccepted, At: base, Process: "producer:1", RequestID: "r-1"},
		chronicle.Hop{Hop: chronicle.HopPublished, At: base.Add(time.Millisecond), Transport: "t", Queues: []string{"q.a", "q.b", "q.c"}})
	var whole chronicle.History
	for i, q := range []string{"q.a", "q.b", "q.c", "q.b"} {
		c := *shared
		at := base.Add(time.Duration(10+i) * time.Millisecond)
		c.Queue, c.History = q, trunk.AppendHops(
			chronicle.Hop{Hop: chronicle.HopConsumed, At: at, Process: "consumer:2", Queue: q, Delivery: 1},
			chronicle.Hop{Hop: chronicle.HopStored, At: at.Add(time.Microsecond), Store: "test", Batch: 1})
		if i < 3 { // the last is a redelivery through q.b: nothing to add
			whole = whole.Concat(c.History)
		}
		mustStore(t, s, &c)
	}
	got, err = s.Event(ctx(t), shared.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := whole.Hops()
	have, err := got.History.Hops()
	if err != nil {
		t.Fatalf("stored history %q: %v", got.History, err)
	}
	if w, h := fmt.Sprint(want), fmt.Sprint(have); w != h || len(have) != 8 {
		t.Fatalf("history of three routes' copies:\n got %s\nwant %s", h, w)
	}
	// A listing does not carry histories.
	for _, l := range list(t, s, chronicle.EventFilter{}) {
		if len(l.History) != 0 {
			t.Fatalf("a listed event carries its history")
		}
	}
}

// Routed returns n events as the seed topology's two routes deliver
// them: each event once for the "all" queue and once for its category's,
// each copy with that route's path (accepted, published, consumed,
// stored) when withHistory. It is what a store's benchmarks write: the
// second copy of every event is a duplicate whose path joins the first.
func Routed(seq, n int, withHistory bool) (all, category []*chronicle.Event) {
	all, category = make([]*chronicle.Event, n), make([]*chronicle.Event, n)
	for i := range all {
		e := NewEvent(time.Duration(seq+i)*time.Microsecond, func(e *chronicle.Event) {
			e.Metadata = map[string]string{"ip": "192.0.2.17"}
		})
		all[i], category[i] = e, e.Clone()
		if !withHistory {
			continue
		}
		at := e.Timestamp
		h := chronicle.History(nil).AppendHops(
			chronicle.Hop{Hop: chronicle.HopAccepted, At: at, Process: "host-1:4242", RequestID: uuid.NewString()},
			chronicle.Hop{Hop: chronicle.HopPublished, At: at.Add(40 * time.Microsecond), Transport: "inproc",
				Exchange: "audit_events", RoutingKey: e.EventType, Queues: []string{"chronicle.all", "chronicle.security"}})
		for _, c := range []*chronicle.Event{all[i], category[i]} {
			c.Queue = "chronicle.security"
			if c == all[i] {
				c.Queue = "chronicle.all"
			}
			done := at.Add(time.Millisecond)
			c.History = h.AppendHops(
				chronicle.Hop{Hop: chronicle.HopConsumed, At: done, Process: "host-1:4242", Queue: c.Queue, Worker: "0", Delivery: 1},
				chronicle.Hop{Hop: chronicle.HopStored, At: done, Store: "sqlite", Batch: n})
		}
	}
	return all, category
}
