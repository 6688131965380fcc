package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
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

// eventInput is what POST /events takes. The server assigns id and
// timestamp, so they are not sent.
type eventInput struct {
	Actor         string            `json:"actor"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type"`
	ResourceID    string            `json:"resource_id"`
	EventType     string            `json:"event_type,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	EntityKey     string            `json:"entity_key,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// acceptedResponse is the answer to an accepted event.
type acceptedResponse struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// basicEvent is the seed's `just post` event.
func basicEvent() eventInput {
	return eventInput{Actor: "alice@example.com", Action: "login", ResourceType: "security", ResourceID: "session-123"}
}

// typedEvents are the seed's send-security-event, send-user-event and
// send-billing-event, by --type.
func typedEvent(kind string) (eventInput, bool) {
	switch kind {
	case "security":
		return eventInput{Actor: "alice@example.com", Action: "login", ResourceType: "auth", ResourceID: "session-123", EventType: "security.login"}, true
	case "user":
		return eventInput{Actor: "admin@example.com", Action: "create", ResourceType: "user", ResourceID: "user-456", EventType: "user.created"}, true
	case "billing":
		return eventInput{Actor: "billing@example.com", Action: "charge", ResourceType: "invoice", ResourceID: "inv-789", EventType: "billing.charge"}, true
	}
	return eventInput{}, false
}

// eventTypeRE is the shape the server requires of an explicit event_type
// (SPEC §10), checked here so a mistyped --type is a usage error.
var eventTypeRE = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*$`)

// The fixed lists random events are drawn from, in the seed's spirit:
// derived event types such as security.login, user.create and
// billing.delete reach the typed routes, the others only the catch-all.
var (
	sampleActors        = []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}
	sampleActions       = []string{"login", "logout", "create", "update", "delete", "view"}
	sampleResourceTypes = []string{"document", "user", "security", "billing", "project"}
)

// randomEvent draws one event from the sample lists.
func randomEvent(rng *rand.Rand) eventInput {
	rt := sampleResourceTypes[rng.IntN(len(sampleResourceTypes))]
	return eventInput{
		Actor:        sampleActors[rng.IntN(len(sampleActors))],
		Action:       sampleActions[rng.IntN(len(sampleActions))],
		ResourceType: rt,
		ResourceID:   fmt.Sprintf("%s-%d", rt, 1+rng.IntN(999)),
	}
}

// newRand returns a generator seeded with seed, or randomly when seed is 0.
func newRand(seed uint64) *rand.Rand {
	if seed == 0 {
		return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return rand.New(rand.NewPCG(seed, seed))
}

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
func addEventFlags(fs *flag.FlagSet, def *eventInput) {
	d := eventInput{}
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
}

// applyEventFlags overrides ev's fields with the event flags that were
// given on the command line.
func applyEventFlags(fs *flag.FlagSet, ev *eventInput) {
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
}

// postEvent sends ev and returns the service's answer.
func postEvent(ctx context.Context, c *client, ev eventInput) (acceptedResponse, error) {
	var acc acceptedResponse
	_, err := c.do(ctx, "POST", "/events", ev, &acc)
	return acc, err
}

func runPost(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	ev := basicEvent()
	applyEventFlags(fs, &ev)
	return sendOne(ctx, env, fs, ev, false)
}

func runIngest(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	ev := randomEvent(newRand(flagValue[uint64](fs, "seed")))
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
		ev = eventInput{Actor: "alice@example.com", Action: words[len(words)-1], ResourceType: words[0], ResourceID: "cli-1", EventType: kind}
	}
	applyEventFlags(fs, &ev)
	return sendOne(ctx, env, fs, ev, false)
}

// sendOne posts ev and prints the accepted id (with the event when
// describe is set, since the user did not choose it), or the whole answer
// with --json.
func sendOne(ctx context.Context, env *Env, fs *flag.FlagSet, ev eventInput, describe bool) error {
	c, err := clientFromFlags(env, fs, 1)
	if err != nil {
		return err
	}
	defer c.close()
	acc, err := postEvent(ctx, c, ev)
	if err != nil {
		return err
	}
	if flagValue[bool](fs, "json") {
		out := struct {
			acceptedResponse
			Event eventInput `json:"event"`
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
