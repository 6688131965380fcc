package loadgen_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/chronicle-audit/chronicle/client"
	"github.com/chronicle-audit/chronicle/loadgen"
)

// Flood sends random events concurrently and summarises the answers.
func ExampleFlood() {
	// A stand-in for a running Chronicle that accepts every event.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"accepted","id":"x"}`)
	}))
	defer srv.Close()

	// Each request is sent once, so that every refusal is counted.
	c, err := client.New(srv.URL, client.Options{MaxAttempts: 1, Conns: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sum, err := loadgen.Flood(context.Background(), c, loadgen.FloodOptions{Events: 200, Concurrency: 4, Seed: 7})
	if err != nil {
		log.Fatal(err) // options it refuses
	}
	fmt.Printf("sent %d, accepted %d, rejected %d, errors %d: %v\n", sum.Sent, sum.Accepted, sum.Rejected, sum.Errors, sum.Err())
	// Output: sent 200, accepted 200, rejected 0, errors 0: <nil>
}
