// Package httpapi is Chronicle's HTTP interface (SPEC §3): events in
// through the ingestion pipeline and the Messaging Gateway, events out of
// the store with read-time enrichment, the entity registry, health, and
// the operator endpoints. It is the only package that maps domain errors
// to HTTP statuses; every error body is JSON with an "error" field.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/ingest"
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
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP handler of Chronicle.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	draining atomic.Bool
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
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /health", s.health)
	if !s.cfg.HealthOnly {
		m.HandleFunc("POST /events", s.createEvent)
		m.HandleFunc("GET /events", s.listEvents)
		m.HandleFunc("GET /events/{id}", s.getEvent)
		m.HandleFunc("POST /entities", s.putEntity)
		m.HandleFunc("GET /entities", s.listEntities)
		m.HandleFunc("GET /entities/{key}", s.getEntity)
		m.HandleFunc("DELETE /entities/{key}", s.deleteEntity)
		m.HandleFunc("GET /queues", s.queues)
		if s.cfg.DeadLetters != nil {
			s.dlqRoutes()
		}
	}
	m.HandleFunc("/", s.fallback)
}

// Drain makes every new request answer 503 while the process shuts down;
// requests already running finish normally.
func (s *Server) Drain() { s.draining.Store(true) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() && r.URL.Path != "/health" {
		w.Header().Set("Connection", "close")
		writeUnavailable(w, time.Second, "Chronicle is shutting down")
		return
	}
	s.mux.ServeHTTP(w, r)
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
		Error     string `json:"error,omitempty"`
	}
	resp := response{Status: "healthy", Transport: s.cfg.Transport}
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
		s.cfg.Logger.Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, ue.RetryAfter, err.Error())
	case errors.Is(err, chronicle.ErrUnavailable), errors.Is(err, chronicle.ErrClosed):
		s.cfg.Logger.Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeUnavailable(w, time.Second, err.Error())
	default:
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
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
