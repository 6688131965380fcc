package rabbitmq_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
	"github.com/chronicle-audit/chronicle/internal/tcpproxy"
	"github.com/chronicle-audit/chronicle/internal/testlog"
	"github.com/chronicle-audit/chronicle/internal/transporttest"
	"github.com/chronicle-audit/chronicle/rabbitmq"
	"github.com/chronicle-audit/chronicle/routing"
)

// newTransport builds a transport on cfg.URL (a test's vhost), closed
// when the test ends.
func newTransport(t *testing.T, cfg rabbitmq.Config) *rabbitmq.Transport {
	t.Helper()
	if cfg.Routing == nil {
		cfg.Routing = routing.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = testlog.Warn(t)
	}
	if cfg.Check == nil {
		cfg.Check = ingest.Check
	}
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 500*time.Millisecond
	tr, err := rabbitmq.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	return tr
}

func TestTransport(t *testing.T) {
	t.Parallel()
	transporttest.Run(t, transporttest.Harness{
		Setup: func(t *testing.T) transporttest.NewGateway {
			u, _ := rabbitmqtest.Vhost(t)
			return func(rc *routing.Config, store chronicle.Store, o transporttest.Options) transporttest.Gateway {
				return newTransport(t, rabbitmq.Config{URL: u, Routing: rc, Store: store, ConsumerCount: o.ConsumerCount, Check: o.Check,
					Process: transporttest.Process, StoreName: transporttest.StoreName})
			}
		},
	})
}

func TestTopology(t *testing.T) {
	t.Parallel()
	u, vh := rabbitmqtest.Vhost(t)
	newTransport(t, rabbitmq.Config{URL: u})
	// A second start declares the same topology again without error.
	newTransport(t, rabbitmq.Config{URL: u})

	queues := map[string]rabbitmqtest.Queue{}
	for _, q := range rabbitmqtest.Queues(t, vh) {
		queues[q.Name] = q
	}
	for _, r := range routing.Default().Routes {
		q, ok := queues[r.Queue]
		if !ok || !q.Durable {
			t.Fatalf("queue %s missing or not durable: %+v", r.Queue, q)
		}
		if q.Arguments["x-dead-letter-exchange"] != "dead_letter" || q.Arguments["x-dead-letter-routing-key"] != r.DeadLetterQueue {
			t.Errorf("queue %s dead-letter arguments = %v", r.Queue, q.Arguments)
		}
		if _, ok := queues[r.DeadLetterQueue]; !ok {
			t.Errorf("DLQ %s missing", r.DeadLetterQueue)
		}
	}
	if _, ok := queues[routing.UnroutedQueue]; !ok {
		t.Errorf("unrouted queue missing")
	}
	bindings := map[string]bool{}
	for _, b := range rabbitmqtest.Bindings(t, vh) {
		bindings[b.Source+" "+b.RoutingKey+" "+b.Destination] = true
	}
	for _, want := range []string{
		"audit_events # chronicle.all", "audit_events security.# chronicle.security",
		"audit_events user.# chronicle.users", "audit_events billing.# chronicle.billing",
		"dead_letter chronicle.security.dlq chronicle.security.dlq", "dead_letter chronicle.all.dlq chronicle.all.dlq",
		"chronicle.unrouted  chronicle.unrouted",
	} {
		if !bindings[want] {
			t.Errorf("binding %q missing; have %v", want, bindings)
		}
	}
	for _, x := range rabbitmqtest.Exchanges(t, vh) {
		switch x.Name {
		case "audit_events":
			if x.Type != "topic" || !x.Durable || x.Arguments["alternate-exchange"] != "chronicle.unrouted" {
				t.Errorf("audit_events = %+v", x)
			}
		case "dead_letter":
			if x.Type != "direct" || !x.Durable {
				t.Errorf("dead_letter = %+v", x)
			}
		}
	}
}

func TestTopologyConflict(t *testing.T) {
	t.Parallel()
	u, _ := rabbitmqtest.Vhost(t)
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	// The original system's catch-all queue: no dead-letter arguments.
	if _, err := ch.QueueDeclare("chronicle.all", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = rabbitmq.New(t.Context(), rabbitmq.Config{URL: u, Routing: routing.Default(), Logger: testlog.Warn(t)})
	if err == nil || !strings.Contains(err.Error(), `declare queue "chronicle.all": RabbitMQ already has it with different settings`) || !strings.Contains(err.Error(), "x-dead-letter-exchange") {
		t.Fatalf("New with a conflicting queue: %v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	_, vh := rabbitmqtest.Vhost(t)
	base := strings.Replace(rabbitmqtest.AMQPBase(), "guest:guest@", "guest:wrong-password@", 1)
	_, err := rabbitmq.New(t.Context(), rabbitmq.Config{URL: base + vh, Routing: routing.Default(), Logger: testlog.Warn(t)})
	if err == nil || !strings.Contains(err.Error(), "refused the login") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = rabbitmq.New(t.Context(), rabbitmq.Config{URL: rabbitmqtest.AMQPBase() + "no-such-vhost-" + vh, Routing: routing.Default(), Logger: testlog.Warn(t)})
	if err == nil || !strings.Contains(err.Error(), "vhost") {
		t.Fatalf("unknown vhost: %v", err)
	}
}

// An unreachable broker is not fatal: the transport says it is down and
// connects when the broker appears.
func TestUnreachableThenUp(t *testing.T) {
	t.Parallel()
	u, _ := rabbitmqtest.Vhost(t)
	proxy := tcpproxy.New(t, "127.0.0.1:5672")
	proxyURL := strings.Replace(u, "127.0.0.1:5672", proxy.Addr, 1)
	tr := newTransport(t, rabbitmq.Config{URL: proxyURL, Store: transporttest.NewRecorder()})
	err := tr.Publish(t.Context(), []*chronicle.Event{transporttest.NewEvent("a.b")})
	var ue *chronicle.UnavailableError
	if !errors.As(err, &ue) || ue.RetryAfter <= 0 {
		t.Fatalf("Publish while unreachable: %v", err)
	}
	if err := tr.Ping(t.Context()); !errors.Is(err, chronicle.ErrUnavailable) {
		t.Fatalf("Ping while unreachable: %v", err)
	}
	proxy.Open()
	transporttest.Eventually(t, 10*time.Second, "the transport to connect", func() bool { return tr.Ping(t.Context()) == nil })
	if err := tr.Publish(t.Context(), []*chronicle.Event{transporttest.NewEvent("a.b")}); err != nil {
		t.Fatalf("Publish after connect: %v", err)
	}
}

// Force-closing the connections while events are published: the transport
// reconnects by itself, and every event that was confirmed is stored once.
func TestConnectionLoss(t *testing.T) {
	t.Parallel()
	u, vh := rabbitmqtest.Vhost(t)
	rec := transporttest.NewRecorder()
	tr := newTransport(t, rabbitmq.Config{URL: u, Store: rec})
	if err := tr.StartConsumers(t.Context(), "analytics"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepted []string
	refused := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := transporttest.NewEvent("document.viewed")
				err := tr.Publish(t.Context(), []*chronicle.Event{e})
				mu.Lock()
				if err == nil {
					accepted = append(accepted, e.ID)
				} else if errors.Is(err, chronicle.ErrUnavailable) {
					refused++
				} else {
					t.Errorf("Publish: %v", err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	// The management API lists new connections after a moment.
	transporttest.Eventually(t, 15*time.Second, "connections listed", func() bool { return len(rabbitmqtest.Connections(t, vh)) >= 2 })
	time.Sleep(300 * time.Millisecond)
	closed := rabbitmqtest.CloseConnections(t, vh)
	time.Sleep(300 * time.Millisecond)
	transporttest.Eventually(t, 15*time.Second, "the transport to reconnect", func() bool { return tr.Ping(t.Context()) == nil })
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	transporttest.Eventually(t, 30*time.Second, "every confirmed event stored", func() bool { return rec.Stored(accepted...) })
	t.Logf("closed %d connections; %d events confirmed, %d refused while down; reconnects %d", closed, len(accepted), refused, tr.Stats().Reconnects)
	if tr.Stats().Reconnects == 0 {
		t.Fatal("no reconnect happened")
	}
}

func rabbitmqVhost(b testing.TB) (string, string) { return rabbitmqtest.Vhost(b) }

func singleRouteConfig(b testing.TB, queueType string) *routing.Config {
	return transporttest.SingleRoute(b, `queue_type = "`+queueType+`"`)
}

// Reconnecting leaks nothing: after forced connection losses the process
// runs as many goroutines as before them. Not parallel: it counts the
// process's goroutines.
func TestNoGoroutineLeakAcrossReconnects(t *testing.T) {
	u, vh := rabbitmqtest.Vhost(t)
	rec := transporttest.NewRecorder()
	tr := newTransport(t, rabbitmq.Config{URL: u, Store: rec})
	if err := tr.StartConsumers(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	publishOne := func() {
		t.Helper()
		transporttest.Eventually(t, 15*time.Second, "a publish to go through", func() bool {
			return tr.Publish(t.Context(), []*chronicle.Event{transporttest.NewEvent("security.login")}) == nil
		})
	}
	publishOne()
	transporttest.Eventually(t, 15*time.Second, "connections listed", func() bool { return len(rabbitmqtest.Connections(t, vh)) >= 2 })
	time.Sleep(200 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := range 2 {
		rabbitmqtest.CloseConnections(t, vh)
		transporttest.Eventually(t, 15*time.Second, "the reconnect", func() bool { return tr.Stats().Reconnects >= int64(2*(i+1)) })
		transporttest.Eventually(t, 15*time.Second, "healthy again", func() bool { return tr.Ping(t.Context()) == nil })
		publishOne()
		transporttest.Eventually(t, 15*time.Second, "connections listed again", func() bool { return len(rabbitmqtest.Connections(t, vh)) >= 2 })
	}
	var after int
	transporttest.Eventually(t, 10*time.Second, "goroutines to settle", func() bool {
		after = runtime.NumGoroutine()
		return after <= before+2
	})
	t.Logf("goroutines: %d before two rounds of reconnects, %d after", before, after)
}

// A message that keeps failing its consumers (redelivered past the quorum
// queue's delivery limit) is dead-lettered by the broker; its story comes
// from x-death.
func TestDeliveryLimitDeadLetter(t *testing.T) {
	t.Parallel()
	u, _ := rabbitmqtest.Vhost(t)
	rc := transporttest.SingleRoute(t, `queue_type = "quorum"`, `delivery_limit = 2`)
	tr := newTransport(t, rabbitmq.Config{URL: u, Routing: rc})
	e := transporttest.NewEvent("document.viewed")
	if err := tr.Publish(t.Context(), []*chronicle.Event{e}); err != nil {
		t.Fatal(err)
	}
	// A consumer that crashes on it every time: the broker redelivers.
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	for i := 0; i < 10; i++ {
		d, ok, err := ch.Get("chronicle.all", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		d.Nack(false, true)
	}
	var dl []chronicle.DeadLetter
	transporttest.Eventually(t, 10*time.Second, "the broker to dead-letter it", func() bool {
		dl, _ = tr.PeekDeadLetters(t.Context(), "chronicle.all.dlq", 0)
		return len(dl) == 1
	})
	d := dl[0]
	if d.ID != e.ID || !strings.HasPrefix(d.Reason, "delivery limit reached") || d.Queue != "chronicle.all" || d.Count < 1 || d.Exchange != "audit_events" || d.RoutingKey != "document.viewed" {
		t.Fatalf("dead letter = %+v", d)
	}
}
