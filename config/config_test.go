package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport != "inproc" || c.Mode != "full" || c.Store != "sqlite" || c.ConsumerRole != "default" ||
		c.Port != 8080 || c.PortSet || c.SQLitePath != "chronicle.db" || c.ShutdownTimeout != 30*time.Second ||
		c.RabbitMQURL != "amqp://guest:guest@localhost:5672/%2F" || c.Routing == nil || !c.Migrate {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{"CHRONICLE_TRANSPORT": "otp", "CHRONICLE_STORE": "ets"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport != "inproc" || c.Store != "memory" {
		t.Fatalf("aliases: transport %q store %q", c.Transport, c.Store)
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{
		"RABBITMQ_HOST": "mq", "RABBITMQ_PORT": "5673", "RABBITMQ_USER": "u", "RABBITMQ_PASS": "p@ss", "RABBITMQ_VHOST": "audit",
		"POSTGRES_HOST": "db", "POSTGRES_PORT": "6543", "POSTGRES_DATABASE": "logs", "POSTGRES_USER": "me", "POSTGRES_PASSWORD": "s3cret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RabbitMQURL != "amqp://u:p%40ss@mq:5673/audit" {
		t.Errorf("RabbitMQURL = %s", c.RabbitMQURL)
	}
	if c.DatabaseURL != "postgres://me:s3cret@db:6543/logs" {
		t.Errorf("DatabaseURL = %s", c.DatabaseURL)
	}
	for _, s := range c.Settings() {
		if strings.Contains(s.Value, "s3cret") || strings.Contains(s.Value, "p@ss") {
			t.Errorf("secret shown in %s=%s", s.Name, s.Value)
		}
	}
	c, _ = FromEnv(env(map[string]string{"DATABASE_URL": "postgres://x:y@h/d", "RABBITMQ_URL": "amqps://a:b@h/v", "POSTGRES_HOST": "ignored"}))
	if c.DatabaseURL != "postgres://x:y@h/d" || c.RabbitMQURL != "amqps://a:b@h/v" {
		t.Errorf("explicit URLs not used: %s %s", c.DatabaseURL, c.RabbitMQURL)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[exchanges.x]\ntype = \"headers\"\n"), 0o644)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ErrTransport", map[string]string{"CHRONICLE_TRANSPORT": "kafka"}, `CHRONICLE_TRANSPORT="kafka": must be one of inproc, otp, rabbitmq`},
		{"ErrMode", map[string]string{"CHRONICLE_MODE": "both"}, `CHRONICLE_MODE="both": must be one of`},
		{"ErrStore", map[string]string{"CHRONICLE_STORE": "mysql"}, `CHRONICLE_STORE="mysql"`},
		{"ErrPort", map[string]string{"CHRONICLE_PORT": "80a"}, `CHRONICLE_PORT="80a": must be an integer from 0 to 65535`},
		{"ErrPortRange", map[string]string{"CHRONICLE_PORT": "70000"}, `CHRONICLE_PORT="70000"`},
		{"ErrCount", map[string]string{"CHRONICLE_CONSUMER_COUNT": "0"}, `CHRONICLE_CONSUMER_COUNT="0": must be an integer from 1`},
		{"ErrRole", map[string]string{"CHRONICLE_CONSUMER_ROLE": "ghost"}, `CHRONICLE_CONSUMER_ROLE="ghost": is not a consumer role of built-in chronicle.toml (roles: security, analytics, billing, users, default)`},
		{"ErrTimeout", map[string]string{"CHRONICLE_SHUTDOWN_TIMEOUT": "soon"}, `CHRONICLE_SHUTDOWN_TIMEOUT="soon": must be a positive duration`},
		{"ErrBool", map[string]string{"CHRONICLE_AUTO_MIGRATE": "maybe"}, `CHRONICLE_AUTO_MIGRATE="maybe": must be true or false`},
		{"ErrRabbitURL", map[string]string{"RABBITMQ_URL": "http://x"}, `RABBITMQ_URL: must be a URL`},
		{"ErrDatabaseURL", map[string]string{"DATABASE_URL": "mysql://x"}, `DATABASE_URL: must be a URL`},
		{"ErrProducerInproc", map[string]string{"CHRONICLE_MODE": "producer"}, `CHRONICLE_MODE="producer": needs a transport shared between processes: set CHRONICLE_TRANSPORT=rabbitmq`},
		{"ErrConsumerInproc", map[string]string{"CHRONICLE_MODE": "consumer", "CHRONICLE_TRANSPORT": "otp"}, `CHRONICLE_MODE="consumer": needs a transport shared`},
		{"ErrConfigMissing", map[string]string{"CHRONICLE_CONFIG": "/nonexistent/chronicle.toml"}, `CHRONICLE_CONFIG: read routing configuration: open /nonexistent/chronicle.toml`},
		{"ErrConfigInvalid", map[string]string{"CHRONICLE_CONFIG": bad}, `bad.toml: exchange "x": type "headers"`},
		{"ErrListenHost", map[string]string{"CHRONICLE_LISTEN_HOST": "not a host"}, `CHRONICLE_LISTEN_HOST="not a host"`},
		{"ErrKeysEmpty", map[string]string{"CHRONICLE_API_KEYS": ""}, `CHRONICLE_API_KEYS: set but empty`},
		{"ErrKeysBlank", map[string]string{"CHRONICLE_API_KEYS": "  \n "}, `CHRONICLE_API_KEYS: set but empty`},
		{"ErrKeysOnlyComments", map[string]string{"CHRONICLE_API_KEYS": "# none"}, `CHRONICLE_API_KEYS: set but holds no key`},
		{"ErrDebugAddrPublicWithoutKeys", map[string]string{"CHRONICLE_DEBUG_ADDR": "0.0.0.0:6060"}, `CHRONICLE_DEBUG_ADDR="0.0.0.0:6060": serves the profiler to anyone`},
		{"ErrDebugAddrForm", map[string]string{"CHRONICLE_DEBUG_ADDR": "6060"}, `CHRONICLE_DEBUG_ADDR="6060": must be host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromEnv(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err := FromEnv(env(map[string]string{"CHRONICLE_PORT": "x", "CHRONICLE_STORE": "y"}))
	if err == nil || !strings.Contains(err.Error(), "CHRONICLE_PORT") || !strings.Contains(err.Error(), "CHRONICLE_STORE") {
		t.Fatalf("not every problem reported: %v", err)
	}
}

// Without API keys, Chronicle listens on the loopback interface only,
// unless told otherwise; with keys, on every interface.
func TestListenHost(t *testing.T) {
	t.Parallel()
	const key = "a-long-enough-key-0123:admin"
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "127.0.0.1"},
		{map[string]string{"CHRONICLE_API_KEYS": key}, ""},
		{map[string]string{"CHRONICLE_LISTEN_HOST": "*"}, ""},
		{map[string]string{"CHRONICLE_LISTEN_HOST": "0.0.0.0"}, ""},
		{map[string]string{"CHRONICLE_LISTEN_HOST": "10.1.2.3"}, "10.1.2.3"},
		{map[string]string{"CHRONICLE_API_KEYS": key, "CHRONICLE_LISTEN_HOST": "127.0.0.1"}, "127.0.0.1"},
	} {
		c, err := FromEnv(env(tt.env))
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if c.ListenHost != tt.want {
			t.Errorf("%v: listen host %q, want %q", tt.env, c.ListenHost, tt.want)
		}
	}
	// The profiler may listen beyond loopback only behind keys.
	if _, err := FromEnv(env(map[string]string{"CHRONICLE_API_KEYS": key, "CHRONICLE_DEBUG_ADDR": "0.0.0.0:6060"})); err != nil {
		t.Errorf("debug address behind keys: %v", err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://u:secret@h/db":                      "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=secret&sslmode=off": "postgres://u@h/db?password=xxxxx&sslmode=off",
		"amqp://guest:guest@h:5672/":                    "amqp://guest:xxxxx@h:5672/",
	} {
		if got := Redact(raw); got != want || strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "CHRONICLE_MODE": "consumer", "CHRONICLE_CONSUMER_ROLE": "security"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServesAPI() || c.ServesHTTP() || !c.RunsConsumers() {
		t.Errorf("consumer without port: api %v http %v consumers %v", c.ServesAPI(), c.ServesHTTP(), c.RunsConsumers())
	}
	c, _ = FromEnv(env(map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "CHRONICLE_MODE": "consumer", "CHRONICLE_PORT": "9000"}))
	if !c.ServesHTTP() || c.ServesAPI() {
		t.Errorf("consumer with port: http %v api %v", c.ServesHTTP(), c.ServesAPI())
	}
	c, _ = FromEnv(env(map[string]string{"CHRONICLE_TRANSPORT": "rabbitmq", "CHRONICLE_MODE": "producer"}))
	if c.RunsConsumers() || !c.ServesAPI() {
		t.Errorf("producer: consumers %v api %v", c.RunsConsumers(), c.ServesAPI())
	}
}
