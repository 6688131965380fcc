// Package endpoint assembles one Chronicle process, the Messaging Endpoint
// of SPEC §1: it opens the configured store, builds the transport behind
// the Messaging Gateway, starts the consumers of its role and serves HTTP,
// as the mode (full, producer, consumer) says; and it stops them in the
// order that loses nothing.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/memory"
	"github.com/chronicle-audit/chronicle/metrics"
	"github.com/chronicle-audit/chronicle/postgres"
	"github.com/chronicle-audit/chronicle/rabbitmq"
	"github.com/chronicle-audit/chronicle/routing"
	"github.com/chronicle-audit/chronicle/sqlite"
)

// Endpoint is one running Chronicle process.
type Endpoint struct {
	cfg    *config.Config
	logger *slog.Logger

	store    chronicle.Store // rawStore, measured
	rawStore chronicle.Store
	gateway  chronicle.Gateway
	metrics  *metrics.Metrics
	stop     chan struct{} // closed by Close: background chores end
	api      *httpapi.Server
	srv      *http.Server
	ln       net.Listener
	served   chan error
}

// New returns an endpoint for cfg; Open starts it.
func New(cfg *config.Config, logger *slog.Logger) *Endpoint {
	return &Endpoint{cfg: cfg, logger: logger, stop: make(chan struct{})}
}

// Run starts the endpoint, waits for ctx to end (a signal), then stops it
// within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	e := New(cfg, logger)
	if err := e.Open(ctx); err != nil {
		e.Close(context.Background())
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err := <-e.served:
		logger.Error("HTTP server stopped", "err", err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := e.Close(stopCtx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// Open starts everything the mode asks for. On error, Close releases
// what was opened.
func (e *Endpoint) Open(ctx context.Context) error {
	c := e.cfg
	e.logStart()
	var err error
	e.metrics = metrics.New()
	if e.rawStore, err = e.openStore(ctx); err != nil {
		return err
	}
	e.store = metrics.InstrumentStore(e.rawStore, e.metrics)
	if e.gateway, err = e.openGateway(ctx); err != nil {
		return err
	}
	e.metrics.WatchQueues(e.gateway)
	if c.RunsConsumers() {
		if err := e.gateway.StartConsumers(ctx, c.ConsumerRole); err != nil {
			return fmt.Errorf("start consumers: %w", err)
		}
		e.logConsumers()
	}
	if !c.ServesHTTP() {
		return nil
	}
	apiCfg := httpapi.Config{Transport: e.gateway.Name(), Store: e.store, Logger: e.logger, HealthOnly: !c.ServesAPI(),
		Metrics: e.metrics, MaxInflight: c.MaxInflight}
	if apiCfg.Auth, err = e.authSource(); err != nil {
		return err
	}
	if is, ok := e.rawStore.(chronicle.IdempotencyStore); ok {
		apiCfg.Idempotency = is
		e.forgetIdempotencyKeys(is)
	}
	if c.ServesAPI() {
		apiCfg.Gateway = e.gateway
		if dlc, ok := e.gateway.(chronicle.DeadLetterChannel); ok {
			apiCfg.DeadLetters = dlc
		}
	} else {
		apiCfg.Gateway = healthOnly{e.gateway}
	}
	e.api = httpapi.New(apiCfg)
	e.ln, err = net.Listen("tcp", c.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s (CHRONICLE_PORT): %w", c.Addr(), err)
	}
	e.srv = &http.Server{
		Handler:           e.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.logger.Handler(), slog.LevelWarn),
	}
	e.served = make(chan error, 1)
	go func() { e.served <- e.srv.Serve(e.ln) }()
	e.logger.Info("listening", "addr", e.ln.Addr().String(), "api", c.ServesAPI())
	if c.DebugAddr != "" {
		e.serveDebug(c.DebugAddr)
	}
	return nil
}

// authSource builds the API keys in force, and says loudly when there
// are none.
func (e *Endpoint) authSource() (*auth.Source, error) {
	c := e.cfg
	switch {
	case c.APIKeysFile != "":
		src, err := auth.LoadFile(c.APIKeysFile, func(err error) { e.logger.Error("API keys: " + err.Error()) })
		if err != nil {
			return nil, fmt.Errorf("CHRONICLE_API_KEYS_FILE: %w", err)
		}
		e.logger.Info("access control on", "keys", src.Keyring().Len(), "file", c.APIKeysFile)
		return src, nil
	case c.APIKeys != nil:
		e.logger.Info("access control on", "keys", c.APIKeys.Len())
		return auth.NewSource(c.APIKeys), nil
	}
	if c.ServesAPI() {
		e.logger.Warn("ACCESS CONTROL IS OFF: anyone who can reach this port can read and write audit events; set CHRONICLE_API_KEYS before exposing it")
	}
	return nil, nil
}

// forgetIdempotencyKeys deletes expired idempotency keys every hour.
func (e *Endpoint) forgetIdempotencyKeys(is chronicle.IdempotencyStore) {
	go func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := is.ForgetIdempotencyKeys(ctx, time.Now().Add(-e.cfg.IdempotencyTTL))
			cancel()
			if err != nil {
				e.logger.Warn("forget expired idempotency keys", "err", err)
			} else if n > 0 {
				e.logger.Info("forgot expired idempotency keys", "count", n)
			}
			select {
			case <-t.C:
			case <-e.stop:
				return
			}
		}
	}()
}

// serveDebug serves the profiler on its own address, never on the API's.
func (e *Endpoint) serveDebug(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		err := http.ListenAndServe(addr, mux)
		e.logger.Warn("debug server stopped", "addr", addr, "err", err)
	}()
	e.logger.Info("profiler listening", "addr", addr)
}

// Addr is the address HTTP listens on, or "" when it does not.
func (e *Endpoint) Addr() string {
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Close stops in the order that loses nothing: new requests get 503 and
// the listener closes; requests in flight finish; the gateway stops
// intake and its consumers settle (in process: drain) what they hold;
// the store closes last.
func (e *Endpoint) Close(ctx context.Context) error {
	var errs []error
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	if e.api != nil {
		e.api.Drain()
	}
	if e.srv != nil {
		if err := e.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop HTTP: %w", err))
		}
	}
	if e.gateway != nil {
		if err := e.gateway.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s transport: %w", e.gateway.Name(), err))
		}
	}
	if e.rawStore != nil {
		if err := e.rawStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s store: %w", e.store.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (e *Endpoint) openStore(ctx context.Context) (chronicle.Store, error) {
	c := e.cfg
	switch c.Store {
	case config.StoreMemory:
		return memory.New(), nil
	case config.StoreSQLite:
		s, err := sqlite.Open(ctx, c.SQLitePath, sqlite.Options{Logger: e.logger, NoMigrate: !c.Migrate})
		if err != nil {
			return nil, fmt.Errorf("open store (CHRONICLE_SQLITE_PATH): %w", err)
		}
		return s, nil
	case config.StorePostgres:
		s, err := postgres.Open(ctx, c.DatabaseURL, postgres.Options{Logger: e.logger, PoolSize: c.DBPoolSize, NoMigrate: !c.Migrate})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("CHRONICLE_STORE=%s is not available in this build", c.Store)
}

func (e *Endpoint) openGateway(ctx context.Context) (chronicle.Gateway, error) {
	c := e.cfg
	switch c.Transport {
	case config.TransportInproc:
		icfg := inproc.Config{
			Routing:       c.Routing,
			Store:         e.store,
			Capacity:      c.QueueCapacity,
			BatchSize:     c.BatchSize,
			ConsumerCount: c.ConsumerCount,
			Logger:        e.logger,
		}
		// With SQLite the queues are journaled in the events' database.
		if j, ok := e.rawStore.(chronicle.Journal); ok {
			icfg.Journal = metrics.InstrumentJournal(j, e.metrics)
		}
		t, err := inproc.New(ctx, icfg)
		if err != nil {
			return nil, err
		}
		if !t.Durable() {
			e.logger.Warn("in-process queues are in memory only: events accepted but not yet stored are lost if the process dies", "store", e.store.Name())
		}
		return t, nil
	case config.TransportRabbitMQ:
		t, err := rabbitmq.New(ctx, rabbitmq.Config{
			URL:             c.RabbitMQURL,
			Routing:         c.Routing,
			Store:           e.store,
			PublishChannels: c.PublishChannels,
			ConfirmTimeout:  c.ConfirmTimeout,
			Prefetch:        c.Prefetch,
			BatchSize:       c.BatchSize,
			BatchWait:       c.BatchWait,
			ConsumerCount:   c.ConsumerCount,
			Name:            "chronicle " + c.Mode,
			Logger:          e.logger,
		})
		if err != nil {
			return nil, fmt.Errorf("RabbitMQ: %w", err)
		}
		e.metrics.CounterFunc("chronicle_rabbitmq_reconnects_total", "Connections to RabbitMQ re-established after a loss.",
			func() float64 { return float64(t.Stats().Reconnects) })
		e.metrics.GaugeFunc("chronicle_rabbitmq_confirms_outstanding", "Published messages awaiting the broker's confirm.",
			func() float64 { return float64(t.Stats().ConfirmsOutstanding) })
		e.metrics.CounterFunc("chronicle_dead_lettered_total", "Messages consumers sent to a dead-letter queue.",
			func() float64 { return float64(t.Stats().DeadLettered) })
		return t, nil
	}
	return nil, fmt.Errorf("CHRONICLE_TRANSPORT=%s is not available in this build", c.Transport)
}

// logStart writes the start-up lines the seed writes: transport, store,
// mode, routes.
func (e *Endpoint) logStart() {
	c := e.cfg
	e.logger.Info("Chronicle starting", "transport", c.Transport, "store", c.Store, "mode", c.Mode,
		"role", c.ConsumerRole, "config", c.RoutingSource)
	for _, w := range c.Routing.Warnings {
		e.logger.Warn("routing configuration: " + w)
	}
	for _, r := range c.Routing.Routes {
		e.logger.Info("route", "name", r.Name, "exchange", r.Exchange, "routing_key", r.RoutingKey,
			"queue", r.Queue, "dlq", r.DeadLetterQueue)
	}
	e.logger.Info("unrouted events", "queue", routing.UnroutedQueue)
}

func (e *Endpoint) logConsumers() {
	plan, err := e.plan()
	if err != nil {
		return
	}
	for _, a := range plan {
		e.logger.Info("consumers", "role", e.cfg.ConsumerRole, "route", a.Route.Name, "queue", a.Route.Queue, "workers", a.Workers)
	}
}

func (e *Endpoint) plan() ([]routing.Assignment, error) {
	if t, ok := e.gateway.(*inproc.Transport); ok {
		return t.Plan(e.cfg.ConsumerRole)
	}
	return e.cfg.Routing.Plan(e.cfg.ConsumerRole, e.cfg.ConsumerCount)
}

// healthOnly lets a consumer process's /health ping the transport without
// exposing Publish.
type healthOnly struct{ chronicle.Gateway }

func (h healthOnly) Publish(context.Context, []*chronicle.Event) error {
	return chronicle.Errorf(chronicle.ErrUnavailable, "this process is a consumer: it does not accept events")
}
