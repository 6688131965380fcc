package rabbitmq

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/routing"
)

// unroutedExchange is the publish exchange's alternate exchange: the
// broker sends it whatever no binding matches, and it feeds the unrouted
// queue.
const unroutedExchange = routing.UnroutedQueue

// Declare declares the routing configuration's topology, idempotently:
// exchanges (the publish exchange with the unrouted alternate exchange),
// route queues (durable, dead-lettering to their own DLQ with the DLQ's
// name as routing key), their bindings, the DLQs and the unrouted queue.
// A declaration that conflicts with what the broker holds is an error
// that names the exchange or queue and what differs.
func Declare(conn *amqp.Connection, rc *routing.Config) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	publish := rc.PublishExchange().Name

	if err := ch.ExchangeDeclare(unroutedExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return conflict("exchange", unroutedExchange, err)
	}
	if _, err := ch.QueueDeclare(routing.UnroutedQueue, true, false, false, false, nil); err != nil {
		return conflict("queue", routing.UnroutedQueue, err)
	}
	if err := ch.QueueBind(routing.UnroutedQueue, "", unroutedExchange, false, nil); err != nil {
		return conflict("binding of queue", routing.UnroutedQueue, err)
	}
	for _, name := range sortedExchanges(rc) {
		x := rc.Exchanges[name]
		var args amqp.Table
		if name == publish {
			args = amqp.Table{"alternate-exchange": unroutedExchange}
		}
		if err := ch.ExchangeDeclare(name, x.Type, x.Durable, false, false, false, args); err != nil {
			return conflict("exchange", name, err)
		}
	}
	for _, r := range rc.Routes {
		if r.DeadLetterQueue != "" {
			if _, err := ch.QueueDeclare(r.DeadLetterQueue, true, false, false, false, nil); err != nil {
				return conflict("queue", r.DeadLetterQueue, err)
			}
			if err := ch.QueueBind(r.DeadLetterQueue, r.DeadLetterQueue, r.DeadLetterExchange, false, nil); err != nil {
				return conflict("binding of queue", r.DeadLetterQueue, err)
			}
		}
		if _, err := ch.QueueDeclare(r.Queue, true, false, false, false, queueArgs(r)); err != nil {
			return conflict("queue", r.Queue, err)
		}
		if err := ch.QueueBind(r.Queue, r.RoutingKey, r.Exchange, false, nil); err != nil {
			return conflict("binding of queue", r.Queue, err)
		}
	}
	return nil
}

// queueArgs are a route queue's arguments. Classic queues carry no
// x-queue-type, so a queue the original system declared is still equivalent.
func queueArgs(r *routing.Route) amqp.Table {
	args := amqp.Table{}
	if r.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = r.DeadLetterExchange
		args["x-dead-letter-routing-key"] = r.DeadLetterQueue
	}
	if r.QueueType == routing.Quorum {
		args["x-queue-type"] = "quorum"
		if r.DeliveryLimit > 0 {
			args["x-delivery-limit"] = int64(r.DeliveryLimit)
		}
	}
	return args
}

func sortedExchanges(rc *routing.Config) []string {
	names := make([]string, 0, len(rc.Exchanges))
	for n := range rc.Exchanges {
		names = append(names, n)
	}
	sort.Strings(names)
	// Dead-letter exchanges first: route queues name them.
	publish := rc.PublishExchange().Name
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != publish {
			out = append(out, n)
		}
	}
	return append(out, publish)
}

// conflict explains a failed declaration. PRECONDITION_FAILED means the
// broker already holds the entity with other settings; the broker's reason
// says which ("inequivalent arg 'x-dead-letter-exchange' …").
func conflict(kind, name string, err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.PreconditionFailed:
			return &fatalError{fmt.Errorf("declare %s %q: RabbitMQ already has it with different settings (%s); delete it or change the routing configuration",
				kind, name, strings.TrimPrefix(ae.Reason, "PRECONDITION_FAILED - "))}
		case amqp.AccessRefused:
			return &fatalError{fmt.Errorf("declare %s %q: permission denied: %s", kind, name, ae.Reason)}
		}
	}
	return fmt.Errorf("declare %s %q: %w", kind, name, err)
}

// queueNames lists every queue of the topology, in report order.
func queueNames(rc *routing.Config) []chronicle.QueueStatus {
	var out []chronicle.QueueStatus
	for _, r := range rc.Routes {
		out = append(out, chronicle.QueueStatus{Name: r.Queue, Kind: chronicle.QueueRoute, Route: r.Name})
		if r.DeadLetterQueue != "" {
			out = append(out, chronicle.QueueStatus{Name: r.DeadLetterQueue, Kind: chronicle.QueueDeadLetter, Route: r.Name})
		}
	}
	return append(out, chronicle.QueueStatus{Name: routing.UnroutedQueue, Kind: chronicle.QueueUnrouted})
}

// inspect reads each queue's depth and consumer count with passive
// declarations: no management plugin needed. A queue that does not exist
// reports depth -1.
func inspect(conn *amqp.Connection, qs []chronicle.QueueStatus) ([]chronicle.QueueStatus, error) {
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			ch.Close()
		}
	}()
	for i := range qs {
		if ch == nil {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return nil, unavailable("open channel", err)
			}
		}
		q, err := ch.QueueDeclarePassive(qs[i].Name, true, false, false, false, nil)
		if err != nil {
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				qs[i].Depth = -1
				ch = nil // the broker closed the channel
				continue
			}
			return nil, unavailable("inspect queue "+qs[i].Name, err)
		}
		qs[i].Depth, qs[i].Consumers = q.Messages, q.Consumers
	}
	return qs, nil
}

// ExchangeStatus is what `chronicle exchanges` shows of one exchange.
type ExchangeStatus struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Durable bool   `json:"durable"`
	Exists  bool   `json:"exists"`
}
