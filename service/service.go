// Package service assembles one Chronicle process, the Messaging Endpoint:
// it opens the configured store, builds the transport behind the Messaging
// Gateway, starts the consumers of its role and serves HTTP, as the mode
// (full, producer, consumer) says; and it stops them in the order that
// loses nothing. It is the only package that knows every implementation,
// so it never has to guess what a part can do.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/console"
	"github.com/chronicle-audit/chronicle/consumer"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/integrity"
	"github.com/chronicle-audit/chronicle/metrics"
	"github.com/chronicle-audit/chronicle/outbound"
	"github.com/chronicle-audit/chronicle/routing"
)

// Service is one running Chronicle process.
type Service struct {
	cfg    *config.Config
	logger *slog.Logger
	// process names this process in the hops of events' histories.
	process string

	store  *Store
	logKey *integrity.Key
	// logKeyVerifier is the log's verifier key when this process does not
	// sign (logKey is nil).
	logKeyVerifier string
	gateway        chronicle.Gateway
	// plan is what the gateway's consumers run for a role.
	plan    func(role string) ([]routing.Assignment, error)
	metrics *metrics.Metrics
	health  *consumer.Health
	sinks   *outbound.Manager
	api     *httpapi.Server
	srv     *http.Server
	debug   *http.Server
	ln      net.Listener
	served  chan error

	// chores are background goroutines (expiring idempotency keys, the
	// profiler); stopping ends them and Close waits for them.
	chores   sync.WaitGroup
	stopping context.Context
	stop     context.CancelFunc
}

// New returns a service for cfg; Open starts it.
func New(cfg *config.Config, logger *slog.Logger) *Service {
	host, _ := os.Hostname()
	s := &Service{cfg: cfg, logger: logger, health: &consumer.Health{}, process: fmt.Sprintf("%s:%d", host, os.Getpid())}
	s.stopping, s.stop = context.WithCancel(context.Background())
	return s
}

// Run starts the service, waits for ctx to end (a signal), then stops it
// within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	s := New(cfg, logger)
	if err := s.Open(ctx); err != nil {
		s.Close(context.Background())
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err := <-s.served:
		logger.Error("HTTP server stopped", "err", err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := s.Close(stopCtx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// Open starts everything the mode asks for. On error, Close releases
// what was opened.
func (s *Service) Open(ctx context.Context) error {
	c := s.cfg
	s.logStart()
	s.metrics = metrics.New()
	var err error
	if s.store, err = OpenStore(ctx, c, s.logger, false); err != nil {
		return err
	}
	if err := s.signCheckpoints(s.stopping); err != nil {
		return err
	}
	if err := s.openGateway(ctx); err != nil {
		return err
	}
	s.metrics.WatchQueues(s.gateway)
	if c.RunsConsumers() {
		if err := s.gateway.StartConsumers(ctx, c.ConsumerRole); err != nil {
			return fmt.Errorf("start consumers: %w", err)
		}
		s.logConsumers()
	}
	if err := s.startSinks(); err != nil {
		return err
	}
	if !c.ServesHTTP() {
		return nil
	}
	return s.serve()
}

// pipeline is the ingestion pipeline: of POST /events, and of the
// messages that applications publish straight to the exchange.
func (s *Service) pipeline() ingest.Pipeline {
	return ingest.DefaultPipeline(ingest.Stamper{},
		ingest.TimeBounds{MaxFuture: s.cfg.OccurredMaxFuture, MaxPast: s.cfg.OccurredMaxPast})
}

// serve builds the HTTP API for the mode and starts listening.
func (s *Service) serve() error {
	c := s.cfg
	apiCfg := httpapi.Config{
		Pipeline:         s.pipeline(),
		Process:          s.process,
		Transport:        s.gateway.Name(),
		Store:            s.store,
		LogKey:           s.verifierKey(),
		Health:           []chronicle.Pinger{s.gateway},
		Sinks:            s.sinks,
		HealthOnly:       !c.ServesAPI(),
		Metrics:          s.metrics,
		MaxInflight:      c.MaxInflight,
		MaxBufferedBytes: c.MaxBufferedBytes,
		BodyTimeout:      c.BodyTimeout,
		StallTimeout:     c.StallTimeout,
		Version:          buildVersion(),
		Logger:           s.logger,
	}
	if c.RunsConsumers() {
		apiCfg.Health = append(apiCfg.Health, s.health)
	}
	if c.ServesAPI() {
		apiCfg.Publisher, apiCfg.Queues, apiCfg.DeadLetters = s.gateway, s.gateway, s.gateway
		apiCfg.Console = console.Handler()
		s.expireIdempotencyKeys()
	}
	var err error
	if apiCfg.Auth, err = s.authSource(); err != nil {
		return err
	}
	s.api = httpapi.New(apiCfg)
	if s.ln, err = net.Listen("tcp", c.Addr()); err != nil {
		return fmt.Errorf("listen on %s (CHRONICLE_PORT): %w", c.Addr(), err)
	}
	s.srv = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(s.ln) }()
	if c.AccessControl() || c.ListenHost != "127.0.0.1" {
		s.logger.Info("listening", "addr", s.ln.Addr().String(), "api", c.ServesAPI())
	} else {
		s.logger.Info("listening on the loopback interface only: access control is off (set CHRONICLE_API_KEYS, or CHRONICLE_LISTEN_HOST=* to listen on every interface)",
			"addr", s.ln.Addr().String(), "api", c.ServesAPI())
	}
	if c.DebugAddr != "" {
		return s.serveDebug(c.DebugAddr, apiCfg.Auth)
	}
	return nil
}

// verifierKey is the verifier key of the log's checkpoints.
func (s *Service) verifierKey() string {
	if s.logKey != nil {
		return s.logKey.Verifier
	}
	return s.logKeyVerifier
}

// buildVersion names the build for /health: the module's version, else
// the commit it was built from (with "+dirty" for uncommitted changes),
// else "devel".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev + dirty
}

// Addr is the address HTTP listens on, or "" when it does not.
func (s *Service) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops in the order that loses nothing: new requests get 503 and
// the listener closes; requests in flight finish; the gateway stops
// intake and its consumers settle (in process: drain) what they hold;
// background chores end; the store closes last. ctx bounds it all.
func (s *Service) Close(ctx context.Context) error {
	var errs []error
	if s.api != nil {
		s.api.Drain()
	}
	if s.srv != nil {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop HTTP: %w", err))
		}
	}
	if s.debug != nil {
		if err := s.debug.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the profiler: %w", err))
		}
	}
	if s.gateway != nil {
		if err := s.gateway.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s transport: %w", s.gateway.Name(), err))
		}
	}
	if s.sinks != nil {
		if err := s.sinks.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.stop()
	s.chores.Wait()
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s store: %w", s.store.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// startSinks starts delivering the routing file's sinks, and exports
// their metrics. Every process runs them: the store's lease lets one
// process at a time deliver each sink.
func (s *Service) startSinks() error {
	m, err := outbound.New(outbound.Config{Store: s.store, Sinks: s.cfg.Routing.Sinks, Source: s.cfg.LogOrigin, Logger: s.logger})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	s.sinks = m
	s.metrics.WatchSinks(func(ctx context.Context) []metrics.SinkFigures {
		reports := m.Reports(ctx)
		out := make([]metrics.SinkFigures, len(reports))
		for i, r := range reports {
			out[i] = metrics.SinkFigures(r)
		}
		return out
	})
	return nil
}

// expireIdempotencyKeys deletes expired idempotency keys every hour until
// the service stops.
func (s *Service) expireIdempotencyKeys() {
	s.chores.Go(func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(s.stopping, time.Minute)
			n, err := s.store.ForgetIdempotencyKeys(ctx, time.Now().Add(-s.cfg.IdempotencyTTL))
			cancel()
			switch {
			case s.stopping.Err() != nil:
				return
			case err != nil:
				s.logger.Warn("forget expired idempotency keys", "err", err)
			case n > 0:
				s.logger.Info("forgot expired idempotency keys", "count", n)
			}
			select {
			case <-t.C:
			case <-s.stopping.Done():
				return
			}
		}
	})
}

// logStart writes what this process is: transport, store, mode, routes.
func (s *Service) logStart() {
	c := s.cfg
	s.logger.Info("Chronicle starting", "transport", c.Transport, "store", c.Store, "mode", c.Mode,
		"role", c.ConsumerRole, "config", c.RoutingSource)
	for _, w := range c.Routing.Warnings {
		s.logger.Warn("routing configuration: " + w)
	}
	for _, r := range c.Routing.Routes {
		s.logger.Info("route", "name", r.Name, "exchange", r.Exchange, "routing_key", r.RoutingKey,
			"queue", r.Queue, "dlq", r.DeadLetterQueue)
	}
	s.logger.Info("unrouted events", "queue", routing.UnroutedQueue)
}

func (s *Service) logConsumers() {
	plan, err := s.plan(s.cfg.ConsumerRole)
	if err != nil {
		return
	}
	for _, a := range plan {
		s.logger.Info("consumers", "role", s.cfg.ConsumerRole, "route", a.Route.Name, "queue", a.Route.Queue, "workers", a.Workers)
	}
}
