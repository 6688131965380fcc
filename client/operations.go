package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
)

// Health asks the service whether it is healthy. It asks once: the answer
// is the state now, which a retry would hide. On a 503 it returns the
// decoded answer, which says what is wrong, along with the *Error.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/health", once: true, decode: into(&h)})
	var ae *Error
	if errors.As(err, &ae) {
		var unhealthy api.Health
		if json.Unmarshal(ae.Body, &unhealthy) == nil && unhealthy.Status != "" {
			return unhealthy, err
		}
	}
	return h, err
}

// Queues reports every queue of the service's in-process transport (route,
// dead-letter and unrouted) with its depth and consumers. Admin scope.
func (c *Client) Queues(ctx context.Context) ([]chronicle.QueueStatus, error) {
	var qs []chronicle.QueueStatus
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/queues", idempotent: true, decode: into(&qs)})
	return qs, err
}

// DeadLetterQueues lists the dead-letter queues and the unrouted queue.
// Admin scope, as every dead-letter method.
func (c *Client) DeadLetterQueues(ctx context.Context) ([]api.DeadLetterQueue, error) {
	var qs []api.DeadLetterQueue
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/dlq", idempotent: true, decode: into(&qs)})
	return qs, err
}

// PeekDeadLetters returns up to limit messages from the head of queue
// without removing them; limit 0 is the service's default (100).
func (c *Client) PeekDeadLetters(ctx context.Context, queue string, limit int) ([]chronicle.DeadLetter, error) {
	path := "/dlq/" + url.PathEscape(queue)
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var dl []chronicle.DeadLetter
	_, err := c.send(ctx, call{method: http.MethodGet, path: path, idempotent: true, decode: into(&dl)})
	return dl, err
}

// ReplayDeadLetters sends the selected messages of queue back to the
// queue each died in and returns how many; an empty Selection replays
// them all. It is not retried after a failure that may have replayed
// some.
func (c *Client) ReplayDeadLetters(ctx context.Context, queue string, sel api.Selection) (int, error) {
	var out api.Replayed
	err := c.dlq(ctx, http.MethodPost, "/dlq/"+url.PathEscape(queue)+"/replay", sel, &out)
	return out.Replayed, err
}

// PurgeDeadLetters deletes the selected messages of queue for good and
// returns how many. The service wants the selection said: IDs, a Limit,
// or All.
func (c *Client) PurgeDeadLetters(ctx context.Context, queue string, sel api.Selection) (int, error) {
	var out api.Purged
	err := c.dlq(ctx, http.MethodDelete, "/dlq/"+url.PathEscape(queue), sel, &out)
	return out.Purged, err
}

func (c *Client) dlq(ctx context.Context, method, path string, sel api.Selection, out any) error {
	body, err := jsonBody(sel)
	if err != nil {
		return err
	}
	_, err = c.send(ctx, call{method: method, path: path, body: body, decode: into(out)})
	return err
}

// Metric returns the first unlabeled sample of the metric name in the
// service's /metrics (Prometheus text format), such as
// process_resident_memory_bytes. A metric the service does not report,
// or a service without /metrics, is an error wrapping
// chronicle.ErrNotFound.
func (c *Client) Metric(ctx context.Context, name string) (float64, error) {
	var v float64
	found := false
	_, err := c.send(ctx, call{method: http.MethodGet, path: "/metrics", accept: "text/plain", idempotent: true,
		decode: func(r io.Reader) error {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			for sc.Scan() {
				rest, ok := strings.CutPrefix(sc.Text(), name+" ")
				if !ok {
					continue
				}
				fields := strings.Fields(rest)
				if len(fields) == 0 {
					return fmt.Errorf("metric %s has no value", name)
				}
				f, err := strconv.ParseFloat(fields[0], 64)
				if err != nil {
					return fmt.Errorf("metric %s: %w", name, err)
				}
				v, found = f, true
				return nil
			}
			return sc.Err()
		}})
	switch {
	case err != nil:
		return 0, err
	case !found:
		return 0, fmt.Errorf("metric %s: %w in /metrics", name, chronicle.ErrNotFound)
	}
	return v, nil
}
