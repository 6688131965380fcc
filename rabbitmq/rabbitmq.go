// Package rabbitmq is the distributed transport behind the Messaging
// Gateway: the routing configuration's topology declared on RabbitMQ,
// persistent messages published with publisher confirms, and competing
// consumers that ack only after the store has committed. A lost connection
// is re-established with capped exponential backoff; meanwhile Publish
// answers ErrUnavailable and consumers resume by themselves.
//
// A process keeps up to two connections: one for publishing (a pool of
// confirm-mode channels) and one for consuming (a channel per worker), so
// the broker's flow control on publishers never stalls acknowledgements.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/consumer"
	"github.com/chronicle-audit/chronicle/routing"
)

// Defaults of Config.
const (
	DefaultPublishChannels = 4
	DefaultConfirmTimeout  = 10 * time.Second
	DefaultPrefetch        = 512
	DefaultBatchSize       = consumer.DefaultBatchSize
	DefaultBatchWait       = 5 * time.Millisecond
	DefaultRetryMin        = 100 * time.Millisecond
	DefaultRetryMax        = 10 * time.Second
)

// Config configures a Transport.
type Config struct {
	// URL is the broker, amqp://user:pass@host:port/vhost. Required.
	URL string
	// Routing is the topology. Required.
	Routing *routing.Config
	// Store receives what consumers take. Required to consume.
	Store chronicle.EventStore
	// Check decides whether a delivery is a storable event (the
	// consumers' Message Translator). Required to consume.
	Check chronicle.Check
	// PublishChannels is the size of the publisher's channel pool.
	// Defaults to DefaultPublishChannels.
	PublishChannels int
	// ConfirmTimeout bounds the wait for a publisher confirm; past it
	// Publish answers ErrUnavailable. Defaults to DefaultConfirmTimeout.
	ConfirmTimeout time.Duration
	// Prefetch is each consumer channel's QoS. Defaults to
	// DefaultPrefetch.
	Prefetch int
	// BatchSize bounds the deliveries stored in one transaction and acked
	// together. Defaults to DefaultBatchSize.
	BatchSize int
	// BatchWait is how long a worker waits for a batch to fill once it
	// has a first delivery. Defaults to DefaultBatchWait.
	BatchWait time.Duration
	// ConsumerCount, when positive, is the number of workers per queue;
	// otherwise the role's instances.
	ConsumerCount int
	// RetryMin and RetryMax bound the backoff between reconnection
	// attempts and between attempts to settle a batch. Default to
	// DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Observer is told what consumers do. Optional.
	Observer consumer.Observer
	// Health records consumers that keep failing. Optional.
	Health *consumer.Health
	// Process names this process (host:pid) and StoreName the store in
	// the hops of each event's history. Optional.
	Process, StoreName string
	// Name labels this process's connections (shown by the broker).
	// Defaults to "chronicle".
	Name string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock for dead-letter times. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() {
	if c.PublishChannels <= 0 {
		c.PublishChannels = DefaultPublishChannels
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.Prefetch <= 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Name == "" {
		c.Name = "chronicle"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	if c.URL == "" {
		return errors.New("rabbitmq: URL is required")
	}
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return fmt.Errorf("rabbitmq: RABBITMQ_URL %s: %w", redact(c.URL), err)
	}
	if c.Routing == nil {
		return errors.New("rabbitmq: Routing is required")
	}
	return nil
}

// RetryAfter is what a refused publisher is told to wait.
const RetryAfter = 2 * time.Second

// Transport is the RabbitMQ chronicle.Gateway.
type Transport struct {
	cfg      Config
	exchange string
	router   *routing.Router // for the queues a published hop names
	logger   *slog.Logger

	// mu guards closing and pub; Publish holds it shared while it
	// registers in inflight, so Close can wait for every publish.
	mu       sync.RWMutex
	closing  bool
	pub      *publisher // nil while the publishing connection is down
	pubErr   error      // why pub is nil
	inflight sync.WaitGroup

	stop  chan struct{} // closed by Close: supervisors stop reconnecting
	sups  sync.WaitGroup
	cons  *consumers // nil until StartConsumers
	stats stats
}

var _ chronicle.Gateway = (*Transport)(nil)

// New connects to the broker, declares the topology and readies the
// publisher. Wrong credentials, an unknown vhost or a topology that
// conflicts with what the broker holds are errors. An unreachable broker
// is not: New returns a Transport that keeps reconnecting with backoff and
// answers ErrUnavailable meanwhile, so services can start in any order.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		exchange: cfg.Routing.PublishExchange().Name,
		router:   routing.NewRouter(cfg.Routing),
		logger:   cfg.Logger,
		stop:     make(chan struct{}),
		pubErr:   errors.New("not connected yet"),
	}
	conn, err := t.dial("publisher")
	switch {
	case err == nil:
		if err := t.startPublisher(conn); err != nil {
			conn.Close()
			return nil, err
		}
	case isFatal(err):
		return nil, err
	default:
		t.logger.Warn("rabbitmq: broker unreachable; retrying in the background", "url", redact(cfg.URL), "err", err)
		t.setPub(nil, err)
	}
	t.sups.Go(func() { t.supervise("publisher", conn, t.startPublisher) })
	return t, nil
}

// Name implements chronicle.Gateway.
func (t *Transport) Name() string { return "rabbitmq" }

// Ping implements chronicle.Pinger: the broker is reachable when the
// connections this process needs are up.
func (t *Transport) Ping(context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closing {
		return chronicle.Errorf(chronicle.ErrClosed, "transport is shutting down")
	}
	if t.pub == nil {
		return chronicle.Unavailable(RetryAfter, unreachable, t.pubErr)
	}
	if t.cons != nil {
		if err := t.cons.err(); err != nil {
			return chronicle.Unavailable(RetryAfter, "the RabbitMQ consumer connection is down", err)
		}
	}
	return nil
}

// Congested implements chronicle.Publisher: while the broker cannot be
// reached, every publish would be refused.
func (t *Transport) Congested() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.pub == nil && !t.closing {
		return chronicle.Unavailable(RetryAfter, unreachable, t.pubErr)
	}
	return nil
}

// unreachable is what clients are told while the broker cannot be
// reached; the connection error goes to the logs.
const unreachable = "RabbitMQ is unreachable"

func (t *Transport) setPub(p *publisher, err error) {
	t.mu.Lock()
	t.pub, t.pubErr = p, err
	t.mu.Unlock()
}

// dial opens one connection, named so operators (and tests) can tell
// Chronicle's connections apart.
func (t *Transport) dial(role string) (*amqp.Connection, error) {
	host, _ := os.Hostname()
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(fmt.Sprintf("%s %s %s:%d", t.cfg.Name, role, host, os.Getpid()))
	conn, err := amqp.DialConfig(t.cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: props,
		Dial:       amqp.DefaultDial(5 * time.Second),
	})
	if err != nil {
		return nil, classifyDial(t.cfg.URL, err)
	}
	return conn, nil
}

// fatalError is a broker answer that retrying cannot change.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func isFatal(err error) bool {
	var f *fatalError
	return errors.As(err, &f)
}

// classifyDial turns a dial error into a clear message: credentials and
// vhost problems are fatal, anything else (refused, timeout) transient.
func classifyDial(raw string, err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused:
			return &fatalError{fmt.Errorf("RabbitMQ at %s refused the login (check RABBITMQ_USER/RABBITMQ_PASS or RABBITMQ_URL): %s", redact(raw), ae.Reason)}
		case amqp.NotAllowed:
			return &fatalError{fmt.Errorf("RabbitMQ at %s refused the vhost (check RABBITMQ_VHOST or RABBITMQ_URL): %s", redact(raw), ae.Reason)}
		}
	}
	return fmt.Errorf("connect to RabbitMQ at %s: %w", redact(raw), err)
}

// supervise keeps one connection up until Close: when it closes, it dials
// again with capped exponential backoff and runs setup on the new one.
// setup runs on every new connection; it declares what it needs and
// returns once the connection is in use.
func (t *Transport) supervise(role string, conn *amqp.Connection, setup func(*amqp.Connection) error) {
	wait := t.cfg.RetryMin
	for {
		if conn != nil {
			wait = t.cfg.RetryMin
			closed := conn.NotifyClose(make(chan *amqp.Error, 1))
			select {
			case err := <-closed:
				t.stats.reconnects.Add(1)
				t.logger.Warn("rabbitmq: connection lost; reconnecting", "role", role, "err", err)
				t.onLost(role, err)
			case <-t.stop:
				conn.Close()
				return
			}
			conn = nil
		}
		select {
		case <-time.After(wait):
		case <-t.stop:
			return
		}
		wait = min(wait*2, t.cfg.RetryMax)
		c, err := t.dial(role)
		if err == nil {
			err = setup(c)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			t.logger.Warn("rabbitmq: reconnect failed", "role", role, "err", err, "retry_in", wait)
			t.onLost(role, err)
			continue
		}
		t.logger.Info("rabbitmq: connected", "role", role)
		conn = c
	}
}

// onLost records why a connection is down, for Ping and Publish.
func (t *Transport) onLost(role string, err error) {
	if err == nil {
		err = errors.New("connection closed")
	}
	switch role {
	case "publisher":
		t.setPub(nil, err)
	case "consumer":
		if t.cons != nil {
			t.cons.setErr(err)
		}
	}
}

// Close implements chronicle.Gateway: intake stops and outstanding
// confirms are awaited; consumers stop taking deliveries, settle and ack
// what they hold; then the connections close. Unacked deliveries left when
// ctx ends are requeued by the broker: nothing is lost.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	t.mu.Unlock()

	var errs []error
	done := make(chan struct{})
	go func() { t.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("publishes still awaiting confirms at shutdown"))
	}
	if t.cons != nil {
		if err := t.cons.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(t.stop)
	t.sups.Wait()
	return errors.Join(errs...)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
