package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/ingest"
)

// SinkService is the outbound sinks as the API sees them (package
// outbound's Manager).
type SinkService interface {
	// Status reports every sink.
	Status(ctx context.Context) ([]api.Sink, error)
	// Health reports every sink for /health, without asking the store;
	// logSize < 0 when unknown.
	Health(logSize int64) []api.SinkHealth
	// Replay asks that the events of sink name with from <= seq < to be
	// sent again (to nil: up to the cursor). ErrNotFound for an unknown
	// sink, ErrInvalid for a bad range.
	Replay(ctx context.Context, name string, from int64, to *int64) (api.SinkReplayed, error)
}

func (s *Server) listSinks(w http.ResponseWriter, r *http.Request) {
	sinks, err := s.cfg.Sinks.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sinks)
}

func (s *Server) replaySink(w http.ResponseWriter, r *http.Request) {
	b, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer b.release()
	if err := ingest.CheckUTF8(b.data); err != nil {
		s.fail(w, r, err)
		return
	}
	var in api.SinkReplay
	if err := json.Unmarshal(b.data, &in); err != nil {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, `body must be {"from":SEQ} or {"from":SEQ,"to":SEQ}: %v`, err))
		return
	}
	if in.From == nil {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, `from is required: {"from":SEQ}`))
		return
	}
	out, err := s.cfg.Sinks.Replay(r.Context(), r.PathValue("name"), *in.From, in.To)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	logger(r).Info("sink replay requested", "sink", out.Sink, "from", out.From, "to", out.To, "key", principal(r).Label)
	writeJSON(w, http.StatusOK, out)
}
