package routing

import "sync"

// Router answers which routes an event type goes to, the way the publish
// exchange would route it. It is safe for concurrent use and remembers
// recent answers, since event types repeat.
type Router struct {
	kind   string
	routes []*Route
	pats   []pattern

	mu    sync.RWMutex
	cache map[string]routed
}

// routed is the answer for one event type.
type routed struct {
	routes []*Route
	queues []string
}

// maxCached bounds the memory a flood of distinct event types can take.
const maxCached = 4096

// NewRouter compiles the routes of c.
func NewRouter(c *Config) *Router {
	r := &Router{
		kind:   c.PublishExchange().Type,
		routes: c.Routes,
		cache:  make(map[string]routed),
	}
	for _, rt := range c.Routes {
		r.pats = append(r.pats, compilePattern(rt.RoutingKey))
	}
	return r
}

// Routes returns the routes an event of eventType is delivered to, in
// configuration order; none means the event is unrouted. The slice is
// shared: do not modify it.
func (r *Router) Routes(eventType string) []*Route { return r.route(eventType).routes }

// Queues returns the queues an event of eventType goes to: its routes'
// queues, or the unrouted queue. The slice is shared: do not modify it.
func (r *Router) Queues(eventType string) []string { return r.route(eventType).queues }

func (r *Router) route(eventType string) routed {
	r.mu.RLock()
	out, ok := r.cache[eventType]
	r.mu.RUnlock()
	if ok {
		return out
	}
	for i, rt := range r.routes {
		if r.matches(i, eventType) {
			out.routes = append(out.routes, rt)
			out.queues = append(out.queues, rt.Queue)
		}
	}
	if len(out.queues) == 0 {
		out.queues = []string{UnroutedQueue}
	}
	r.mu.Lock()
	if len(r.cache) >= maxCached {
		clear(r.cache)
	}
	r.cache[eventType] = out
	r.mu.Unlock()
	return out
}

func (r *Router) matches(i int, key string) bool {
	switch r.kind {
	case Fanout:
		return true
	case Direct:
		return r.routes[i].RoutingKey == key
	default:
		return r.pats[i].match(key)
	}
}
