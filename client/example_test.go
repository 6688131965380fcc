package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/api"
	"github.com/chronicle-audit/chronicle/client"
)

// A producer sends an audit event and gets its id back once Chronicle
// holds it durably.
func Example() {
	srv := fakeChronicle() // a running Chronicle, such as http://localhost:8080
	defer srv.Close()

	c, err := client.New(srv.URL, client.Options{APIKey: "ingest-key"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	acc, err := c.Post(context.Background(), api.EventInput{
		Actor:        "alice@example.com",
		Action:       "login",
		ResourceType: "security",
		ResourceID:   "session-123",
		Metadata:     map[string]string{"ip": "192.0.2.7"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(acc.Status, acc.ID)
	// Output: accepted evt-1
}

// Events follows the pages of a listing, newest event first, holding one
// page at a time.
func ExampleClient_Events() {
	srv := fakeChronicle()
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, actor := range []string{"alice@example.com", "bob@example.com", "alice@example.com", "alice@example.com"} {
		if _, err := c.Post(ctx, api.EventInput{Actor: actor, Action: "update", ResourceType: "document", ResourceID: "doc-1"}); err != nil {
			log.Fatal(err)
		}
	}

	// Pages of two events: Events fetches the second page when the
	// first is consumed.
	for e, err := range c.Events(ctx, client.Query{Actor: "alice@example.com", Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.ID, e.Timestamp.Format(time.TimeOnly), e.Actor, e.Action)
	}
	// Output:
	// evt-4 15:04:03 alice@example.com update
	// evt-3 15:04:02 alice@example.com update
	// evt-1 15:04:00 alice@example.com update
}

// An answer outside 2xx is a *client.Error: its status, and the reason of
// a validation failure. Such an event is never retried: it would be
// refused again.
func ExampleError() {
	srv := fakeChronicle()
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Post(context.Background(), api.EventInput{Actor: " ", Action: "login", ResourceType: "security", ResourceID: "s-1"})
	var ae *client.Error
	if errors.As(err, &ae) {
		fmt.Println(ae.Status, ae.Reason)
	}
	fmt.Println(errors.Is(err, chronicle.ErrInvalid))
	fmt.Println(err)
	// Output:
	// 422 actor is required
	// true
	// service answered 422 Unprocessable Entity: validation_failed: actor is required
}

func ExampleClient_Health() {
	srv := fakeChronicle()
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	h, err := c.Health(context.Background())
	if err != nil {
		// On a 503, h still says what is wrong.
		fmt.Println(h.Status, h.Error)
		return
	}
	fmt.Println(h.Status, h.Transport, h.Store, *h.Entities)
	// Output: healthy inproc sqlite 0
}

// fakeChronicle stands in for a Chronicle service in the examples: it
// accepts single events (ids evt-1, evt-2…, a second apart), lists them
// newest first in pages linked by Link headers, and reports its health.
func fakeChronicle() *httptest.Server {
	var (
		mu     sync.Mutex
		events []*chronicle.Event
	)
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var in api.EventInput
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			reply(w, http.StatusBadRequest, api.Error{Error: "invalid JSON"})
			return
		}
		if strings.TrimSpace(in.Actor) == "" {
			reply(w, http.StatusUnprocessableEntity, api.Error{Error: "validation_failed", Reason: "actor is required"})
			return
		}
		mu.Lock()
		e := &chronicle.Event{ID: "evt-" + strconv.Itoa(len(events)+1), Actor: in.Actor, Action: in.Action,
			ResourceType: in.ResourceType, ResourceID: in.ResourceID, Metadata: in.Metadata,
			Timestamp: time.Date(2026, 1, 2, 15, 4, len(events), 0, time.UTC)}
		events = append(events, e)
		mu.Unlock()
		reply(w, http.StatusAccepted, api.Accepted{Status: "accepted", ID: e.ID})
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit == 0 {
			limit = chronicle.DefaultLimit
		}
		skip, _ := strconv.Atoi(q.Get("cursor")) // a real cursor is opaque
		mu.Lock()
		var page []*chronicle.Event
		matched := 0
		for i := len(events) - 1; i >= 0 && len(page) < limit; i-- {
			if a := q.Get("actor"); a != "" && events[i].Actor != a {
				continue
			}
			if matched++; matched > skip {
				page = append(page, events[i])
			}
		}
		mu.Unlock()
		if len(page) == limit {
			q.Set("cursor", strconv.Itoa(skip+limit))
			w.Header().Set("Link", "</events?"+q.Encode()+`>; rel="next"`)
		}
		reply(w, http.StatusOK, page)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		zero := 0
		reply(w, http.StatusOK, api.Health{Status: "healthy", Transport: "inproc", Store: "sqlite", Entities: &zero, Auth: "off"})
	})
	return httptest.NewServer(mux)
}
