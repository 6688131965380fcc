package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/config"
	"github.com/chronicle-audit/chronicle/rabbitmq"
)

// brokerCommands adds queues and exchanges, which show the broker's queues
// and exchanges through AMQP (no management plugin needed).
func brokerCommands(register func(*command)) {
	register(&command{
		name:    "queues",
		summary: "show every queue with its depth and consumers (RabbitMQ through AMQP; in process, asks the service)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.String("config", "", "routing file (default: CHRONICLE_CONFIG, else the built-in one)")
		},
		run: runQueues,
	})
	register(&command{
		name:    "exchanges",
		summary: "show the configured exchanges and whether RabbitMQ has them",
		flags: func(fs *flag.FlagSet) {
			addJSONFlag(fs)
			fs.String("config", "", "routing file (default: CHRONICLE_CONFIG, else the built-in one)")
			fs.Duration("timeout", 10*time.Second, "bound of the broker connection")
		},
		run: runExchanges,
	})
}

func runQueues(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	c, err := showConfig(env, fs, args)
	if err != nil {
		return err
	}
	var qs []chronicle.QueueStatus
	source := ""
	if c.Transport == config.TransportRabbitMQ {
		ctx, cancel := context.WithTimeout(ctx, flagValue[time.Duration](fs, "timeout"))
		defer cancel()
		if qs, err = rabbitmq.Inspect(ctx, c.RabbitMQURL, c.Routing); err != nil {
			return err
		}
		source = "RabbitMQ at " + config.Redact(c.RabbitMQURL)
	} else {
		cl, err := clientFromFlags(env, fs, client.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		if qs, err = cl.Queues(ctx); err != nil {
			return err
		}
		source = "the in-process transport of " + cl.String()
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, qs)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tKIND\tROUTE\tDEPTH\tCONSUMERS")
	for _, q := range qs {
		depth := fmt.Sprint(q.Depth)
		if q.Depth < 0 {
			depth = "(not declared)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", q.Name, q.Kind, dash(q.Route), depth, q.Consumers)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nfrom %s\n", source)
	return nil
}

func runExchanges(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	c, err := showConfig(env, fs, args)
	if err != nil {
		return err
	}
	if c.Transport != config.TransportRabbitMQ {
		return usagef("exchanges are RabbitMQ's: set CHRONICLE_TRANSPORT=rabbitmq (in process, `chronicle routes` shows the topology)")
	}
	ctx, cancel := context.WithTimeout(ctx, flagValue[time.Duration](fs, "timeout"))
	defer cancel()
	xs, err := rabbitmq.InspectExchanges(ctx, c.RabbitMQURL, c.Routing)
	if err != nil {
		return err
	}
	if flagValue[bool](fs, "json") {
		return writeJSON(env.Stdout, xs)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXCHANGE\tTYPE\tDURABLE\tON THE BROKER")
	for _, x := range xs {
		on := "yes"
		if !x.Exists {
			on = "no (declared when Chronicle starts)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", x.Name, x.Type, x.Durable, on)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
