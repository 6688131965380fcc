package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/ingest"
)

// entityInput is POST /entities. Pointers tell a missing key or name from
// an empty one. The attributes may also come as "metadata", the name
// earlier documentation used; both are accepted.
type entityInput struct {
	Key        *string            `json:"key"`
	Name       *string            `json:"name"`
	Attributes map[string]*string `json:"attributes"`
	Metadata   map[string]*string `json:"metadata"`
}

func decodeEntity(body []byte) (*chronicle.Entity, error) {
	if err := ingest.CheckUTF8(body); err != nil {
		return nil, err
	}
	var in entityInput
	if err := json.Unmarshal(body, &in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, chronicle.Errorf(chronicle.ErrInvalid, "field %q has the wrong type: key and name are strings, attributes an object of strings", typeErr.Field)
		}
		return nil, chronicle.Errorf(chronicle.ErrInvalid, "invalid JSON: %v", err)
	}
	attrs, field := in.Attributes, "attributes"
	if attrs == nil {
		attrs, field = in.Metadata, "metadata"
	}
	e := &chronicle.Entity{Attributes: make(map[string]string, len(attrs))}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if attrs[k] == nil {
			return nil, chronicle.Errorf(chronicle.ErrInvalid, "field %q must be a string, not null", field+"."+k)
		}
		e.Attributes[k] = *attrs[k]
	}
	if in.Key == nil || strings.TrimSpace(*in.Key) == "" {
		return nil, chronicle.Errorf(chronicle.ErrInvalid, "missing required field \"key\"")
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, chronicle.Errorf(chronicle.ErrInvalid, "missing required field \"name\"")
	}
	e.Key, e.Name = strings.TrimSpace(*in.Key), strings.TrimSpace(*in.Name)
	for _, err := range []error{ingest.Identifier("key", e.Key), ingest.Identifier("name", e.Name), ingest.TextMap(field, e.Attributes)} {
		if err != nil {
			return nil, err
		}
	}
	for field, v := range map[string]string{"key": e.Key, "name": e.Name} {
		if utf8.RuneCountInString(v) > ingest.MaxFieldLen {
			return nil, &chronicle.ValidationError{Field: field, Reason: fmt.Sprintf("%s is longer than %d characters", field, ingest.MaxFieldLen)}
		}
	}
	if len(e.Attributes) > ingest.MaxMetadataKeys {
		return nil, &chronicle.ValidationError{Field: "attributes", Reason: fmt.Sprintf("attributes has more than %d keys", ingest.MaxMetadataKeys)}
	}
	for k, v := range e.Attributes {
		if utf8.RuneCountInString(k) > ingest.MaxMetadataKeyLen || utf8.RuneCountInString(v) > ingest.MaxMetadataValueLen {
			return nil, &chronicle.ValidationError{Field: "attributes", Reason: fmt.Sprintf("attribute %.40q is too long (keys up to %d, values up to %d characters)", k, ingest.MaxMetadataKeyLen, ingest.MaxMetadataValueLen)}
		}
	}
	return e, nil
}

func (s *Server) putEntity(w http.ResponseWriter, r *http.Request) {
	b, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer b.release()
	body := b.data
	e, err := decodeEntity(body)
	if err == nil {
		err = s.cfg.Store.PutEntity(r.Context(), e)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.EntityResult{Key: e.Key, Status: "created"})
}

func (s *Server) listEntities(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Store.Entities(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*chronicle.Entity{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getEntity(w http.ResponseWriter, r *http.Request) {
	e, err := s.cfg.Store.Entity(r.Context(), r.PathValue("key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) deleteEntity(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := s.cfg.Store.DeleteEntity(r.Context(), key); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.EntityResult{Key: key, Status: "deleted"})
}
