package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// An export (GET /events/export) in CSV: RFC 4180, a header row of
// CSVColumns, one row per event, then one trailer row. The columns hold
// what the NDJSON export's fields hold, as text: times in
// chronicle.TimestampLayout, metadata and redacted as JSON objects,
// leaf_hash in standard base64; an absent field is an empty cell.

// CSVColumns are the columns of a CSV export, in order.
var CSVColumns = []string{"seq", "id", "timestamp", "occurred_at", "event_type", "actor", "action",
	"resource_type", "resource_id", "correlation_id", "entity_key", "metadata", "redacted", "leaf_hash"}

// CSVTrailerMark is the seq cell of a CSV export's trailer row; its
// metadata cell holds the trailer, {"count":N,"last_seq":M}. No event's
// seq can be this word.
const CSVTrailerMark = "trailer"

// csvMetadata is the index of the metadata column.
const csvMetadata = 11

// Headers of an export's HTTP trailer: the same count and last seq as
// its trailer line or row, for clients that read HTTP trailers.
const (
	ExportCountTrailer   = "Chronicle-Export-Count"
	ExportLastSeqTrailer = "Chronicle-Export-Last-Seq"
)

// CSVRecord is e as a row of CSVColumns.
func CSVRecord(e *chronicle.Event) ([]string, error) {
	rec := make([]string, len(CSVColumns))
	if e.Seq != nil {
		rec[0] = strconv.FormatInt(*e.Seq, 10)
	}
	rec[1] = e.ID
	rec[2] = e.Timestamp.UTC().Format(chronicle.TimestampLayout)
	if !e.OccurredAt.IsZero() {
		rec[3] = e.OccurredAt.UTC().Format(chronicle.TimestampLayout)
	}
	rec[4], rec[5], rec[6], rec[7], rec[8], rec[9], rec[10] = e.EventType, e.Actor, e.Action, e.ResourceType, e.ResourceID, e.CorrelationID, e.EntityKey
	if len(e.Metadata) > 0 {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, err
		}
		rec[11] = string(b)
	}
	if e.Redacted != nil {
		b, err := json.Marshal(e.Redacted)
		if err != nil {
			return nil, err
		}
		rec[12] = string(b)
	}
	if len(e.LeafHash) > 0 {
		rec[13] = base64.StdEncoding.EncodeToString(e.LeafHash)
	}
	return rec, nil
}

// CSVTrailerRecord is the trailer row of t.
func CSVTrailerRecord(t ExportTrailer) ([]string, error) {
	b, err := json.Marshal(t.Trailer)
	if err != nil {
		return nil, err
	}
	rec := make([]string, len(CSVColumns))
	rec[0], rec[csvMetadata] = CSVTrailerMark, string(b)
	return rec, nil
}

// ParseCSVRecord reads a row of a CSV export: an event, or (trailer not
// nil) the trailer row.
func ParseCSVRecord(rec []string) (e *chronicle.Event, trailer *ExportTrailer, err error) {
	if len(rec) != len(CSVColumns) {
		return nil, nil, fmt.Errorf("a row of %d fields, want %d", len(rec), len(CSVColumns))
	}
	if rec[0] == CSVTrailerMark {
		trailer = new(ExportTrailer)
		if err := json.Unmarshal([]byte(rec[csvMetadata]), &trailer.Trailer); err != nil {
			return nil, nil, fmt.Errorf("trailer row: %w", err)
		}
		return nil, trailer, nil
	}
	e = &chronicle.Event{ID: rec[1], EventType: rec[4], Actor: rec[5], Action: rec[6], ResourceType: rec[7],
		ResourceID: rec[8], CorrelationID: rec[9], EntityKey: rec[10]}
	var errs []error
	if rec[0] != "" {
		seq, err := strconv.ParseInt(rec[0], 10, 64)
		errs = append(errs, named("seq", err))
		e.Seq = &seq
	}
	e.Timestamp, err = time.Parse(time.RFC3339Nano, rec[2])
	errs = append(errs, named("timestamp", err))
	if rec[3] != "" {
		e.OccurredAt, err = time.Parse(time.RFC3339Nano, rec[3])
		errs = append(errs, named("occurred_at", err))
	}
	e.Timestamp, e.OccurredAt = e.Timestamp.UTC(), e.OccurredAt.UTC()
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.Time{}
	}
	if rec[11] != "" {
		errs = append(errs, named("metadata", json.Unmarshal([]byte(rec[11]), &e.Metadata)))
	}
	if rec[12] != "" {
		e.Redacted = new(chronicle.Redaction)
		errs = append(errs, named("redacted", json.Unmarshal([]byte(rec[12]), e.Redacted)))
	}
	if rec[13] != "" {
		e.LeafHash, err = base64.StdEncoding.DecodeString(rec[13])
		errs = append(errs, named("leaf_hash", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return e, nil, nil
}

func named(column string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", column, err)
	}
	return nil
}
