// Package loadgen drives a running Chronicle with generated audit events,
// through package client, and measures what the service does with them.
// Flood sends a number of random events and summarises the answers;
// Bench loads the service for a time (or a count), waits until every
// accepted event is stored, and reports throughput, latency and the
// service's memory. The chronicle command's flood and bench subcommands
// parse flags, call these and print the results.
package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chronicle-audit/chronicle/api"
)

// OptionsError is options that Flood or Bench refuse. Its message names
// the chronicle command's flag, so a command line can show it as is.
type OptionsError struct {
	Msg string
}

func (e *OptionsError) Error() string { return e.Msg }

func optionsErrorf(format string, args ...any) error {
	return &OptionsError{Msg: fmt.Sprintf(format, args...)}
}

// The fixed lists random events are drawn from. Derived event types such
// as security.login, user.create and billing.delete reach the typed
// routes; the others reach only the catch-all route.
var (
	sampleActors        = []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}
	sampleActions       = []string{"login", "logout", "create", "update", "delete", "view"}
	sampleResourceTypes = []string{"document", "user", "security", "billing", "project"}
)

// RandomEvent draws one event from fixed lists of actors, actions and
// resource types; the service derives its event_type.
func RandomEvent(rng *rand.Rand) api.EventInput {
	rt := sampleResourceTypes[rng.IntN(len(sampleResourceTypes))]
	return api.EventInput{
		Actor:        sampleActors[rng.IntN(len(sampleActors))],
		Action:       sampleActions[rng.IntN(len(sampleActions))],
		ResourceType: rt,
		ResourceID:   fmt.Sprintf("%s-%d", rt, 1+rng.IntN(999)),
	}
}

// NewRand returns a generator seeded with seed, or randomly when seed is
// 0.
func NewRand(seed uint64) *rand.Rand {
	if seed == 0 {
		return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return rand.New(rand.NewPCG(seed, seed))
}

// percentile is the nearest-rank percentile p (0 to 1) of sorted
// durations, 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Latencies are percentiles of request latencies, in milliseconds.
type Latencies struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// latencies summarises d, which it sorts.
func latencies(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	slices.Sort(d)
	at := func(p float64) float64 { return ms(percentile(d, p)) }
	return Latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
