package api

import (
	"encoding/json"
	"time"

	"github.com/chronicle-audit/chronicle"
)

// Sink is one outbound stream of GET /sinks: its configuration (never its
// secret), where its cursor stands in the log, and how its delivery goes.
type Sink struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Format  string `json:"format"`
	Pattern string `json:"pattern"`
	// Target is the webhook's URL (without its query) or the file sink's
	// directory.
	Target string `json:"target"`
	// Status is "delivering" (this process delivers it and its last
	// attempt succeeded, or it is caught up), "failing" (its last
	// attempt failed; it retries), "standby" (another process delivers
	// it), "starting" or "stopped".
	Status string `json:"status"`
	// Cursor is the seq of the next event to deliver; LogSize how many
	// events the log holds; Lag the difference, events not yet delivered
	// (some may not match the pattern).
	Cursor  int64 `json:"cursor"`
	LogSize int64 `json:"log_size"`
	Lag     int64 `json:"lag"`
	// ReplayFrom and ReplayTo are the replay pending, if any.
	ReplayFrom *int64 `json:"replay_from,omitempty"`
	ReplayTo   *int64 `json:"replay_to,omitempty"`
	// Counters of this process since it started.
	Delivered   uint64 `json:"delivered"`
	Redelivered uint64 `json:"redelivered"`
	Failures    uint64 `json:"failures"`
	// LastError is the last failed attempt's reason, LastErrorAt when.
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
}

// SinkHealth is a sink as GET /health shows it: a failing sink does not
// make Chronicle unhealthy (it keeps every event and retries), but it is
// shown.
type SinkHealth struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Lag    int64  `json:"lag"`
	Error  string `json:"error,omitempty"`
}

// SinkReplay is the body of POST /sinks/{name}/replay: send again the
// events with From <= seq < To; To defaults to the sink's cursor.
type SinkReplay struct {
	From *int64 `json:"from"`
	To   *int64 `json:"to,omitempty"`
}

// SinkReplayed is the answer to a replay: the range that will be sent
// again (To cut at the cursor) and the cursor, which a replay never moves.
type SinkReplayed struct {
	Sink   string `json:"sink"`
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Cursor int64  `json:"cursor"`
}

// MarshalJSON writes the times with chronicle.TimestampLayout, like every
// time the API gives, and leaves out the ones not set.
func (s Sink) MarshalJSON() ([]byte, error) {
	type plain Sink
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(chronicle.TimestampLayout)
	}
	return json.Marshal(struct {
		plain
		LastErrorAt     string `json:"last_error_at,omitempty"`
		LastDeliveredAt string `json:"last_delivered_at,omitempty"`
	}{plain(s), stamp(s.LastErrorAt), stamp(s.LastDeliveredAt)})
}
