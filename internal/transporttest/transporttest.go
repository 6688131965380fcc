// Package transporttest is the behaviour suite every Messaging Gateway
// transport passes (in-process and RabbitMQ): routing, competing
// consumers, FIFO, dead-lettering, drain on close. Features one transport
// lacks are switched off by flags, as in watermill's pub/sub tests.
package transporttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/routing"
)

// Options are what a test asks of a new gateway.
type Options struct {
	// Capacity bounds each queue (transports that bound queues).
	Capacity int
	// ConsumerCount is the number of workers per queue; 0: the role's.
	ConsumerCount int
	// Check replaces the consumers' check (ingest.Check), to play a
	// consumer version with a bug that a later version fixes.
	Check chronicle.Check
}

// Gateway is a transport under test: a chronicle.Gateway that can also
// publish a message as it is, the way a foreign producer publishing
// straight to the exchange would (its ID, Type and Timestamp the AMQP
// message_id, routing key and timestamp).
type Gateway interface {
	chronicle.Gateway
	PublishMessage(ctx context.Context, m chronicle.Message) error
}

// NewGateway builds a gateway over cfg whose consumers store into store
// (the journal too, on transports that journal). The gateways of one test
// share its broker state (vhost), as processes share a broker; they are
// closed when the test ends. Their hops name the process Process and the
// store StoreName.
const (
	Process   = "test-host:42"
	StoreName = "recorder"
)

type NewGateway func(cfg *routing.Config, store chronicle.Store, opts Options) Gateway

// Harness describes one transport to the suite.
type Harness struct {
	// Setup prepares one test's own broker state (a vhost) and returns
	// how to build gateways on it.
	Setup func(t *testing.T) NewGateway

	// BoundedQueues: Publish refuses with ErrUnavailable when a queue is
	// full (in process). RabbitMQ queues are bounded by the broker's
	// resources instead.
	BoundedQueues bool
	// DrainsOnClose: Close stores everything queued (in process, where
	// nothing else would). On RabbitMQ the queues outlive the process;
	// Close settles only the deliveries in hand and the rest waits in the
	// broker for the next consumer.
	DrainsOnClose bool
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewGateway, Harness)
		skip bool
	}{
		{"DatatypeRouting", testDatatypeRouting, false},
		{"Unrouted", testUnrouted, false},
		{"FIFOPerQueue", testFIFO, false},
		{"CompetingConsumers", testCompetingConsumers, false},
		{"StoredOnceAcrossRoutes", testStoredOnce, false},
		{"Backpressure", testBackpressure, !h.BoundedQueues},
		{"DrainOnClose", testDrainOnClose, false},
		{"DeadLetter", testDeadLetter, false},
		{"StoreOutageRetried", testStoreOutage, false},
		{"StoreRefusesOneEvent", testStoreRefusesOne, false},
		{"UnknownRole", testUnknownRole, false},
		{"PublishAfterClose", testPublishAfterClose, false},
		{"PeekLeavesQueueUnchanged", testPeek, false},
		{"ReplayFixedStoresOnce", testReplayFixed, false},
		{"ReplayStillBrokenCountsDeaths", testReplayBroken, false},
		{"ReplayUnroutedAfterNewRoute", testReplayUnrouted, false},
		{"PurgeByID", testPurge, false},
		{"DeadLetterWithoutID", testDeadLetterWithoutID, false},
		{"MessageHistory", testHistory, false},
		{"ForeignMessageStoredOnce", testForeignStoredOnce, false},
		{"ForeignMessageWithoutID", testForeignWithoutID, false},
		{"ForeignMessageReplayed", testForeignReplayed, false},
	}
	for _, tt := range tests {
		if tt.skip {
			continue // a feature this transport does not have, not a skipped test
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h.Setup(t), h)
		})
	}
}

// NewEvent returns a valid, normalised event of the given type.
func NewEvent(eventType string) *chronicle.Event {
	words := strings.SplitN(eventType, ".", 2)
	return &chronicle.Event{
		ID:            uuid.Must(uuid.NewV7()).String(),
		Actor:         "alice@example.com",
		Action:        words[len(words)-1],
		ResourceType:  words[0],
		ResourceID:    "r-1",
		Timestamp:     time.Now().UTC().Truncate(time.Microsecond),
		EventType:     eventType,
		CorrelationID: uuid.NewString(),
	}
}

// Recorder is a memory store that remembers every event handed to it
// (through StoreEvents, or a journal's Settle), so tests can count
// deliveries, not just distinct events; and that fails on demand.
type Recorder struct {
	*memory.Store
	mu     sync.Mutex
	calls  map[string]int
	order  []string
	fail   error
	refuse map[string]bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Store: memory.New(), calls: map[string]int{}, refuse: map[string]bool{}}
}

// record counts events, or fails as told.
func (r *Recorder) record(events []*chronicle.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	for _, e := range events {
		if r.refuse[e.ID] {
			return chronicle.Wrap(chronicle.ErrInvalid, "the test store refuses this event", fmt.Errorf("event %s", e.ID))
		}
	}
	for _, e := range events {
		r.calls[e.ID]++
		r.order = append(r.order, e.ID)
	}
	return nil
}

// StoreEvents records, then stores (or fails while Fail is set).
func (r *Recorder) StoreEvents(ctx context.Context, events []*chronicle.Event) error {
	if err := r.record(events); err != nil {
		return err
	}
	return r.Store.StoreEvents(ctx, events)
}

// Settle implements chronicle.Journal: it records the events, then settles.
func (r *Recorder) Settle(ctx context.Context, s *chronicle.Settlement) error {
	if err := r.record(s.Events); err != nil {
		return err
	}
	return r.Store.Settle(ctx, s)
}

// Fail makes storing fail with err (nil: succeed again).
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

// Refuse makes storing refuse, for good (chronicle.ErrInvalid), any batch
// holding the event with this id, as PostgreSQL refuses data it cannot
// hold.
func (r *Recorder) Refuse(id string) {
	r.mu.Lock()
	r.refuse[id] = true
	r.mu.Unlock()
}

// Deliveries returns how many times id was handed to the store.
func (r *Recorder) Deliveries(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

// Order returns the IDs in the order they were handed to the store.
func (r *Recorder) Order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order)
}

// Stored reports whether every id is in the store.
func (r *Recorder) Stored(ids ...string) bool {
	for _, id := range ids {
		if _, err := r.Event(context.Background(), id); err != nil {
			return false
		}
	}
	return true
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publishMessage(t *testing.T, gw Gateway, m chronicle.Message) {
	t.Helper()
	if err := gw.PublishMessage(t.Context(), m); err != nil {
		t.Fatalf("PublishMessage: %v", err)
	}
}

func deadLetters(t *testing.T, gw Gateway, queue string) []chronicle.DeadLetter {
	t.Helper()
	dl, err := gw.PeekDeadLetters(t.Context(), queue, 0)
	if err != nil {
		t.Fatalf("PeekDeadLetters(%s): %v", queue, err)
	}
	return dl
}

func publish(t *testing.T, gw chronicle.Gateway, events ...*chronicle.Event) {
	t.Helper()
	if err := gw.Publish(t.Context(), events); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func depth(t *testing.T, gw chronicle.Gateway, queue string) int {
	t.Helper()
	qs, err := gw.Queues(t.Context())
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	for _, q := range qs {
		if q.Name == queue {
			return q.Depth
		}
	}
	t.Fatalf("queue %s not reported by Queues: %+v", queue, qs)
	return 0
}

func closeGW(t *testing.T, gw chronicle.Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// SingleRoute is a topology with one catch-all route and its DLQ,
// consumed by role "default". routeKeys are more keys of the route, e.g.
// `queue_type = "quorum"`.
func SingleRoute(t testing.TB, routeKeys ...string) *routing.Config {
	t.Helper()
	qt := ""
	for _, k := range routeKeys {
		qt += k + "\n"
	}
	c, err := routing.Parse([]byte(`
[exchanges.audit_events]
type = "topic"
durable = true
[exchanges.dead_letter]
type = "direct"
durable = true
[[routes]]
name = "all_events"
exchange = "audit_events"
queue = "chronicle.all"
routing_key = "#"
dead_letter_exchange = "dead_letter"
dead_letter_queue = "chronicle.all.dlq"
`+qt+`[[consumers]]
name = "default"
routes = ["all_events"]
instances = 1
`), "single.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func singleRoute(t *testing.T) *routing.Config { return SingleRoute(t) }

func testDatatypeRouting(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(routing.Default(), NewRecorder(), Options{})
	publish(t, gw, NewEvent("security.login"))
	publish(t, gw, NewEvent("user.created"), NewEvent("user.deleted"))
	want := map[string]int{"chronicle.all": 3, "chronicle.security": 1, "chronicle.users": 2, "chronicle.billing": 0, routing.UnroutedQueue: 0}
	for q, n := range want {
		Eventually(t, 5*time.Second, fmt.Sprintf("%s to hold %d", q, n), func() bool { return depth(t, gw, q) == n })
	}
}

func testUnrouted(t *testing.T, newGW NewGateway, h Harness) {
	c, err := routing.Parse([]byte(`
[exchanges.audit_events]
type = "topic"
durable = true
[[routes]]
name = "security_events"
exchange = "audit_events"
queue = "chronicle.security"
routing_key = "security.#"
[[consumers]]
name = "default"
routes = ["security_events"]
`), "unrouted.toml")
	if err != nil {
		t.Fatal(err)
	}
	gw := newGW(c, NewRecorder(), Options{})
	e := NewEvent("billing.charge")
	publish(t, gw, e)
	Eventually(t, 5*time.Second, "the unrouted queue to hold the event", func() bool { return depth(t, gw, routing.UnroutedQueue) == 1 })
	dl := deadLetters(t, gw, routing.UnroutedQueue)
	if len(dl) != 1 || dl[0].ID != e.ID || dl[0].RoutingKey != "billing.charge" {
		t.Fatalf("unrouted queue holds %+v", dl)
	}
}

func testFIFO(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(singleRoute(t), rec, Options{ConsumerCount: 1})
	var want []string
	for range 50 {
		e := NewEvent("document.viewed")
		publish(t, gw, e)
		want = append(want, e.ID)
	}
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "all events stored", func() bool { return rec.Stored(want...) })
	if got := rec.Order(); !slices.Equal(got, want) {
		t.Fatalf("one consumer did not store in publish order:\n got %v\nwant %v", got, want)
	}
}

func testCompetingConsumers(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(singleRoute(t), rec, Options{ConsumerCount: 4})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				e := NewEvent("document.viewed")
				if err := gw.Publish(t.Context(), []*chronicle.Event{e}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, e.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	Eventually(t, 20*time.Second, "all events stored", func() bool { return rec.Stored(ids...) })
	for _, id := range ids {
		if n := rec.Deliveries(id); n != 1 {
			t.Fatalf("event %s delivered to %d consumers of one queue, want exactly 1", id, n)
		}
	}
}

func testStoredOnce(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	e := NewEvent("security.login")
	publish(t, gw, e)
	// Delivered to both chronicle.security and chronicle.all, stored once.
	Eventually(t, 10*time.Second, "two deliveries", func() bool { return rec.Deliveries(e.ID) == 2 })
	page, _ := rec.Events(t.Context(), chronicle.EventFilter{Limit: 10})
	if len(page) != 1 {
		t.Fatalf("stored %d events, want 1", len(page))
	}
}

func testBackpressure(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{Capacity: 10})
	for range 10 {
		publish(t, gw, NewEvent("document.viewed"))
	}
	err := gw.Publish(t.Context(), []*chronicle.Event{NewEvent("document.viewed")})
	var ue *chronicle.UnavailableError
	if !errors.As(err, &ue) || ue.RetryAfter <= 0 {
		t.Fatalf("publish to a full queue: %v, want UnavailableError with RetryAfter", err)
	}
	if !strings.Contains(err.Error(), "chronicle.all") {
		t.Errorf("error %q does not name the full queue", err)
	}
	if d := depth(t, gw, "chronicle.all"); d != 10 {
		t.Fatalf("depth after refusal = %d, want 10", d)
	}
	// A batch that does not fit is refused whole.
	err = gw.Publish(t.Context(), []*chronicle.Event{NewEvent("a.b"), NewEvent("a.b")})
	if !errors.Is(err, chronicle.ErrUnavailable) {
		t.Fatalf("batch publish to a full queue: %v", err)
	}
}

func testDrainOnClose(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	var ids []string
	for range 20 {
		batch := make([]*chronicle.Event, 0, 50)
		for range 50 {
			e := NewEvent("security.login")
			batch = append(batch, e)
			ids = append(ids, e.ID)
		}
		publish(t, gw, batch...)
	}
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	closeGW(t, gw)
	if !h.DrainsOnClose {
		// What the first consumers did not take is still queued: a new
		// process stores it.
		next := newGW(routing.Default(), rec, Options{})
		if err := next.StartConsumers(t.Context(), "default"); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 30*time.Second, "the rest stored by the next consumers", func() bool { return rec.Stored(ids...) })
	}
	if !rec.Stored(ids...) {
		n := 0
		for _, id := range ids {
			if rec.Stored(id) {
				n++
			}
		}
		t.Fatalf("Close returned with %d of %d events stored", n, len(ids))
	}
}

func testDeadLetter(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	good := NewEvent("security.login")
	noActor := NewEvent("security.login")
	body, _ := noActor.MarshalJSON()
	body = []byte(strings.Replace(string(body), `"actor":"alice@example.com",`, "", 1))
	publishMessage(t, gw, chronicle.Message{ID: "not-json-1", Type: "billing.charge", Body: []byte("this is not json")})
	publishMessage(t, gw, chronicle.Message{ID: noActor.ID, Type: "security.login", Body: body})
	publish(t, gw, good)

	Eventually(t, 10*time.Second, "the good event stored", func() bool { return rec.Stored(good.ID) })
	check := func(queue, id, reason string) {
		t.Helper()
		var dl []chronicle.DeadLetter
		Eventually(t, 10*time.Second, queue+" to hold "+id, func() bool {
			dl = deadLetters(t, gw, queue)
			return slices.ContainsFunc(dl, func(d chronicle.DeadLetter) bool { return d.ID == id })
		})
		for _, d := range dl {
			if d.ID != id {
				continue
			}
			if !strings.Contains(d.Reason, reason) {
				t.Errorf("%s: reason %q, want %q", queue, d.Reason, reason)
			}
			if d.Count != 1 || d.FirstDeathAt.IsZero() || d.Exchange != "audit_events" {
				t.Errorf("%s: dead letter %+v lacks its death story", queue, d)
			}
		}
	}
	// Each dead letter reaches only its own route's DLQ: the non-JSON
	// billing message dies in billing and in the catch-all route.
	check("chronicle.billing.dlq", "not-json-1", "parse error")
	check("chronicle.all.dlq", "not-json-1", "parse error")
	check("chronicle.security.dlq", noActor.ID, `missing field: "actor"`)
	check("chronicle.all.dlq", noActor.ID, `missing field: "actor"`)
	for _, q := range []string{"chronicle.users.dlq", "chronicle.security.dlq", "chronicle.billing.dlq"} {
		for _, d := range deadLetters(t, gw, q) {
			if d.Queue+".dlq" != q {
				t.Errorf("%s holds a dead letter from %s", q, d.Queue)
			}
		}
	}
	if n := len(deadLetters(t, gw, "chronicle.users.dlq")); n != 0 {
		t.Errorf("chronicle.users.dlq holds %d messages, want 0", n)
	}
	if rec.Stored(noActor.ID) {
		t.Errorf("an invalid message was stored")
	}
}

func testStoreOutage(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	rec.Fail(errors.New("store is down"))
	gw := newGW(singleRoute(t), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 20 {
		e := NewEvent("document.viewed")
		publish(t, gw, e)
		ids = append(ids, e.ID)
	}
	time.Sleep(300 * time.Millisecond)
	if rec.Stored(ids[0]) {
		t.Fatal("stored while the store fails")
	}
	rec.Fail(nil)
	Eventually(t, 20*time.Second, "events stored once the store is back", func() bool { return rec.Stored(ids...) })
	if dl := deadLetters(t, gw, "chronicle.all.dlq"); len(dl) != 0 {
		t.Fatalf("a store outage dead-lettered %d messages", len(dl))
	}
}

func testUnknownRole(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(routing.Default(), NewRecorder(), Options{})
	err := gw.StartConsumers(t.Context(), "ghost")
	if err == nil || !strings.Contains(err.Error(), `unknown consumer role "ghost"`) {
		t.Fatalf("StartConsumers(ghost) = %v", err)
	}
}

func testPublishAfterClose(t *testing.T, newGW NewGateway, h Harness) {
	gw := newGW(singleRoute(t), NewRecorder(), Options{})
	closeGW(t, gw)
	err := gw.Publish(t.Context(), []*chronicle.Event{NewEvent("a.b")})
	if !errors.Is(err, chronicle.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

// An event the store refuses for good (PostgreSQL refuses a NUL byte) is
// dead-lettered with the store's reason; the events around it, in its
// batch and after it, are stored.
func testStoreRefusesOne(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(singleRoute(t), rec, Options{ConsumerCount: 1})
	var good []string
	var bad *chronicle.Event
	for i := range 9 {
		e := NewEvent("document.viewed")
		if i == 4 {
			bad = e
			rec.Refuse(e.ID)
		} else {
			good = append(good, e.ID)
		}
		publish(t, gw, e)
	}
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 20*time.Second, "the other events stored", func() bool { return rec.Stored(good...) })
	var dl []chronicle.DeadLetter
	Eventually(t, 10*time.Second, "the refused event dead-lettered", func() bool {
		dl = deadLetters(t, gw, "chronicle.all.dlq")
		return len(dl) == 1
	})
	if dl[0].ID != bad.ID || !strings.Contains(dl[0].Reason, "store refused the event") || dl[0].Queue != "chronicle.all" {
		t.Fatalf("dead letter = %+v", dl[0])
	}
	if rec.Stored(bad.ID) {
		t.Fatal("the refused event was stored")
	}
}

// stored waits for id to be stored and returns its history's hops.
func storedHistory(t *testing.T, rec *Recorder, id string, want int) []chronicle.Hop {
	t.Helper()
	var hops []chronicle.Hop
	Eventually(t, 10*time.Second, fmt.Sprintf("%d stored paths of %s", want, id), func() bool {
		e, err := rec.Event(t.Context(), id)
		if err != nil {
			return false
		}
		hops, err = e.History.Hops()
		if err != nil {
			t.Fatalf("history %q: %v", e.History, err)
		}
		n := 0
		for _, h := range hops {
			if h.Hop == chronicle.HopStored {
				n++
			}
		}
		return n == want
	})
	return hops
}

// An event's Message History: accepted (by the producer), published (by
// the transport, to both of its routes' queues), then consumed and stored
// once per route, each naming the queue, the worker and the store.
func testHistory(t *testing.T, newGW NewGateway, h Harness) {
	rec := NewRecorder()
	gw := newGW(routing.Default(), rec, Options{})
	if err := gw.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	e := NewEvent("security.login")
	e.History = chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopAccepted, At: e.Timestamp, Process: "producer:7", RequestID: "req-1"})
	publish(t, gw, e)
	hops := storedHistory(t, rec, e.ID, 2)
	kinds := map[string]int{}
	for _, hop := range hops {
		kinds[hop.Hop]++
		switch hop.Hop {
		case chronicle.HopAccepted:
			if hop.Process != "producer:7" || hop.RequestID != "req-1" {
				t.Errorf("accepted hop = %+v", hop)
			}
		case chronicle.HopPublished:
			if hop.Transport != gw.Name() || hop.Exchange != "audit_events" || hop.RoutingKey != "security.login" ||
				!slices.Equal(hop.Queues, []string{"chronicle.all", "chronicle.security"}) {
				t.Errorf("published hop = %+v", hop)
			}
		case chronicle.HopConsumed:
			if hop.Process != Process || hop.Worker == "" || hop.Delivery != 1 || (hop.Queue != "chronicle.all" && hop.Queue != "chronicle.security") {
				t.Errorf("consumed hop = %+v", hop)
			}
		case chronicle.HopStored:
			if hop.Process != Process || hop.Store != StoreName || hop.Batch < 1 {
				t.Errorf("stored hop = %+v", hop)
			}
		}
	}
	if kinds[chronicle.HopAccepted] != 1 || kinds[chronicle.HopPublished] != 1 || kinds[chronicle.HopConsumed] != 2 || kinds[chronicle.HopStored] != 2 {
		t.Fatalf("history = %+v", hops)
	}
	if !slices.IsSortedFunc(hops, func(a, b chronicle.Hop) int { return a.At.Compare(b.At) }) {
		t.Fatalf("hops out of order: %+v", hops)
	}
}
