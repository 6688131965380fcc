package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/ingest"
)

// The Invalid Message Channel over HTTP: list the dead-letter queues,
// peek without removing, replay to the queue each message died in, purge.

func (s *Server) listDLQs(w http.ResponseWriter, r *http.Request) {
	qs, err := s.cfg.DeadLetters.DeadLetterQueues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]api.DeadLetterQueue, len(qs))
	for i, q := range qs {
		out[i] = api.DeadLetterQueue{Queue: q.Name, Route: q.Route, Depth: q.Depth}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) peekDLQ(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for k := range q {
		if k != "limit" {
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "unknown query parameter %q", k))
			return
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > chronicle.MaxLimit {
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "limit must be an integer from 1 to %d, not %q", chronicle.MaxLimit, v))
			return
		}
		limit = n
	}
	dl, err := s.cfg.DeadLetters.PeekDeadLetters(r.Context(), r.PathValue("queue"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if dl == nil {
		dl = []chronicle.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, dl)
}

// selection reads {"ids":[…]}, {"limit":N}, {"all":true} or {} from the
// body; allowEmpty says whether {} (everything) is acceptable.
func selection(body []byte, allowEmpty bool) (chronicle.Selection, error) {
	var in api.Selection
	if err := ingest.CheckUTF8(body); err != nil {
		return chronicle.Selection{}, err
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return chronicle.Selection{}, chronicle.Errorf(chronicle.ErrInvalid, `body must be {} (all), {"limit":N}, {"ids":[...]} or {"all":true}: %v`, err)
		}
	}
	sel := chronicle.Selection{IDs: in.IDs}
	switch {
	case in.Limit != nil && *in.Limit < 1:
		return sel, chronicle.Errorf(chronicle.ErrInvalid, "limit must be at least 1")
	case in.Limit != nil && len(in.IDs) > 0:
		return sel, chronicle.Errorf(chronicle.ErrInvalid, "give ids or limit, not both")
	case in.Limit != nil:
		sel.Limit = *in.Limit
	case len(in.IDs) == 0 && !in.All && !allowEmpty:
		return sel, chronicle.Errorf(chronicle.ErrInvalid, `say which dead letters to purge: {"ids":[...]} or {"all":true}`)
	}
	return sel, nil
}

func (s *Server) replayDLQ(w http.ResponseWriter, r *http.Request) {
	b, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer b.release()
	body := b.data
	sel, err := selection(body, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.cfg.DeadLetters.ReplayDeadLetters(r.Context(), r.PathValue("queue"), sel)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("dead letters replayed", "queue", r.PathValue("queue"), "count", n)
	writeJSON(w, http.StatusOK, api.Replayed{Replayed: n})
}

func (s *Server) purgeDLQ(w http.ResponseWriter, r *http.Request) {
	b, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer b.release()
	body := b.data
	sel, err := selection(body, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.cfg.DeadLetters.PurgeDeadLetters(r.Context(), r.PathValue("queue"), sel)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Warn("dead letters purged", "queue", r.PathValue("queue"), "count", n)
	writeJSON(w, http.StatusOK, api.Purged{Purged: n})
}
