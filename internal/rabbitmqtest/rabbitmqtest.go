// Package rabbitmqtest gives each test its own RabbitMQ vhost, created and
// deleted through the management API, so tests run in parallel and never
// see each other's queues. It needs a real broker: without one the test
// fails with a message saying how to start it (make test does).
package rabbitmqtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Defaults match scripts/test.sh.
const (
	defaultAMQP = "amqp://guest:guest@127.0.0.1:5672/"
	defaultAPI  = "http://guest:guest@127.0.0.1:15672/api"
)

// AMQPBase is the broker URL without a vhost.
func AMQPBase() string {
	if v := os.Getenv("CHRONICLE_TEST_RABBITMQ_URL"); v != "" {
		return strings.TrimSuffix(v, "/") + "/"
	}
	return defaultAMQP
}

// API is the management API base URL.
func API() string {
	if v := os.Getenv("CHRONICLE_TEST_RABBITMQ_API"); v != "" {
		return strings.TrimSuffix(v, "/")
	}
	return defaultAPI
}

var client = &http.Client{Timeout: 30 * time.Second}

// Call makes one management API request and decodes a JSON answer into
// out (when not nil). It fails the test on any error.
func Call(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if err := call(method, path, body, out); err != nil {
		t.Fatalf("RabbitMQ management API %s %s: %v (is RabbitMQ running with the management plugin? `make test` starts it)", method, path, err)
	}
}

func call(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	u, err := url.Parse(API() + path)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, u.String(), r)
	if err != nil {
		return err
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
		req.URL.User = nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s", resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Vhost creates a fresh vhost for t (deleted when t ends), grants the
// test user everything on it, and returns its AMQP URL and name.
func Vhost(t testing.TB) (amqpURL, vhost string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	vhost = "chronicle-test-" + hex.EncodeToString(b)
	Call(t, "PUT", "/vhosts/"+url.PathEscape(vhost), map[string]any{}, nil)
	t.Cleanup(func() {
		// Best effort: a test that failed mid-way still leaves no vhost.
		_ = call("DELETE", "/vhosts/"+url.PathEscape(vhost), nil, nil)
	})
	user := "guest"
	if u, err := url.Parse(AMQPBase()); err == nil && u.User != nil {
		user = u.User.Username()
	}
	Call(t, "PUT", "/permissions/"+url.PathEscape(vhost)+"/"+url.PathEscape(user),
		map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	return AMQPBase() + url.PathEscape(vhost), vhost
}

// Connection is what the management API says of one client connection.
type Connection struct {
	Name   string `json:"name"`
	Vhost  string `json:"vhost"`
	Client struct {
		Name string `json:"connection_name"`
	} `json:"client_properties"`
}

// Connections lists the vhost's client connections. The management API
// learns of new connections with a delay of up to a few seconds.
func Connections(t testing.TB, vhost string) []Connection {
	t.Helper()
	var conns []Connection
	Call(t, "GET", "/vhosts/"+url.PathEscape(vhost)+"/connections", nil, &conns)
	return conns
}

// CloseConnections force-closes every client connection of the vhost,
// as a broker restart or a network cut would, and returns how many.
func CloseConnections(t testing.TB, vhost string) int {
	t.Helper()
	conns := Connections(t, vhost)
	for _, c := range conns {
		req := "/connections/" + url.PathEscape(c.Name)
		if err := call("DELETE", req, nil, nil); err != nil {
			t.Logf("close connection %s: %v", c.Name, err)
		}
	}
	return len(conns)
}

// Queue is what the management API says of one queue.
type Queue struct {
	Name      string         `json:"name"`
	Durable   bool           `json:"durable"`
	Arguments map[string]any `json:"arguments"`
	Messages  int            `json:"messages"`
	Consumers int            `json:"consumers"`
}

// Queues lists the vhost's queues.
func Queues(t testing.TB, vhost string) []Queue {
	t.Helper()
	var qs []Queue
	Call(t, "GET", "/queues/"+url.PathEscape(vhost), nil, &qs)
	return qs
}

// Binding is one binding of the vhost.
type Binding struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Type        string `json:"destination_type"`
	RoutingKey  string `json:"routing_key"`
}

// Bindings lists the vhost's bindings.
func Bindings(t testing.TB, vhost string) []Binding {
	t.Helper()
	var bs []Binding
	Call(t, "GET", "/bindings/"+url.PathEscape(vhost), nil, &bs)
	return bs
}

// Exchange is what the management API says of one exchange.
type Exchange struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	Durable   bool           `json:"durable"`
	Arguments map[string]any `json:"arguments"`
}

// Exchanges lists the vhost's exchanges.
func Exchanges(t testing.TB, vhost string) []Exchange {
	t.Helper()
	var xs []Exchange
	Call(t, "GET", "/exchanges/"+url.PathEscape(vhost), nil, &xs)
	return xs
}

// Publish publishes payload to exchange in vhost through the management
// API (POST /api/exchanges/{vhost}/{exchange}/publish): a producer that is
// not Chronicle's code. properties are AMQP's (message_id, timestamp in
// seconds, content_type, delivery_mode, headers …). It reports whether
// the broker routed the message to a queue.
func Publish(t testing.TB, vhost, exchange, routingKey string, properties map[string]any, payload []byte) bool {
	t.Helper()
	if properties == nil {
		properties = map[string]any{}
	}
	var out struct {
		Routed bool `json:"routed"`
	}
	// base64: the payload may be any bytes, text that is not UTF-8 too.
	Call(t, "POST", "/exchanges/"+url.PathEscape(vhost)+"/"+url.PathEscape(exchange)+"/publish", map[string]any{
		"routing_key": routingKey, "properties": properties,
		"payload": base64.StdEncoding.EncodeToString(payload), "payload_encoding": "base64",
	}, &out)
	return out.Routed
}
