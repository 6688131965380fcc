// Package httpapi is Chronicle's HTTP interface (SPEC §3): events in
// through the ingestion pipeline and the Messaging Gateway, events out of
// the store with read-time enrichment, the entity registry, health, and
// the operator endpoints. It is the only package that maps domain errors
// to HTTP statuses; every error body is JSON with an "error" field.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/ingest"
	"github.com/chronicle-audit/chronicle/metrics"
)

// Config holds what the API serves. Gateway and Store are required for
// the full API; a consumer process serves only health.
type Config struct {
	// Gateway publishes accepted events. Nil in consumer mode.
	Gateway chronicle.Gateway
	// Transport is the canonical transport name shown by /health.
	Transport string
	// Store serves reads, entities and health.
	Store chronicle.Store
	// DeadLetters, when set, serves the /dlq endpoints.
	DeadLetters chronicle.DeadLetterChannel
	// Pipeline processes every event before it is published. Defaults to
	// ingest.DefaultPipeline.
	Pipeline ingest.Pipeline
	// HealthOnly serves /health (and /metrics) only: consumer mode.
	HealthOnly bool
	// Auth holds the API keys. Nil: access control is off (local use;
	// /health says so).
	Auth *auth.Source
	// Metrics, when set, is served on /metrics and fed by every request.
	Metrics *metrics.Metrics
	// Idempotency keeps Idempotency-Key records. Nil: the header is
	// refused.
	Idempotency chronicle.IdempotencyStore
	// MaxInflight bounds the POST /events requests being processed at
	// once; beyond it requests get 429 at once instead of queueing.
	// Defaults to 1024.
	MaxInflight int
	// MaxBatchBytes bounds a batch request's body. Defaults to 8 MiB.
	MaxBatchBytes int64
	// Now is the clock of idempotency records. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP handler of Chronicle.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	draining atomic.Bool
	inflight chan struct{}
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Pipeline == nil {
		cfg.Pipeline = ingest.DefaultPipeline(ingest.Stamper{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == "" && cfg.Gateway != nil {
		cfg.Transport = cfg.Gateway.Name()
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1024
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 8 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), inflight: make(chan struct{}, cfg.MaxInflight)}
	s.routes()
	return s
}

// open marks endpoints that need no key.
const open auth.Scope = 0

func (s *Server) routes() {
	s.handle("GET /health", open, s.health)
	if s.cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	if !s.cfg.HealthOnly {
		s.handle("POST /events", auth.Ingest, s.createEvents)
		s.handle("GET /events", auth.Read, s.listEvents)
		s.handle("GET /events/count", auth.Read, s.countEvents)
		s.handle("GET /events/{id}", auth.Read, s.getEvent)
		s.handle("GET /entities", auth.Read, s.listEntities)
		s.handle("GET /entities/{key}", auth.Read, s.getEntity)
		s.handle("POST /entities", auth.Admin, s.putEntity)
		s.handle("DELETE /entities/{key}", auth.Admin, s.deleteEntity)
		s.handle("GET /queues", auth.Admin, s.queues)
		if s.cfg.DeadLetters != nil {
			s.handle("GET /dlq", auth.Admin, s.listDLQs)
			s.handle("GET /dlq/{queue}", auth.Admin, s.peekDLQ)
			s.handle("POST /dlq/{queue}/replay", auth.Admin, s.replayDLQ)
			s.handle("DELETE /dlq/{queue}", auth.Admin, s.purgeDLQ)
		}
	}
	s.handle("/", auth.Scope(0xff), s.fallback)
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
			scopes, label, ok := s.authenticate(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="chronicle"`)
				s.reject(r, "unauthorized")
				writeError(w, http.StatusUnauthorized, "missing or unknown API key: send Authorization: Bearer <key>")
				return
			}
			if need != 0xff && !scopes.Allows(need) {
				s.reject(r, "forbidden")
				logger(r).Warn("API key lacks the scope", "key", label, "need", need.String(), "has", scopes.String())
				writeError(w, http.StatusForbidden, "this API key may not do that: it needs the "+need.String()+" scope")
				return
			}
		}
		h(w, r)
	})
}

func (s *Server) authenticate(r *http.Request) (auth.Scope, string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return 0, "", false
	}
	s.cfg.Auth.Refresh()
	return s.cfg.Auth.Keyring().Authenticate(strings.TrimSpace(token))
}

// reject counts a refused POST /events by reason.
func (s *Server) reject(r *http.Request, reason string) {
	if s.cfg.Metrics != nil && r.Method == http.MethodPost && r.URL.Path == "/events" {
		s.cfg.Metrics.EventsRejected.WithLabelValues(reason).Inc()
	}
}

// Drain makes every new request answer 503 while the process shuts down;
// requests already running finish normally.
func (s *Server) Drain() { s.draining.Store(true) }

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
)

// RequestIDHeader carries the request id, in and out.
const RequestIDHeader = "X-Request-Id"

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

// health reports the transport and the store; 503 when either cannot be
// reached now.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	type response struct {
		Status    string `json:"status"`
		Transport string `json:"transport,omitempty"`
		Store     string `json:"store,omitempty"`
		Entities  *int   `json:"entities,omitempty"`
		Auth      string `json:"auth"`
		Error     string `json:"error,omitempty"`
	}
	resp := response{Status: "healthy", Transport: s.cfg.Transport, Auth: "off"}
	if s.cfg.Auth != nil {
		resp.Auth = "on"
	}
	status := http.StatusOK
	fail := func(err error) {
		if resp.Error == "" {
			resp.Error = err.Error()
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
	if s.cfg.Gateway != nil {
		if err := s.cfg.Gateway.Ping(r.Context()); err != nil {
			fail(err)
		}
	}
	if s.draining.Load() {
		resp.Status, status = "draining", http.StatusServiceUnavailable
	}
	if status != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, resp)
}

func (s *Server) queues(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Gateway == nil {
		writeError(w, http.StatusNotFound, "no transport in this process")
		return
	}
	qs, err := s.cfg.Gateway.Queues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, qs)
}

// fail writes err as the response, mapping domain errors to statuses.
// Unexpected errors are logged with detail and shown as a generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *chronicle.ValidationError
	var ue *chronicle.UnavailableError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "validation_failed", "reason": ve.Reason})
	case errors.Is(err, chronicle.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, chronicle.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, chronicle.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, chronicle.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.As(err, &ue):
		logger(r).Debug("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, ue.RetryAfter, err.Error())
	case errors.Is(err, chronicle.ErrUnavailable), errors.Is(err, chronicle.ErrClosed):
		logger(r).Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, time.Second, err.Error())
	default:
		logger(r).Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (request id "+requestID(r)+")")
	}
}

func writeUnavailable(w http.ResponseWriter, retryAfter time.Duration, msg string) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, http.StatusServiceUnavailable, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
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
