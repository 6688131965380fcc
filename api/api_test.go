package api_test

import (
	"encoding/json"
	"testing"

	"github.com/chronicle-audit/chronicle/api"
)

// The wire shapes are a contract with every client: these are the exact
// bytes the service writes.
func TestJSON(t *testing.T) {
	t.Parallel()
	three, one := 3, 1
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"EventInputMinimal", api.EventInput{Actor: "a", Action: "login", ResourceType: "security", ResourceID: ""},
			`{"actor":"a","action":"login","resource_type":"security","resource_id":""}`},
		{"EventInputFull", api.EventInput{Actor: "a", Action: "b", ResourceType: "c", ResourceID: "d", EventType: "c.b", CorrelationID: "r", EntityKey: "k", Metadata: map[string]string{"ip": "x"}},
			`{"actor":"a","action":"b","resource_type":"c","resource_id":"d","event_type":"c.b","correlation_id":"r","entity_key":"k","metadata":{"ip":"x"}}`},
		{"Accepted", api.Accepted{Status: "accepted", ID: "x"}, `{"status":"accepted","id":"x"}`},
		{"BatchResponse", api.BatchResponse{Status: "accepted", Accepted: 1, Rejected: 1, Results: []api.BatchResult{
			{Index: 0, ID: "x"}, {Index: 1, Error: "validation_failed", Reason: "actor is required"}}},
			`{"status":"accepted","accepted":1,"rejected":1,"results":[{"index":0,"id":"x"},{"index":1,"error":"validation_failed","reason":"actor is required"}]}`},
		{"HealthHealthy", api.Health{Status: "healthy", Transport: "inproc", Store: "sqlite", Entities: &three, Auth: "off"},
			`{"status":"healthy","transport":"inproc","store":"sqlite","entities":3,"auth":"off"}`},
		{"HealthUnhealthy", api.Health{Status: "unhealthy", Transport: "rabbitmq", Auth: "on", Error: "RabbitMQ is unreachable"},
			`{"status":"unhealthy","transport":"rabbitmq","auth":"on","error":"RabbitMQ is unreachable"}`},
		{"DeadLetterQueue", api.DeadLetterQueue{Queue: "chronicle.unrouted"}, `{"queue":"chronicle.unrouted","route":"","depth":0}`},
		{"SelectionAll", api.Selection{All: true}, `{"all":true}`},
		{"SelectionEmpty", api.Selection{}, `{}`},
		{"SelectionLimit", api.Selection{Limit: &one}, `{"limit":1}`},
		{"SelectionIDs", api.Selection{IDs: []string{"a", "b"}}, `{"ids":["a","b"]}`},
		{"Replayed", api.Replayed{Replayed: 2}, `{"replayed":2}`},
		{"Purged", api.Purged{}, `{"purged":0}`},
		{"Count", api.Count{Count: 7}, `{"count":7}`},
		{"EntityResult", api.EntityResult{Key: "org:acme", Status: "created"}, `{"key":"org:acme","status":"created"}`},
		{"Error", api.Error{Error: "not found: /x"}, `{"error":"not found: /x"}`},
		{"ErrorReason", api.Error{Error: "validation_failed", Reason: "actor is required"}, `{"error":"validation_failed","reason":"actor is required"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}
