package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/chronicle-audit/chronicle/api"
)

// Sinks reports every outbound sink: status, cursor, lag, counters and
// last error. Admin scope.
func (c *Client) Sinks(ctx context.Context) ([]api.Sink, error) {
	var out []api.Sink
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/sinks", idempotent: true, decode: into(&out)})
	return out, err
}

// ReplaySink asks the service to send the events of sink name with from
// <= seq < to again; to nil means up to the sink's cursor. The cursor
// does not move. A replay request replaces a pending one, so repeating it
// is safe. Admin scope.
func (c *Client) ReplaySink(ctx context.Context, name string, from int64, to *int64) (api.SinkReplayed, error) {
	var out api.SinkReplayed
	body, err := jsonBody(api.SinkReplay{From: &from, To: to})
	if err != nil {
		return out, err
	}
	_, err = c.send(ctx, call{method: http.MethodPost, path: "/sinks/" + url.PathEscape(name) + "/replay", body: body,
		idempotent: true, decode: into(&out)})
	return out, err
}
