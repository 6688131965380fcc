package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/integrity"
)

// The verifiable log over HTTP: its key, its signed checkpoints, proofs
// of inclusion and consistency, receipts, the stored leaf hashes, the
// whole log in order (export), and redaction.

// maxLeaves bounds the leaf hashes of one GET /log/leaves.
const maxLeaves = 10_000

func writeText(w http.ResponseWriter, text []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(text)))
	w.Write(text)
}

func (s *Server) logKey(w http.ResponseWriter, r *http.Request) {
	if s.cfg.LogKey == "" {
		writeError(w, http.StatusNotFound, "this process does not sign the log")
		return
	}
	writeText(w, []byte(s.cfg.LogKey+"\n"))
}

func (s *Server) latestCheckpoint(w http.ResponseWriter, r *http.Request) {
	if !s.noParams(w, r) {
		return
	}
	cp, err := s.cfg.Store.Checkpoint(r.Context(), -1)
	if errors.Is(err, chronicle.ErrNotFound) {
		err = chronicle.Errorf(chronicle.ErrNotFound, "the log has no signed checkpoint yet")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeText(w, cp.Note)
}

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "from", "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := p.int64("from", 0, 0)
	limit, err2 := p.int64("limit", 1000, 1)
	if err = errors.Join(err, err2); err != nil {
		s.fail(w, r, err)
		return
	}
	cps, err := s.cfg.Store.Checkpoints(r.Context(), from, int(min(limit, 1000)))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.Checkpoints{Checkpoints: make([]api.Checkpoint, len(cps))}
	for i, c := range cps {
		out.Checkpoints[i] = api.Checkpoint{Size: c.Size, Checkpoint: string(c.Note), CreatedAt: c.CreatedAt.Format(chronicle.TimestampLayout)}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "from", "to")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := p.int64("from", -1, 0)
	to, err2 := p.int64("to", -1, 0)
	if err = errors.Join(err, err2); err != nil {
		s.fail(w, r, err)
		return
	}
	if from < 0 || to < 0 || from > to {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "from and to are required, and from may not be greater than to"))
		return
	}
	size, err := s.cfg.Store.LogSize(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if to > size {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrNotFound, "the log holds %d events, fewer than to=%d", size, to))
		return
	}
	proof, err := integrity.ConsistencyProof(r.Context(), s.cfg.Store, from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Consistency{From: from, To: to, Proof: rawHashes(proof)})
}

func (s *Server) leaves(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "from", "to")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := p.int64("from", 0, 0)
	size, err2 := s.cfg.Store.LogSize(r.Context())
	if err = errors.Join(err, err2); err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := p.int64("to", min(size, from+maxLeaves), from)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if to > size {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrNotFound, "the log holds %d events, fewer than to=%d", size, to))
		return
	}
	if to-from > maxLeaves {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "at most %d leaves at once", maxLeaves))
		return
	}
	idx := make([]int64, 0, to-from)
	for seq := from; seq < to; seq++ {
		idx = append(idx, tlog.StoredHashIndex(0, seq))
	}
	out := api.Leaves{From: from, To: to}
	hs, err := s.cfg.Store.LogHashes(r.Context(), idx)
	switch {
	case errors.Is(err, chronicle.ErrNotFound):
		// A record is gone from the store: say which, leaf by leaf (null),
		// for a verifier to name it.
		out.LeafHashes = make([][]byte, len(idx))
		for i, x := range idx {
			h, err := s.cfg.Store.LogHashes(r.Context(), []int64{x})
			if err != nil && !errors.Is(err, chronicle.ErrNotFound) {
				s.fail(w, r, err)
				return
			}
			if err == nil {
				out.LeafHashes[i] = h[0][:]
			}
		}
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		out.LeafHashes = rawHashes(hs)
	}
	writeJSON(w, http.StatusOK, out)
}

// provable returns the event id, its seq and leaf hash, and the signed
// checkpoint (of size, else the latest) that proves it, or writes why
// not.
func (s *Server) provable(w http.ResponseWriter, r *http.Request) (*chronicle.Event, chronicle.Hash, *chronicle.Checkpoint, bool) {
	p, err := params(r, "size")
	if err != nil {
		s.fail(w, r, err)
		return nil, chronicle.Hash{}, nil, false
	}
	size, err := p.int64("size", -1, 0)
	if err != nil {
		s.fail(w, r, err)
		return nil, chronicle.Hash{}, nil, false
	}
	e, err := s.cfg.Store.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return nil, chronicle.Hash{}, nil, false
	}
	cp, err := s.cfg.Store.Checkpoint(r.Context(), size)
	if errors.Is(err, chronicle.ErrNotFound) {
		if size < 0 {
			err = chronicle.Errorf(chronicle.ErrNotFound, "the log has no signed checkpoint yet")
		} else {
			err = chronicle.Errorf(chronicle.ErrNotFound, "no checkpoint of size %d (see GET /log/checkpoints)", size)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, chronicle.Hash{}, nil, false
	}
	if e.Seq == nil || *e.Seq >= cp.Size {
		if size < 0 {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, http.StatusConflict, fmt.Sprintf("event %s is not in the log's tree of %d events yet (checkpoints follow within CHRONICLE_CHECKPOINT_INTERVAL)", e.ID, cp.Size))
		return nil, chronicle.Hash{}, nil, false
	}
	leaf, err := s.cfg.Store.LogHashes(r.Context(), []int64{tlog.StoredHashIndex(0, *e.Seq)})
	if err != nil {
		s.fail(w, r, err)
		return nil, chronicle.Hash{}, nil, false
	}
	return e, leaf[0], cp, true
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	e, leaf, cp, ok := s.provable(w, r)
	if !ok {
		return
	}
	proof, err := integrity.InclusionProof(r.Context(), s.cfg.Store, *e.Seq, cp.Size)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Proof{ID: e.ID, Seq: *e.Seq, LeafHash: leaf[:], TreeSize: cp.Size,
		Proof: rawHashes(proof), Checkpoint: string(cp.Note)})
}

func (s *Server) receipt(w http.ResponseWriter, r *http.Request) {
	e, _, cp, ok := s.provable(w, r)
	if !ok {
		return
	}
	proof, err := integrity.InclusionProof(r.Context(), s.cfg.Store, *e.Seq, cp.Size)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rc := integrity.Receipt{Index: *e.Seq, Proof: proof, Checkpoint: cp.Note}
	writeText(w, rc.Marshal())
}

// maxReason bounds a redaction's reason.
const maxReason = 1000

func (s *Server) redact(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "cannot read the body: %v", err))
		return
	}
	var req api.RedactRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "body: %v (want {\"reason\": \"...\"})", err))
			return
		}
	}
	if len(req.Reason) > maxReason {
		s.fail(w, r, chronicle.Errorf(chronicle.ErrInvalid, "reason: at most %d bytes", maxReason))
		return
	}
	id := r.PathValue("id")
	if e, err := s.cfg.Store.Event(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	} else if e.EventType == chronicle.EventTypeRedaction && e.ResourceType == "event" {
		writeError(w, http.StatusConflict, "event "+id+" records a redaction: it stays, or the redaction it records could not be told from tampering")
		return
	}
	by := principal(r).Label
	if by == "" {
		by = "anonymous (access control off)"
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	rid, err := uuid.NewV7()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	record := &chronicle.Event{ID: rid.String(), Actor: by, Action: "redact", ResourceType: "event", ResourceID: id,
		Timestamp: now, EventType: chronicle.EventTypeRedaction}
	if req.Reason != "" {
		record.Metadata = map[string]string{"reason": req.Reason}
	}
	red := chronicle.Redaction{By: by, At: now, Reason: req.Reason, RecordID: record.ID}
	if err := s.cfg.Store.Redact(r.Context(), id, red, record); err != nil {
		s.fail(w, r, err)
		return
	}
	logger(r).Info("event redacted", "id", id, "by", by, "record", record.ID)
	e, err := s.cfg.Store.Event(r.Context(), id)
	if err == nil {
		err = s.keepLeaf(r.Context(), e)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// keepLeaf gives a redacted event the leaf hash its content had, so it
// can be verified without it.
func (s *Server) keepLeaf(ctx context.Context, e *chronicle.Event) error {
	if e.Redacted == nil || e.Seq == nil {
		return nil
	}
	hs, err := s.cfg.Store.LogHashes(ctx, []int64{tlog.StoredHashIndex(0, *e.Seq)})
	if err != nil {
		return err
	}
	e.LeafHash = hs[0][:]
	return nil
}

func rawHashes(hs []chronicle.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// queryParams are a request's query parameters, checked against the ones
// its endpoint takes.
type queryParams struct{ url.Values }

func params(r *http.Request, allowed ...string) (queryParams, error) {
	q, err := query(r)
	if err != nil {
		return queryParams{}, err
	}
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return queryParams{}, chronicle.Errorf(chronicle.ErrInvalid, "unknown query parameter %q", k)
		}
		if len(vs) > 1 {
			return queryParams{}, chronicle.Errorf(chronicle.ErrInvalid, "query parameter %q is given %d times", k, len(vs))
		}
	}
	return queryParams{q}, nil
}

// int64 reads the parameter name, at least lo, or def when absent.
func (p queryParams) int64(name string, def, lo int64) (int64, error) {
	v := p.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo {
		return 0, chronicle.Errorf(chronicle.ErrInvalid, "%s must be an integer of at least %d, not %q", name, lo, v)
	}
	return n, nil
}

// noParams writes an error and returns false when r has query
// parameters.
func (s *Server) noParams(w http.ResponseWriter, r *http.Request) bool {
	if _, err := params(r); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}
