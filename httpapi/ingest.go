package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/ingest"
)

// MaxBatch is the most events one request may carry.
const MaxBatch = 1000

// IdempotencyKeyHeader names the header of idempotent POST /events.
const IdempotencyKeyHeader = api.IdempotencyKeyHeader

// answer is what POST /events says, kept whole so an idempotent retry
// gets exactly the same.
type answer struct {
	status int
	body   []byte
	events []*chronicle.Event
}

// createEvents is POST /events: one JSON object, a JSON array, or NDJSON
// (Content-Type application/x-ndjson) of up to MaxBatch events. Valid
// events of a batch are accepted even when others are not, and all of
// them are published in one call (one journal commit or one confirm
// round). It answers 202 only once the transport holds every accepted
// event durably.
func (s *Server) createEvents(w http.ResponseWriter, r *http.Request) {
	key, hasKey := r.Header[IdempotencyKeyHeader]
	if hasKey && (len(key) != 1 || !printable(key[0], 255)) {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "Idempotency-Key must be one value of 1 to 255 printable ASCII characters"))
		return
	}
	// Refuse before reading what could not be taken anyway.
	if err := s.cfg.Publisher.Congested(); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer b.release()
	body := b.data
	// Admission control: a bounded number of requests in the pipeline;
	// beyond it, shed load at once rather than queue without bound.
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		s.reject(r, "overloaded")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests in flight (%d); retry later", cap(s.inflight)))
		return
	}
	a, err := s.process(r, body)
	if err == nil && hasKey {
		a, err = s.claim(r, key[0], body, a)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(a.events) > 0 {
		start := time.Now()
		if err := s.cfg.Publisher.Publish(r.Context(), a.events); err != nil {
			s.fail(w, r, err)
			return
		}
		if m := s.cfg.Metrics; m != nil {
			m.PublishSeconds.Observe(time.Since(start).Seconds())
			m.EventsAccepted.Add(float64(len(a.events)))
		}
	}
	l := logger(r)
	for _, e := range a.events {
		l.Debug("event accepted", "id", e.ID, "event_type", e.EventType, "actor", e.Actor)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// process decodes and runs the pipeline; it returns the answer to give
// once the accepted events are published.
func (s *Server) process(r *http.Request, body []byte) (answer, error) {
	raws, batch, err := splitBatch(r.Header.Get("Content-Type"), body)
	if err != nil {
		return answer{}, err
	}
	if !batch {
		e, err := s.prepare(r, body)
		if err != nil {
			return answer{}, err
		}
		return answer{status: http.StatusAccepted, body: marshal(api.Accepted{Status: "accepted", ID: e.ID}), events: []*chronicle.Event{e}}, nil
	}
	resp := api.BatchResponse{Status: "accepted", Results: make([]api.BatchResult, len(raws))}
	var events []*chronicle.Event
	for i, raw := range raws {
		resp.Results[i].Index = i
		e, err := s.prepare(r, raw)
		var ve *chronicle.ValidationError
		switch {
		case err == nil:
			resp.Results[i].ID = e.ID
			events = append(events, e)
		case errors.As(err, &ve):
			resp.Results[i].Error, resp.Results[i].Reason = "validation_failed", ve.Reason
		default:
			resp.Results[i].Error, resp.Results[i].Reason = "invalid_event", publicMessage(err)
		}
	}
	resp.Accepted, resp.Rejected = len(events), len(raws)-len(events)
	status := http.StatusAccepted
	if len(events) == 0 {
		resp.Status, status = "rejected", http.StatusUnprocessableEntity
	}
	if s.cfg.Metrics != nil && resp.Rejected > 0 {
		s.cfg.Metrics.EventsRejected.WithLabelValues("invalid").Add(float64(resp.Rejected))
	}
	return answer{status: status, body: marshal(resp), events: events}, nil
}

// prepare decodes one event and runs the pipeline. An event without a
// correlation_id is correlated with the request that brought it.
func (s *Server) prepare(r *http.Request, raw []byte) (*chronicle.Event, error) {
	e, err := ingest.Decode(raw)
	if err != nil {
		return nil, err
	}
	if e.CorrelationID == "" {
		e.CorrelationID = requestID(r)
	}
	if err := s.cfg.Pipeline.Process(e); err != nil {
		return nil, err
	}
	e.History = s.accepted(r, e.Timestamp)
	return e, nil
}

// accepted starts an event's history: this process took it at at, in r.
func (s *Server) accepted(r *http.Request, at time.Time) chronicle.History {
	return chronicle.History(nil).Append(chronicle.Hop{Hop: chronicle.HopAccepted, At: at, Process: s.cfg.Process,
		RequestID: requestID(r), APIKey: principal(r).Label})
}

// splitBatch tells a single event from a batch and splits a batch into
// its elements: a JSON array, or NDJSON lines.
func splitBatch(contentType string, body []byte) ([]json.RawMessage, bool, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-ndjson" || mt == "application/jsonl" {
		var out []json.RawMessage
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), ingest.MaxBodyBytes+1)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if len(out) == MaxBatch {
				return nil, true, chronicle.Errorf(chronicle.ErrTooLarge, "a batch holds at most %d events", MaxBatch)
			}
			out = append(out, append(json.RawMessage(nil), line...))
		}
		if err := sc.Err(); err != nil {
			return nil, true, chronicle.Errorf(chronicle.ErrInvalid, "read NDJSON: %v", err)
		}
		if len(out) == 0 {
			return nil, true, chronicle.Errorf(chronicle.ErrInvalid, "empty batch: no events in the NDJSON body")
		}
		return out, true, nil
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, false, nil
	}
	var out []json.RawMessage
	if err := json.Unmarshal(trimmed, &out); err != nil {
		return nil, true, chronicle.Errorf(chronicle.ErrInvalid, "invalid JSON array: %v", err)
	}
	switch {
	case len(out) == 0:
		return nil, true, chronicle.Errorf(chronicle.ErrInvalid, "empty batch: the array holds no events")
	case len(out) > MaxBatch:
		return nil, true, chronicle.Errorf(chronicle.ErrTooLarge, "a batch holds at most %d events, this one %d", MaxBatch, len(out))
	}
	return out, true, nil
}

// claim makes the request idempotent. The first request with a key records
// its answer and events before publishing; a retry with the same body gets
// the recorded answer and publishes the recorded events again (same IDs,
// so the idempotent store keeps one copy), which also covers a first
// attempt that died between recording and publishing. Another body with
// the same key is a conflict.
func (s *Server) claim(r *http.Request, key string, body []byte, a answer) (answer, error) {
	sum := sha256.Sum256(body)
	rec := &chronicle.IdempotencyRecord{
		Scope: principal(r).ID, Key: key, Fingerprint: hex.EncodeToString(sum[:]), Status: a.status, Response: a.body,
		Events: a.events, CreatedAt: s.cfg.Now().UTC(),
	}
	old, claimed, err := s.cfg.Store.ClaimIdempotencyKey(r.Context(), rec)
	if err != nil {
		return answer{}, err
	}
	if claimed {
		return a, nil
	}
	if old.Fingerprint != rec.Fingerprint {
		return answer{}, chronicle.Errorf(chronicle.ErrConflict, "Idempotency-Key %q was already used with a different request body", key)
	}
	logger(r).Info("idempotent retry: answering as the first time", "idempotency_key", key, "events", len(old.Events))
	// The events go out again, accepted by this request (copies: the
	// record may be shared with other retries).
	now := s.cfg.Now().UTC()
	events := make([]*chronicle.Event, len(old.Events))
	for i, e := range old.Events {
		c := *e
		c.History = s.accepted(r, now)
		events[i] = &c
	}
	return answer{status: old.Status, body: old.Response, events: events}, nil
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"error":"internal error"}`)
	}
	return append(b, '\n')
}
