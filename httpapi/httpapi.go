// Package httpapi is Chronicle's HTTP interface: events in through the
// ingestion pipeline and the Messaging Gateway, events out of the store
// with read-time enrichment, the entity registry, health, and the
// operator endpoints. It is the only package that maps domain errors to
// HTTP statuses; every error body is JSON with an "error" field. The
// shapes of its answers are package api's, shared with the clients.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/console"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/metrics"
)

// Defaults of Config.
const (
	DefaultMaxInflight      = 1024
	DefaultMaxBufferedBytes = 64 << 20
	DefaultBodyTimeout      = 10 * time.Second
)

// Config holds what the API serves.
type Config struct {
	// Publisher publishes accepted events. Nil: POST /events is not
	// served.
	Publisher chronicle.Publisher
	// Transport is the canonical transport name shown by /health.
	Transport string
	// Store serves reads, the verifiable log, entities, idempotency keys
	// and health. Required unless HealthOnly.
	Store chronicle.Store
	// LogKey is the verifier key of the log's checkpoints, served by GET
	// /log/key.
	LogKey string
	// Queues, when set, serves GET /queues.
	Queues chronicle.QueueInspector
	// DeadLetters, when set, serves the /dlq endpoints.
	DeadLetters chronicle.DeadLetterChannel
	// Health are the dependencies /health pings besides the store (the
	// transport, the consumers), in order.
	Health []chronicle.Pinger
	// Pipeline processes every event before it is published. Defaults to
	// ingest.DefaultPipeline with the default time bounds.
	Pipeline ingest.Pipeline
	// Process names this process (host:pid) in the accepted hop of each
	// event's history. Optional.
	Process string
	// HealthOnly serves /health (and /metrics) only: consumer mode.
	HealthOnly bool
	// Auth holds the API keys. Nil: access control is off (local use;
	// /health says so).
	Auth *auth.Source
	// Metrics, when set, is served on /metrics and fed by every request.
	Metrics *metrics.Metrics
	// Sinks, when set, serves GET /sinks and POST /sinks/{name}/replay,
	// and /health shows each sink.
	Sinks SinkService
	// Console, when set and the API is served, serves the web console:
	// GET / and everything under console.AssetPrefix, without a key (the
	// page and its assets hold no data; its data calls carry a key).
	Console http.Handler
	// Version is the service's build, shown by /health. Optional.
	Version string
	// MaxInflight bounds the POST /events requests being processed at
	// once; beyond it requests get 429 at once instead of queueing.
	// Defaults to DefaultMaxInflight.
	MaxInflight int
	// MaxBodyBytes bounds every request body, a batch's included.
	// Defaults to ingest.MaxBodyBytes.
	MaxBodyBytes int64
	// MaxBufferedBytes bounds the bytes all request bodies hold at once;
	// beyond it requests get 503. Defaults to DefaultMaxBufferedBytes.
	MaxBufferedBytes int64
	// BodyTimeout bounds the time a client may take to send a request
	// body. Defaults to DefaultBodyTimeout.
	BodyTimeout time.Duration
	// StreamPoll is how often an event stream looks for new events in
	// the log. Defaults to DefaultStreamPoll.
	StreamPoll time.Duration
	// StreamHeartbeat is how long an event stream may send nothing: then
	// it sends a comment line, so proxies keep it open. Defaults to
	// DefaultStreamHeartbeat.
	StreamHeartbeat time.Duration
	// StallTimeout is how long a client of an export or an event stream
	// may take to accept one page: one that stops reading is
	// disconnected. Defaults to DefaultStallTimeout.
	StallTimeout time.Duration
	// Now is the clock of idempotency records. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	if c.Pipeline == nil {
		c.Pipeline = ingest.DefaultPipeline(ingest.Stamper{}, ingest.TimeBounds{})
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = ingest.MaxBodyBytes
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StreamPoll <= 0 {
		c.StreamPoll = DefaultStreamPoll
	}
	if c.StreamHeartbeat <= 0 {
		c.StreamHeartbeat = DefaultStreamHeartbeat
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
}

// Server is the HTTP handler of Chronicle.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	draining atomic.Bool
	inflight chan struct{}
	buffered *budget // bytes held by request bodies
	// closing is closed by Drain: event streams end.
	closing   chan struct{}
	closeOnce sync.Once
	// streams counts the open event streams; stalled, those cut off
	// because their client stopped reading.
	streams, stalled atomic.Int64
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	cfg.withDefaults()
	s := &Server{cfg: cfg, mux: http.NewServeMux(), inflight: make(chan struct{}, cfg.MaxInflight),
		buffered: &budget{limit: cfg.MaxBufferedBytes}, closing: make(chan struct{})}
	s.routes()
	if m := cfg.Metrics; m != nil && !cfg.HealthOnly {
		m.GaugeFunc("chronicle_event_streams", "Open event streams (GET /events/stream).",
			func() float64 { return float64(s.streams.Load()) })
		m.CounterFunc("chronicle_event_streams_stalled_total", "Event streams and exports disconnected because their client stopped reading (CHRONICLE_STALL_TIMEOUT).",
			func() float64 { return float64(s.stalled.Load()) })
	}
	return s
}

// open marks endpoints that need no key; anyScope those that need a
// valid key of any scope.
const (
	open     auth.Scope = 0
	anyScope auth.Scope = 0xff
)

// route is one endpoint: its pattern as the mux takes it, the scope a key
// needs for it, its handler, and when it is served.
type route struct {
	pattern string
	scope   auth.Scope
	handler func(*Server) http.Handler
	// served tells whether cfg serves it; nil: whenever the API is.
	served func(*Config) bool
	// consumer: also served in HealthOnly mode.
	consumer bool
}

// bound makes a handler of one of Server's methods.
func bound(h func(*Server, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
}

func consoleHandler(s *Server) http.Handler { return s.cfg.Console }

// routeTable is every endpoint of the API, the one list both the mux and
// Routes (hence the OpenAPI document's test) read.
var routeTable = []route{
	{pattern: "GET /health", scope: open, handler: bound((*Server).health), consumer: true},
	{pattern: "GET /metrics", scope: open, handler: func(s *Server) http.Handler { return s.cfg.Metrics.Handler() },
		served: func(c *Config) bool { return c.Metrics != nil }, consumer: true},
	{pattern: "GET /openapi.json", scope: open, handler: bound((*Server).openAPI)},
	{pattern: "POST /events", scope: auth.Ingest, handler: bound((*Server).createEvents),
		served: func(c *Config) bool { return c.Publisher != nil }},
	{pattern: "GET /events", scope: auth.Read, handler: bound((*Server).listEvents)},
	{pattern: "GET /events/count", scope: auth.Read, handler: bound((*Server).countEvents)},
	{pattern: "GET /events/stream", scope: auth.Read, handler: bound((*Server).stream)},
	{pattern: "GET /events/{id}", scope: auth.Read, handler: bound((*Server).getEvent)},
	{pattern: "GET /whoami", scope: anyScope, handler: bound((*Server).whoami)},
	{pattern: "GET /entities", scope: auth.Read, handler: bound((*Server).listEntities)},
	{pattern: "GET /entities/{key}", scope: auth.Read, handler: bound((*Server).getEntity)},
	{pattern: "POST /entities", scope: auth.Admin, handler: bound((*Server).putEntity)},
	{pattern: "DELETE /entities/{key}", scope: auth.Admin, handler: bound((*Server).deleteEntity)},
	{pattern: "GET /log/key", scope: auth.Read, handler: bound((*Server).logKey)},
	{pattern: "GET /log/checkpoint", scope: auth.Read, handler: bound((*Server).latestCheckpoint)},
	{pattern: "GET /log/checkpoints", scope: auth.Read, handler: bound((*Server).listCheckpoints)},
	{pattern: "GET /log/consistency", scope: auth.Read, handler: bound((*Server).consistency)},
	{pattern: "GET /log/leaves", scope: auth.Read, handler: bound((*Server).leaves)},
	{pattern: "GET /events/{id}/proof", scope: auth.Read, handler: bound((*Server).proof)},
	{pattern: "GET /events/{id}/receipt", scope: auth.Read, handler: bound((*Server).receipt)},
	{pattern: "GET /events/export", scope: auth.Read, handler: bound((*Server).export)},
	{pattern: "POST /events/{id}/redact", scope: auth.Admin, handler: bound((*Server).redact)},
	{pattern: "GET /queues", scope: auth.Admin, handler: bound((*Server).queues),
		served: func(c *Config) bool { return c.Queues != nil }},
	{pattern: "GET /dlq", scope: auth.Admin, handler: bound((*Server).listDLQs), served: hasDeadLetters},
	{pattern: "GET /dlq/{queue}", scope: auth.Admin, handler: bound((*Server).peekDLQ), served: hasDeadLetters},
	{pattern: "POST /dlq/{queue}/replay", scope: auth.Admin, handler: bound((*Server).replayDLQ), served: hasDeadLetters},
	{pattern: "DELETE /dlq/{queue}", scope: auth.Admin, handler: bound((*Server).purgeDLQ), served: hasDeadLetters},
	{pattern: "GET /sinks", scope: auth.Admin, handler: bound((*Server).listSinks), served: hasSinks},
	{pattern: "POST /sinks/{name}/replay", scope: auth.Admin, handler: bound((*Server).replaySink), served: hasSinks},
	{pattern: "GET /{$}", scope: open, handler: consoleHandler, served: hasConsole},
	{pattern: "GET " + console.AssetPrefix, scope: open, handler: consoleHandler, served: hasConsole},
}

func hasDeadLetters(c *Config) bool { return c.DeadLetters != nil }
func hasConsole(c *Config) bool     { return c.Console != nil }
func hasSinks(c *Config) bool       { return c.Sinks != nil }

func (s *Server) routes() {
	for _, rt := range routeTable {
		if (s.cfg.HealthOnly && !rt.consumer) || (rt.served != nil && !rt.served(&s.cfg)) {
			continue
		}
		s.handle(rt.pattern, rt.scope, rt.handler(s).ServeHTTP)
	}
	s.handle("/", anyScope, s.fallback)
}

// Route is one endpoint of the API as Routes lists it.
type Route struct {
	// Method and Path as the mux has them: GET, /events/{id}; "/{$}" is
	// the root alone, a Path ending in "/" everything below it.
	Method, Path string
	// Scope is what an API key needs: "ingest", "read" or "admin"; "any"
	// for a valid key of any scope; "none" for none (open to all).
	Scope string
}

// Routes lists every endpoint a Server can serve, whatever its Config
// turns on: the API's contract, which its OpenAPI document describes.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, rt := range routeTable {
		method, path, _ := strings.Cut(rt.pattern, " ")
		out[i] = Route{Method: method, Path: path}
		switch rt.scope {
		case open:
			out[i].Scope = "none"
		case anyScope:
			out[i].Scope = "any"
		default:
			out[i].Scope = rt.scope.String()
		}
	}
	return out
}

// handle registers h behind the key check for need: open endpoints take
// no key; the fallback needs a valid key of any scope, so unknown paths
// reveal nothing to anonymous clients.
func (s *Server) handle(pattern string, need auth.Scope, h http.HandlerFunc) {
	if need == open {
		s.mux.HandleFunc(pattern, h)
		return
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth != nil {
			p, ok := s.authenticate(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="chronicle"`)
				s.reject(r, "unauthorized")
				writeError(w, http.StatusUnauthorized, "missing or unknown API key: send Authorization: Bearer <key>")
				return
			}
			if need != anyScope && !p.Scopes.Allows(need) {
				s.reject(r, "forbidden")
				logger(r).Warn("API key lacks the scope", "key", p.Label, "need", need.String(), "has", p.Scopes.String())
				writeError(w, http.StatusForbidden, "this API key may not do that: it needs the "+need.String()+" scope")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey, p))
		}
		h(w, r)
	})
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, bool) {
	token, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		return auth.Principal{}, false
	}
	s.cfg.Auth.Refresh()
	return s.cfg.Auth.Keyring().Authenticate(token)
}

// principal returns who made r: the API key's principal, or the zero
// principal (ID "") when access control is off.
func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey).(auth.Principal)
	return p
}

// reject counts a refused POST /events by reason.
func (s *Server) reject(r *http.Request, reason string) {
	if s.cfg.Metrics != nil && r.Method == http.MethodPost && r.URL.Path == "/events" {
		s.cfg.Metrics.EventsRejected.WithLabelValues(reason).Inc()
	}
}

// Drain makes every new request answer 503 while the process shuts down;
// requests already running finish normally, and event streams end (with
// a last message saying so), so a graceful shutdown does not wait on
// them.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.closeOnce.Do(func() { close(s.closing) })
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
	principalKey
)

// RequestIDHeader carries the request id, in and out.
const RequestIDHeader = api.RequestIDHeader

// requestID returns the request id of r's context.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func logger(r *http.Request) *slog.Logger {
	l, _ := r.Context().Value(loggerKey).(*slog.Logger)
	if l == nil {
		return slog.Default()
	}
	return l
}

// validRequestID accepts a client's X-Request-Id only if it is short and
// plain, so it can go into logs and correlation ids safely.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// ServeHTTP implements http.Handler: it gives the request an id (the
// client's X-Request-Id, else a UUIDv7) returned in the response and
// carried by every log line, refuses work while draining, and measures.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(RequestIDHeader)
	if !validRequestID(id) {
		u, _ := uuid.NewV7()
		id = u.String()
	}
	w.Header().Set(RequestIDHeader, id)
	l := s.cfg.Logger.With("request_id", id)
	ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey, id), loggerKey, l)
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if s.draining.Load() && r.URL.Path != "/health" {
		w.Header().Set("Connection", "close")
		writeUnavailable(sw, time.Second, "Chronicle is shutting down")
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	if m := s.cfg.Metrics; m != nil {
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		m.HTTPRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		m.HTTPSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
	l.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
}

// statusWriter remembers the status code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines, flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// fallback answers what no route matched: 405 with Allow when the path
// exists for other methods, else 404.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", joinComma(allow))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	writeError(w, http.StatusNotFound, "not found: "+r.URL.Path)
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// health reports the store and every dependency of Config.Health; 503
// when one cannot be used now. The reason shown is the dependency's
// public message (what is down, not its driver's words, which go to the
// log): /health is open to anyone who can reach the port.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	resp := api.Health{Status: "healthy", Transport: s.cfg.Transport, Auth: "off", Version: s.cfg.Version}
	if s.cfg.Auth != nil {
		resp.Auth = "on"
	}
	status := http.StatusOK
	fail := func(err error) {
		logger(r).Warn("health check failed", "err", err)
		if resp.Error == "" {
			resp.Error = publicMessage(err)
		}
		resp.Status, status = "unhealthy", http.StatusServiceUnavailable
	}
	if s.cfg.Store != nil {
		resp.Store = s.cfg.Store.Name()
		if err := s.cfg.Store.Ping(r.Context()); err != nil {
			fail(err)
		} else if n, err := s.cfg.Store.CountEntities(r.Context()); err != nil {
			fail(err)
		} else {
			resp.Entities = &n
		}
	}
	for _, p := range s.cfg.Health {
		if err := p.Ping(r.Context()); err != nil {
			fail(err)
		}
	}
	if s.cfg.Sinks != nil {
		// A failing sink is shown, not fatal: ingestion goes on, every
		// event is kept, and the sink catches up when its receiver does.
		size := int64(-1)
		if status == http.StatusOK && s.cfg.Store != nil {
			if n, err := s.cfg.Store.LogSize(r.Context()); err == nil {
				size = n
			}
		}
		resp.Sinks = s.cfg.Sinks.Health(size)
	}
	if s.draining.Load() {
		resp.Status, status = "draining", http.StatusServiceUnavailable
	}
	if status != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, resp)
}

// whoami tells a client what its API key may do, so that a user
// interface offers only the actions that will be allowed. With access
// control off every scope is allowed.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	scopes := auth.Ingest | auth.Read | auth.Admin
	if s.cfg.Auth != nil {
		scopes = p.Scopes
	}
	out := api.WhoAmI{Key: p.Label, Scopes: []string{}}
	for _, sc := range []auth.Scope{auth.Ingest, auth.Read, auth.Admin} {
		if scopes.Allows(sc) {
			out.Scopes = append(out.Scopes, sc.String())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) queues(w http.ResponseWriter, r *http.Request) {
	qs, err := s.cfg.Queues.Queues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, qs)
}

// errorClass is how one kind of error is answered: its status, the
// label it is counted under when it refuses POST /events, and what the
// client is told when the error carries no public message.
type errorClass struct {
	is      func(error) bool
	status  int
	reject  string
	generic string
}

// errorClasses is the one table that maps the domain's errors to HTTP,
// first match wins. Only an error's public message (chronicle.Public) is
// shown; its cause is logged.
var errorClasses = []errorClass{
	{isValidation, http.StatusUnprocessableEntity, "validation", "validation failed"},
	{isKind(chronicle.ErrTooLarge), http.StatusRequestEntityTooLarge, "too_large", "request too large"},
	{isKind(chronicle.ErrInvalid), http.StatusBadRequest, "invalid", "invalid request"},
	{isKind(chronicle.ErrNotFound), http.StatusNotFound, "not_found", "not found"},
	{isKind(chronicle.ErrConflict), http.StatusConflict, "conflict", "conflict"},
	{isKind(chronicle.ErrUnavailable), http.StatusServiceUnavailable, "unavailable", "temporarily unavailable; retry later"},
	{isKind(chronicle.ErrClosed), http.StatusServiceUnavailable, "unavailable", "shutting down; retry later"},
}

var internalError = errorClass{status: http.StatusInternalServerError, reject: "error", generic: "internal error"}

func isValidation(err error) bool {
	var ve *chronicle.ValidationError
	return errors.As(err, &ve)
}

func isKind(kind error) func(error) bool { return func(err error) bool { return errors.Is(err, kind) } }

func classify(err error) errorClass {
	for _, c := range errorClasses {
		if c.is(err) {
			return c
		}
	}
	return internalError
}

// publicMessage is what a client may read of err.
func publicMessage(err error) string {
	if msg := chronicle.Public(err); msg != "" {
		return msg
	}
	return classify(err).generic
}

// fail writes err as the response, as errorClasses says, and counts a
// refused POST /events. The whole error (cause included) is logged when
// it is the server's or a dependency's problem.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	c := classify(err)
	s.reject(r, c.reject)
	var ve *chronicle.ValidationError
	var ue *chronicle.UnavailableError
	switch {
	case errors.As(err, &ve) && c.status == http.StatusUnprocessableEntity:
		writeJSON(w, c.status, api.Error{Error: "validation_failed", Reason: ve.Reason})
	case c.status == http.StatusServiceUnavailable:
		retry := time.Second
		if errors.As(err, &ue) && ue.RetryAfter > 0 {
			retry = ue.RetryAfter
		}
		logger(r).Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, retry, publicMessage(err))
	case c.status == http.StatusInternalServerError:
		logger(r).Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, c.status, "internal error (request id "+requestID(r)+")")
	default:
		writeError(w, c.status, publicMessage(err))
	}
}

func writeUnavailable(w http.ResponseWriter, retryAfter time.Duration, msg string) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, http.StatusServiceUnavailable, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
