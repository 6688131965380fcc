package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// query parses r's query string, refusing a malformed one: dropping what
// does not parse would silently drop filters and return everything.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, chronicle.Errorf(chronicle.ErrInvalid, "malformed query string: %v", err)
	}
	return q, nil
}

// filterParams are the query parameters of GET /events's filters.
var filterParams = map[string]bool{
	"actor": true, "action": true, "event_type": true, "resource_type": true, "resource_id": true,
	"correlation_id": true, "entity_key": true, "since": true, "until": true,
	"occurred_since": true, "occurred_until": true,
}

// parseFilter reads the filters of GET /events from q, with limit and
// cursor when paged (a listing); extra are the endpoint's other
// parameters, which it reads itself. An unknown parameter is an error: a
// misspelt filter must not silently return everything.
func parseFilter(q url.Values, paged bool, extra ...string) (chronicle.EventFilter, error) {
	for k := range q {
		if !filterParams[k] && !(paged && (k == "limit" || k == "cursor")) && !slices.Contains(extra, k) {
			return chronicle.EventFilter{}, chronicle.Errorf(chronicle.ErrInvalid, "unknown query parameter %q", k)
		}
	}
	f := chronicle.EventFilter{
		Actor:         strings.ToLower(q.Get("actor")),
		Action:        q.Get("action"),
		EventType:     q.Get("event_type"),
		ResourceType:  q.Get("resource_type"),
		CorrelationID: q.Get("correlation_id"),
		EntityKey:     q.Get("entity_key"),
		Limit:         chronicle.DefaultLimit,
	}
	if q.Has("resource_id") {
		v := q.Get("resource_id")
		f.ResourceID = &v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > chronicle.MaxLimit {
			return f, chronicle.Errorf(chronicle.ErrInvalid, "limit must be an integer from 1 to %d, not %q", chronicle.MaxLimit, v)
		}
		f.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}, {"occurred_since", &f.OccurredSince}, {"occurred_until", &f.OccurredUntil}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, chronicle.Errorf(chronicle.ErrInvalid, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", p.name, v)
			}
			*p.dst = t.UTC()
		}
	}
	if v := q.Get("cursor"); v != "" {
		p, err := decodeCursor(v)
		if err != nil {
			return f, err
		}
		f.After = &p
	}
	return f, nil
}

// A cursor is the (timestamp, id) of the last event of a page, opaque to
// clients.
func encodeCursor(p chronicle.Position) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.Timestamp.UnixMicro(), 10) + "|" + p.ID))
}

func decodeCursor(s string) (chronicle.Position, error) {
	bad := chronicle.Errorf(chronicle.ErrInvalid, "invalid cursor %q: use the one in the Link header of the previous page", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return chronicle.Position{}, bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || id == "" {
		return chronicle.Position{}, bad
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return chronicle.Position{}, bad
	}
	return chronicle.Position{Timestamp: time.UnixMicro(us).UTC(), ID: id}, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := parseFilter(q, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, err := s.cfg.Store.Events(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if events, err = s.enrich(r, events); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(events) == f.Limit {
		q.Set("cursor", encodeCursor(chronicle.PositionOf(events[len(events)-1])))
		w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, events)
}

// countEvents is GET /events/count: how many events match the filters of
// GET /events (limit and cursor aside), e.g. for a load test to know when
// everything it sent is stored.
func (s *Server) countEvents(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if q.Has("limit") || q.Has("cursor") {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "count takes the filters of GET /events, not limit or cursor"))
		return
	}
	f, err := parseFilter(q, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.cfg.Store.CountEvents(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Count{Count: n})
}

// getEvent is GET /events/{id}: one event with every field, enriched;
// ?include=history adds its Message History.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	withHistory := false
	for k, vs := range q {
		switch {
		case k == "include" && len(vs) == 1 && vs[0] == "history":
			withHistory = true
		case k == "include":
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "include may only be history"))
			return
		default:
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "unknown query parameter %q", k))
			return
		}
	}
	e, err := s.cfg.Store.Event(r.Context(), r.PathValue("id"))
	if err == nil {
		err = s.keepLeaf(r.Context(), e)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.enrich(r, []*chronicle.Event{e})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !withHistory {
		writeJSON(w, http.StatusOK, out[0])
		return
	}
	hops, err := e.History.Hops()
	if err != nil {
		s.fail(w, r, fmt.Errorf("event %s: corrupt history: %w", e.ID, err))
		return
	}
	writeJSON(w, http.StatusOK, api.EventWithHistory{Event: out[0], History: hops})
}

// enrich adds the registered entity's name and attributes to each event
// that names one (the event's own metadata wins). Stored events are not
// changed.
func (s *Server) enrich(r *http.Request, events []*chronicle.Event) ([]*chronicle.Event, error) {
	var keys []string
	seen := map[string]bool{}
	for _, e := range events {
		if e.EntityKey != "" && !seen[e.EntityKey] {
			seen[e.EntityKey] = true
			keys = append(keys, e.EntityKey)
		}
	}
	if len(keys) == 0 {
		if events == nil {
			events = []*chronicle.Event{}
		}
		return events, nil
	}
	ents, err := s.cfg.Store.EntitiesByKey(r.Context(), keys)
	if err != nil {
		return nil, err
	}
	for i, e := range events {
		if ent := ents[e.EntityKey]; ent != nil {
			events[i] = chronicle.Enrich(e, ent)
		}
	}
	return events, nil
}
