package rabbitmq

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/routing"
)

// dialOnce opens one short-lived connection for an operator command.
func dialOnce(ctx context.Context, rawURL string) (*amqp.Connection, error) {
	t := &Transport{cfg: Config{URL: rawURL, Name: "chronicle cli"}}
	type result struct {
		c   *amqp.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := t.dial("inspect")
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Inspect reports every queue of the topology with its depth and
// consumers, through AMQP alone (no management plugin): what the original system's
// list-queues and rabbit-status showed. A queue not declared yet has
// depth -1.
func Inspect(ctx context.Context, rawURL string, rc *routing.Config) ([]chronicle.QueueStatus, error) {
	conn, err := dialOnce(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return inspect(conn, queueNames(rc))
}

// InspectExchanges reports the topology's exchanges (the unrouted
// alternate exchange included) and whether the broker has them.
func InspectExchanges(ctx context.Context, rawURL string, rc *routing.Config) ([]ExchangeStatus, error) {
	conn, err := dialOnce(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []ExchangeStatus
	for _, name := range sortedExchanges(rc) {
		x := rc.Exchanges[name]
		out = append(out, ExchangeStatus{Name: name, Type: x.Type, Durable: x.Durable})
	}
	out = append(out, ExchangeStatus{Name: unroutedExchange, Type: amqp.ExchangeFanout, Durable: true})
	var ch *amqp.Channel
	for i := range out {
		if ch == nil {
			if ch, err = conn.Channel(); err != nil {
				return nil, fmt.Errorf("open channel: %w", err)
			}
		}
		err := ch.ExchangeDeclarePassive(out[i].Name, out[i].Type, out[i].Durable, false, false, false, nil)
		var ae *amqp.Error
		switch {
		case err == nil:
			out[i].Exists = true
		case errors.As(err, &ae) && ae.Code == amqp.NotFound:
			ch = nil // the broker closed the channel
		default:
			return nil, fmt.Errorf("inspect exchange %s: %w", out[i].Name, err)
		}
	}
	if ch != nil {
		ch.Close()
	}
	return out, nil
}
