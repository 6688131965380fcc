package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/loadgen"
)

// postCommands adds the post commands.
func postCommands(register func(*command)) {
	register(&command{
		name:    "post",
		summary: "send the seed's basic event (alice@example.com login security/session-123); flags change fields",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			def := basicEvent()
			addEventFlags(fs, &def)
		},
		run: runPost,
	})
	register(&command{
		name:    "ingest",
		summary: "send one random event (actors, actions and resource types from fixed lists)",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.Uint64("seed", 0, "seed of the random choice, for a reproducible event (default: random)")
			addOccurredAtFlag(fs)
		},
		run: runIngest,
	})
	register(&command{
		name:    "send",
		args:    "--type security|user|billing|<event_type>",
		summary: "send a typed event: security.login, user.created, billing.charge, or any event_type",
		flags: func(fs *flag.FlagSet) {
			addClientFlags(fs)
			fs.String("type", "", "security, user, billing, or an explicit event_type such as project.archived (required)")
			addEventFlags(fs, nil)
		},
		run: runSend,
	})
}

// basicEvent is what post sends when no flag changes it.
func basicEvent() api.EventInput {
	return api.EventInput{Actor: "alice@example.com", Action: "login", ResourceType: "security", ResourceID: "session-123"}
}

// typedEvent is what send --type sends for the named kinds: security,
// user and billing.
func typedEvent(kind string) (api.EventInput, bool) {
	switch kind {
	case "security":
		return api.EventInput{Actor: "alice@example.com", Action: "login", ResourceType: "auth", ResourceID: "session-123", EventType: "security.login"}, true
	case "user":
		return api.EventInput{Actor: "admin@example.com", Action: "create", ResourceType: "user", ResourceID: "user-456", EventType: "user.created"}, true
	case "billing":
		return api.EventInput{Actor: "billing@example.com", Action: "charge", ResourceType: "invoice", ResourceID: "inv-789", EventType: "billing.charge"}, true
	}
	return api.EventInput{}, false
}

// eventTypeRE is the shape the service requires of an explicit
// event_type, checked here so a mistyped --type is a usage error.
var eventTypeRE = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*$`)

// metadataFlag collects repeated --metadata key=value flags.
type metadataFlag map[string]string

func (m metadataFlag) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return errors.New("must be key=value")
	}
	m[k] = v
	return nil
}

func (m metadataFlag) Get() any { return map[string]string(m) }

// addEventFlags declares the flags that change an event's fields. def, when
// not nil, is the event the command sends, shown as the defaults.
func addEventFlags(fs *flag.FlagSet, def *api.EventInput) {
	d := api.EventInput{}
	if def != nil {
		d = *def
	}
	str := func(name, value, usage string) {
		if def == nil {
			usage += " (default: the type's)"
		}
		fs.String(name, value, usage)
	}
	str("actor", d.Actor, "who acted")
	str("action", d.Action, "what they did")
	str("resource-type", d.ResourceType, "the kind of resource acted on")
	str("resource-id", d.ResourceID, "the resource acted on")
	fs.String("event-type", d.EventType, "explicit event_type (default: derived by the service as resource_type.action)")
	fs.String("correlation-id", "", "correlation_id (default: assigned by the service)")
	fs.String("entity-key", "", "entity_key naming a registered entity, for enrichment")
	fs.Var(metadataFlag{}, "metadata", "a metadata entry key=value (repeatable)")
	addOccurredAtFlag(fs)
}

// addOccurredAtFlag declares --occurred-at.
func addOccurredAtFlag(fs *flag.FlagSet) {
	fs.String("occurred-at", "", "when it happened: RFC 3339 with any offset (2026-01-02T15:04:05+01:00) or a duration ago (90s) (default: not said)")
}

// occurredAtFlag reads --occurred-at, when given, into ev.
func occurredAtFlag(fs *flag.FlagSet, ev *api.EventInput, now time.Time) error {
	v := strings.TrimSpace(flagValue[string](fs, "occurred-at"))
	if v == "" {
		return nil
	}
	t, err := parseTimeFlag(v, now)
	if err != nil {
		return usagef("--occurred-at %q: %v", v, err)
	}
	ev.OccurredAt = t
	return nil
}

// applyEventFlags overrides ev's fields with the event flags that were
// given on the command line.
func applyEventFlags(fs *flag.FlagSet, ev *api.EventInput) error {
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "actor":
			ev.Actor = v
		case "action":
			ev.Action = v
		case "resource-type":
			ev.ResourceType = v
		case "resource-id":
			ev.ResourceID = v
		case "event-type":
			ev.EventType = v
		case "correlation-id":
			ev.CorrelationID = v
		case "entity-key":
			ev.EntityKey = v
		}
	})
	if md := flagValue[map[string]string](fs, "metadata"); len(md) > 0 {
		ev.Metadata = make(map[string]string, len(md))
		for k, v := range md {
			ev.Metadata[k] = v
		}
	}
	return occurredAtFlag(fs, ev, time.Now())
}

func runPost(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	ev := basicEvent()
	if err := applyEventFlags(fs, &ev); err != nil {
		return err
	}
	return sendOne(ctx, env, fs, ev, false)
}

func runIngest(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	ev := loadgen.RandomEvent(loadgen.NewRand(flagValue[uint64](fs, "seed")))
	if err := occurredAtFlag(fs, &ev, time.Now()); err != nil {
		return err
	}
	return sendOne(ctx, env, fs, ev, true)
}

func runSend(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	kind := strings.ToLower(strings.TrimSpace(flagValue[string](fs, "type")))
	switch {
	case len(pos) > 1 || (len(pos) == 1 && kind != ""):
		return usagef("give the type once: --type security|user|billing|<event_type>")
	case len(pos) == 1:
		kind = strings.ToLower(strings.TrimSpace(pos[0]))
	case kind == "":
		return usagef("--type is required: security, user, billing or an event_type such as project.archived")
	}
	ev, ok := typedEvent(kind)
	if !ok {
		if !eventTypeRE.MatchString(kind) {
			return usagef("--type %q: must be security, user, billing, or an event_type of lower-case words of a-z, 0-9, _ and - separated by dots", kind)
		}
		// An explicit event_type: the resource type and action are its
		// first and last words, so the event reads naturally.
		words := strings.Split(kind, ".")
		ev = api.EventInput{Actor: "alice@example.com", Action: words[len(words)-1], ResourceType: words[0], ResourceID: "cli-1", EventType: kind}
	}
	if err := applyEventFlags(fs, &ev); err != nil {
		return err
	}
	return sendOne(ctx, env, fs, ev, false)
}

// sendOne posts ev and prints the accepted id (with the event when
// describe is set, since the user did not choose it), or the whole answer
// with --json.
func sendOne(ctx context.Context, env *Env, fs *flag.FlagSet, ev api.EventInput, describe bool) error {
	c, err := clientFromFlags(env, fs, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	acc, err := c.Post(ctx, ev)
	if err != nil {
		return err
	}
	if flagValue[bool](fs, "json") {
		out := struct {
			api.Accepted
			Event api.EventInput `json:"event"`
		}{acc, ev}
		return writeJSON(env.Stdout, out)
	}
	if describe {
		_, err = fmt.Fprintf(env.Stdout, "%s  %s %s %s/%s\n", acc.ID, ev.Actor, ev.Action, ev.ResourceType, ev.ResourceID)
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, acc.ID)
	return err
}
