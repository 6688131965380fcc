// Package config reads Chronicle's configuration from the environment (the
// variables of the original system it re-creates, and Chronicle's own),
// and validates everything before anything starts: a bad value is refused
// with a message that names the variable, never replaced by a default. A
// variable that is not set takes the default of the component it
// configures (inproc.DefaultCapacity, …), written there once.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/consumer"
	"github.com/chronicle-audit/chronicle/httpapi"
	"github.com/chronicle-audit/chronicle/inproc"
	"github.com/chronicle-audit/chronicle/integrity"
	"github.com/chronicle-audit/chronicle/postgres"
	"github.com/chronicle-audit/chronicle/rabbitmq"
	"github.com/chronicle-audit/chronicle/routing"
)

// Canonical names.
const (
	TransportInproc   = "inproc"
	TransportRabbitMQ = "rabbitmq"

	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
	StoreMemory   = "memory"

	ModeFull     = "full"
	ModeProducer = "producer"
	ModeConsumer = "consumer"
)

// Config is the effective configuration of one Chronicle process.
type Config struct {
	// Transport is inproc or rabbitmq (CHRONICLE_TRANSPORT; the original
	// system's "otp" means inproc). Defaults to inproc.
	Transport string
	// Mode is full, producer or consumer (CHRONICLE_MODE). Defaults to full.
	Mode string
	// Store is sqlite, postgres or memory (CHRONICLE_STORE; the original
	// system's "ets" means memory). Defaults to sqlite.
	Store string
	// ConsumerRole is the role this process consumes as
	// (CHRONICLE_CONSUMER_ROLE). Defaults to "default".
	ConsumerRole string
	// ConsumerCount, when positive, overrides the role's instances
	// (CHRONICLE_CONSUMER_COUNT). Defaults to 0: the role's.
	ConsumerCount int
	// Port is the HTTP port (CHRONICLE_PORT). Defaults to 8080.
	Port int
	// PortSet says CHRONICLE_PORT was given: a consumer process serves
	// /health and /metrics only then.
	PortSet bool
	// ListenHost is the interface to listen on (CHRONICLE_LISTEN_HOST; "*"
	// or "0.0.0.0" for all). Defaults to all interfaces when API keys are
	// set, else 127.0.0.1: without access control, only this machine may
	// reach the API.
	ListenHost string
	// RoutingSource is CHRONICLE_CONFIG, or routing.DefaultName.
	RoutingSource string
	// Routing is the parsed, validated routing configuration.
	Routing *routing.Config
	// SQLitePath is the SQLite file (CHRONICLE_SQLITE_PATH). Defaults to
	// chronicle.db in the working directory.
	SQLitePath string
	// LogFormat is text or json (CHRONICLE_LOG_FORMAT). Defaults to text.
	LogFormat string
	// LogLevel is debug, info, warn or error (CHRONICLE_LOG_LEVEL).
	// Defaults to info.
	LogLevel string
	// ShutdownTimeout bounds a graceful stop (CHRONICLE_SHUTDOWN_TIMEOUT).
	// Defaults to 30s.
	ShutdownTimeout time.Duration
	// QueueCapacity bounds each in-process queue
	// (CHRONICLE_QUEUE_CAPACITY). Defaults to inproc.DefaultCapacity.
	QueueCapacity int
	// BatchSize bounds a consumer's store transaction
	// (CHRONICLE_BATCH_SIZE). Defaults to consumer.DefaultBatchSize.
	BatchSize int
	// BatchWait is how long a RabbitMQ consumer waits for a batch to fill
	// once it has a first delivery (CHRONICLE_BATCH_WAIT). Defaults to
	// rabbitmq.DefaultBatchWait.
	BatchWait time.Duration
	// RabbitMQURL is RABBITMQ_URL, else built from RABBITMQ_HOST, _PORT,
	// _USER, _PASS and _VHOST (localhost, 5672, guest, guest, /).
	RabbitMQURL string
	// Prefetch is each consumer channel's prefetch (CHRONICLE_PREFETCH).
	// Defaults to rabbitmq.DefaultPrefetch.
	Prefetch int
	// PublishChannels is the size of the publisher's channel pool
	// (CHRONICLE_PUBLISH_CHANNELS). Defaults to
	// rabbitmq.DefaultPublishChannels.
	PublishChannels int
	// ConfirmTimeout bounds the wait for a broker confirm
	// (CHRONICLE_CONFIRM_TIMEOUT). Defaults to
	// rabbitmq.DefaultConfirmTimeout.
	ConfirmTimeout time.Duration
	// DatabaseURL is DATABASE_URL, else built from POSTGRES_HOST, _PORT,
	// _DATABASE, _USER and _PASSWORD (localhost, 5432, chronicle,
	// chronicle, chronicle).
	DatabaseURL string
	// DBPoolSize is the PostgreSQL pool size (CHRONICLE_DB_POOL_SIZE).
	// Defaults to postgres.DefaultPoolSize.
	DBPoolSize int
	// DebugAddr, when set, serves net/http/pprof there
	// (CHRONICLE_DEBUG_ADDR, e.g. 127.0.0.1:6060). Defaults to "": off.
	DebugAddr string
	// APIKeys are the keys of CHRONICLE_API_KEYS; nil when unset.
	APIKeys *auth.Keyring
	// APIKeysFile is CHRONICLE_API_KEYS_FILE (or CHRONICLE_API_KEYS=file:PATH):
	// keys read from a file that is re-read when it changes.
	APIKeysFile string
	// MaxBufferedBytes bounds the bytes all request bodies hold at once
	// (CHRONICLE_MAX_BUFFERED_BYTES). Defaults to
	// httpapi.DefaultMaxBufferedBytes.
	MaxBufferedBytes int64
	// BodyTimeout bounds the time a client may take to send a request
	// body (CHRONICLE_BODY_TIMEOUT). Defaults to httpapi.DefaultBodyTimeout.
	BodyTimeout time.Duration
	// StallTimeout is how long a client of an export or an event stream
	// may take to accept one page before it is disconnected
	// (CHRONICLE_STALL_TIMEOUT). Defaults to httpapi.DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxInflight bounds POST /events requests in process at once
	// (CHRONICLE_MAX_INFLIGHT); beyond it they get 429. Defaults to
	// httpapi.DefaultMaxInflight.
	MaxInflight int
	// OccurredMaxFuture and OccurredMaxPast bound an event's occurred_at
	// around the time it is received (CHRONICLE_OCCURRED_AT_MAX_FUTURE,
	// CHRONICLE_OCCURRED_AT_MAX_PAST). Default to ingest.DefaultMaxFuture
	// and ingest.DefaultMaxPast.
	OccurredMaxFuture, OccurredMaxPast time.Duration
	// IdempotencyTTL is how long idempotency keys are kept
	// (CHRONICLE_IDEMPOTENCY_TTL), at least 24h. Defaults to 24h.
	IdempotencyTTL time.Duration
	// Migrate applies pending migrations at start-up
	// (CHRONICLE_AUTO_MIGRATE). Defaults to true.
	Migrate bool
	// SigningKeyFile holds the Ed25519 key that signs the log's
	// checkpoints (CHRONICLE_SIGNING_KEY_FILE); generated at first start
	// when missing. Defaults to chronicle.key.
	SigningKeyFile string
	// LogOrigin names the log in its checkpoints and its key
	// (CHRONICLE_LOG_ORIGIN). Defaults to integrity.DefaultOrigin.
	LogOrigin string
	// CheckpointInterval is how often, at most, a growing log gets a
	// signed checkpoint (CHRONICLE_CHECKPOINT_INTERVAL). Defaults to
	// integrity.DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// CheckpointDir, when set, also gets every checkpoint as a file
	// (CHRONICLE_CHECKPOINT_DIR).
	CheckpointDir string
	// RotateSigningKey lets the key in SigningKeyFile replace the one the
	// log was signed with (CHRONICLE_SIGNING_KEY_ROTATE). Defaults to false.
	RotateSigningKey bool
}

// Lookup reads one environment variable, like os.LookupEnv.
type Lookup func(key string) (string, bool)

// FromEnv reads and validates the configuration. Every problem is
// reported, each naming its variable.
func FromEnv(lookup Lookup) (*Config, error) {
	p := parser{lookup: lookup}
	c := &Config{
		Transport:        p.choice("CHRONICLE_TRANSPORT", TransportInproc, map[string]string{"inproc": TransportInproc, "otp": TransportInproc, "rabbitmq": TransportRabbitMQ}),
		Mode:             p.choice("CHRONICLE_MODE", ModeFull, map[string]string{"full": ModeFull, "producer": ModeProducer, "consumer": ModeConsumer}),
		Store:            p.choice("CHRONICLE_STORE", StoreSQLite, map[string]string{"sqlite": StoreSQLite, "postgres": StorePostgres, "postgresql": StorePostgres, "memory": StoreMemory, "ets": StoreMemory}),
		ConsumerRole:     p.str("CHRONICLE_CONSUMER_ROLE", "default"),
		ConsumerCount:    p.integer("CHRONICLE_CONSUMER_COUNT", 0, 1, 1024),
		Port:             p.integer("CHRONICLE_PORT", 8080, 0, 65535),
		SQLitePath:       p.str("CHRONICLE_SQLITE_PATH", "chronicle.db"),
		LogFormat:        p.choice("CHRONICLE_LOG_FORMAT", "text", map[string]string{"text": "text", "json": "json"}),
		LogLevel:         p.choice("CHRONICLE_LOG_LEVEL", "info", map[string]string{"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}),
		ShutdownTimeout:  p.duration("CHRONICLE_SHUTDOWN_TIMEOUT", 30*time.Second),
		QueueCapacity:    p.integer("CHRONICLE_QUEUE_CAPACITY", inproc.DefaultCapacity, 1, 10_000_000),
		BatchSize:        p.integer("CHRONICLE_BATCH_SIZE", consumer.DefaultBatchSize, 1, 10000),
		BatchWait:        p.duration("CHRONICLE_BATCH_WAIT", rabbitmq.DefaultBatchWait),
		Prefetch:         p.integer("CHRONICLE_PREFETCH", rabbitmq.DefaultPrefetch, 1, 65535),
		PublishChannels:  p.integer("CHRONICLE_PUBLISH_CHANNELS", rabbitmq.DefaultPublishChannels, 1, 256),
		ConfirmTimeout:   p.duration("CHRONICLE_CONFIRM_TIMEOUT", rabbitmq.DefaultConfirmTimeout),
		DBPoolSize:       p.integer("CHRONICLE_DB_POOL_SIZE", postgres.DefaultPoolSize, 1, 1000),
		Migrate:          p.boolean("CHRONICLE_AUTO_MIGRATE", true),
		DebugAddr:        p.str("CHRONICLE_DEBUG_ADDR", ""),
		MaxInflight:      p.integer("CHRONICLE_MAX_INFLIGHT", httpapi.DefaultMaxInflight, 1, 1_000_000),
		MaxBufferedBytes: int64(p.integer("CHRONICLE_MAX_BUFFERED_BYTES", httpapi.DefaultMaxBufferedBytes, 1<<20, 1<<40)),
		BodyTimeout:      p.duration("CHRONICLE_BODY_TIMEOUT", httpapi.DefaultBodyTimeout),
		StallTimeout:     p.duration("CHRONICLE_STALL_TIMEOUT", httpapi.DefaultStallTimeout),
		IdempotencyTTL:   p.duration("CHRONICLE_IDEMPOTENCY_TTL", 24*time.Hour),
		APIKeysFile:      p.str("CHRONICLE_API_KEYS_FILE", ""),

		SigningKeyFile:     p.str("CHRONICLE_SIGNING_KEY_FILE", "chronicle.key"),
		LogOrigin:          p.str("CHRONICLE_LOG_ORIGIN", integrity.DefaultOrigin),
		CheckpointInterval: p.duration("CHRONICLE_CHECKPOINT_INTERVAL", integrity.DefaultCheckpointInterval),
		CheckpointDir:      p.str("CHRONICLE_CHECKPOINT_DIR", ""),
		RotateSigningKey:   p.boolean("CHRONICLE_SIGNING_KEY_ROTATE", false),
	}
	if c.SigningKeyFile == "" {
		p.fail("CHRONICLE_SIGNING_KEY_FILE", "", "must not be empty: the log's checkpoints are signed with the key it holds")
	}
	if msg := integrity.CheckOrigin(c.LogOrigin); msg != "" {
		p.fail("CHRONICLE_LOG_ORIGIN", c.LogOrigin, msg)
	}
	if c.IdempotencyTTL < 24*time.Hour {
		p.fail("CHRONICLE_IDEMPOTENCY_TTL", c.IdempotencyTTL.String(), "must be at least 24h: clients retry for a day")
	}
	if raw, set := lookup("CHRONICLE_API_KEYS"); set {
		// Set means keys are mandatory: an empty value must not quietly
		// turn access control off.
		spec := strings.TrimSpace(raw)
		if path, isFile := strings.CutPrefix(spec, "file:"); spec == "" {
			p.errs = append(p.errs, errors.New("CHRONICLE_API_KEYS: set but empty; give at least one <key>:<scopes>, or unset it to run without access control"))
		} else if isFile {
			c.APIKeysFile = path
		} else if kr, err := auth.Parse(spec); err != nil {
			// The value is secret: name the variable, not its content.
			p.errs = append(p.errs, fmt.Errorf("CHRONICLE_API_KEYS: %w", err))
		} else if kr.Len() == 0 {
			p.errs = append(p.errs, errors.New("CHRONICLE_API_KEYS: set but holds no key; unset it to run without access control"))
		} else {
			c.APIKeys = kr
		}
	}
	c.ListenHost = p.listenHost(c.AccessControl())
	if c.DebugAddr != "" {
		p.debugAddr(c.DebugAddr, c.AccessControl())
	}
	_, c.PortSet = lookup("CHRONICLE_PORT")
	if c.SQLitePath == "" {
		p.fail("CHRONICLE_SQLITE_PATH", "", "must not be empty")
	}
	c.RabbitMQURL = p.rabbitURL()
	c.DatabaseURL = p.databaseURL()

	c.RoutingSource = routing.DefaultName
	if path, ok := lookup("CHRONICLE_CONFIG"); ok && path != "" {
		c.RoutingSource = path
		rc, err := routing.Load(path)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("CHRONICLE_CONFIG: %w", err))
		}
		c.Routing = rc
	} else {
		c.Routing = routing.Default()
	}
	if c.Routing != nil {
		if err := c.Routing.ResolveSecrets(lookup); err != nil {
			p.errs = append(p.errs, fmt.Errorf("CHRONICLE_CONFIG: %w", err))
		}
	}
	if c.Routing != nil && c.Routing.Role(c.ConsumerRole) == nil {
		p.fail("CHRONICLE_CONSUMER_ROLE", c.ConsumerRole, fmt.Sprintf("is not a consumer role of %s (roles: %s)", c.RoutingSource, strings.Join(c.Routing.RoleNames(), ", ")))
	}
	if c.Transport == TransportInproc && (c.Mode == ModeProducer || c.Mode == ModeConsumer) {
		p.fail("CHRONICLE_MODE", c.Mode, "needs a transport shared between processes: set CHRONICLE_TRANSPORT=rabbitmq (in-process queues live inside one process, so a separate "+c.Mode+" would have nothing to talk to)")
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Addr is the HTTP listen address.
func (c *Config) Addr() string { return net.JoinHostPort(c.ListenHost, strconv.Itoa(c.Port)) }

// AccessControl says whether API keys are required.
func (c *Config) AccessControl() bool { return c.APIKeys != nil || c.APIKeysFile != "" }

// listenHost reads CHRONICLE_LISTEN_HOST: all interfaces ("") when keys
// guard the API or the variable asks for it, else the loopback interface.
func (p *parser) listenHost(keys bool) string {
	v, ok := p.get("CHRONICLE_LISTEN_HOST")
	switch {
	case !ok && keys:
		return ""
	case !ok:
		return "127.0.0.1"
	case v == "*" || v == "0.0.0.0" || v == "::":
		return ""
	case net.ParseIP(v) == nil && v != "localhost":
		p.fail("CHRONICLE_LISTEN_HOST", v, `must be an IP address, localhost, or * for all interfaces`)
	}
	return v
}

// debugAddr checks CHRONICLE_DEBUG_ADDR: the profiler shows memory and
// stacks, so it listens only on a loopback address unless API keys guard
// it (it then asks for an admin key).
func (p *parser) debugAddr(addr string, keys bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		p.fail("CHRONICLE_DEBUG_ADDR", addr, "must be host:port, e.g. 127.0.0.1:6060")
		return
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	if !loopback && !keys {
		p.fail("CHRONICLE_DEBUG_ADDR", addr, "serves the profiler to anyone who can reach it: use a loopback address such as 127.0.0.1:6060, or set CHRONICLE_API_KEYS (it then needs an admin key)")
	}
}

// ServesAPI says whether this process serves the events API.
func (c *Config) ServesAPI() bool { return c.Mode != ModeConsumer }

// ServesHTTP says whether this process listens at all: a consumer only
// when CHRONICLE_PORT is set, so several can share a host.
func (c *Config) ServesHTTP() bool { return c.Mode != ModeConsumer || c.PortSet }

// RunsConsumers says whether this process consumes.
func (c *Config) RunsConsumers() bool { return c.Mode != ModeProducer }

// Setting is one line of `chronicle info`.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Settings lists the effective configuration with secrets masked.
func (c *Config) Settings() []Setting {
	count := "role's instances"
	if c.ConsumerCount > 0 {
		count = strconv.Itoa(c.ConsumerCount)
	}
	listen := c.ListenHost
	if listen == "" {
		listen = "* (all interfaces)"
	}
	s := []Setting{
		{"CHRONICLE_TRANSPORT", c.Transport},
		{"CHRONICLE_MODE", c.Mode},
		{"CHRONICLE_STORE", c.Store},
		{"CHRONICLE_CONSUMER_ROLE", c.ConsumerRole},
		{"CHRONICLE_CONSUMER_COUNT", count},
		{"CHRONICLE_PORT", strconv.Itoa(c.Port)},
		{"CHRONICLE_LISTEN_HOST", listen},
		{"CHRONICLE_CONFIG", c.RoutingSource},
		{"CHRONICLE_QUEUE_CAPACITY", strconv.Itoa(c.QueueCapacity)},
		{"CHRONICLE_BATCH_SIZE", strconv.Itoa(c.BatchSize)},
		{"CHRONICLE_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()},
		{"CHRONICLE_LOG_FORMAT", c.LogFormat},
		{"CHRONICLE_LOG_LEVEL", c.LogLevel},
	}
	switch {
	case c.APIKeysFile != "":
		s = append(s, Setting{"CHRONICLE_API_KEYS_FILE", c.APIKeysFile})
	case c.APIKeys != nil:
		s = append(s, Setting{"CHRONICLE_API_KEYS", fmt.Sprintf("%d keys (hidden)", c.APIKeys.Len())})
	default:
		s = append(s, Setting{"CHRONICLE_API_KEYS", "unset: access control is off"})
	}
	s = append(s, Setting{"CHRONICLE_MAX_INFLIGHT", strconv.Itoa(c.MaxInflight)},
		Setting{"CHRONICLE_MAX_BUFFERED_BYTES", strconv.FormatInt(c.MaxBufferedBytes, 10)},
		Setting{"CHRONICLE_BODY_TIMEOUT", c.BodyTimeout.String()},
		Setting{"CHRONICLE_STALL_TIMEOUT", c.StallTimeout.String()},
		Setting{"CHRONICLE_IDEMPOTENCY_TTL", c.IdempotencyTTL.String()},
		Setting{"CHRONICLE_OCCURRED_AT_MAX_FUTURE", c.OccurredMaxFuture.String()},
		Setting{"CHRONICLE_OCCURRED_AT_MAX_PAST", c.OccurredMaxPast.String()},
		Setting{"CHRONICLE_SIGNING_KEY_FILE", c.SigningKeyFile},
		Setting{"CHRONICLE_LOG_ORIGIN", c.LogOrigin},
		Setting{"CHRONICLE_CHECKPOINT_INTERVAL", c.CheckpointInterval.String()})
	if c.CheckpointDir != "" {
		s = append(s, Setting{"CHRONICLE_CHECKPOINT_DIR", c.CheckpointDir})
	}
	switch c.Store {
	case StoreSQLite:
		s = append(s, Setting{"CHRONICLE_SQLITE_PATH", c.SQLitePath})
	case StorePostgres:
		s = append(s, Setting{"DATABASE_URL", Redact(c.DatabaseURL)}, Setting{"CHRONICLE_DB_POOL_SIZE", strconv.Itoa(c.DBPoolSize)})
	}
	if c.Transport == TransportRabbitMQ {
		s = append(s, Setting{"RABBITMQ_URL", Redact(c.RabbitMQURL)},
			Setting{"CHRONICLE_PREFETCH", strconv.Itoa(c.Prefetch)},
			Setting{"CHRONICLE_BATCH_WAIT", c.BatchWait.String()},
			Setting{"CHRONICLE_PUBLISH_CHANNELS", strconv.Itoa(c.PublishChannels)},
			Setting{"CHRONICLE_CONFIRM_TIMEOUT", c.ConfirmTimeout.String()})
	}
	return s
}

// Redact hides the password of a URL, in its user information or in a
// password query parameter (as PostgreSQL URLs may carry it).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not shown: it cannot be parsed, and may contain a password)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

type parser struct {
	lookup Lookup
	errs   []error
}

func (p *parser) fail(name, value, msg string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, value, msg))
}

func (p *parser) get(name string) (string, bool) {
	v, ok := p.lookup(name)
	return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
}

func (p *parser) str(name, def string) string {
	if v, ok := p.get(name); ok {
		return v
	}
	return def
}

func (p *parser) choice(name, def string, allowed map[string]string) string {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	if canon, ok := allowed[strings.ToLower(v)]; ok {
		return canon
	}
	names := make([]string, 0, len(allowed))
	for k := range allowed {
		names = append(names, k)
	}
	slices.Sort(names)
	p.fail(name, v, "must be one of "+strings.Join(names, ", "))
	return def
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *parser) boolean(name string, def bool) bool {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "must be true or false")
		return def
	}
	return b
}

// duration accepts Go durations ("30s", "1m") and whole seconds ("30").
func (p *parser) duration(name string, def time.Duration) time.Duration {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, `must be a positive duration such as "30s" or a number of seconds`)
		return def
	}
	return d
}

func (p *parser) rabbitURL() string {
	if v, ok := p.get("RABBITMQ_URL"); ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			p.errs = append(p.errs, errors.New(`RABBITMQ_URL: must be a URL such as amqp://user:pass@host:5672/vhost`))
		}
		return v
	}
	port := p.integer("RABBITMQ_PORT", 5672, 1, 65535)
	u := url.URL{
		Scheme: "amqp",
		User:   url.UserPassword(p.str("RABBITMQ_USER", "guest"), p.str("RABBITMQ_PASS", "guest")),
		Host:   net.JoinHostPort(p.str("RABBITMQ_HOST", "localhost"), strconv.Itoa(port)),
	}
	vhost := p.str("RABBITMQ_VHOST", "/")
	u.RawPath = "/" + url.PathEscape(vhost)
	u.Path = "/" + vhost
	return u.String()
}

func (p *parser) databaseURL() string {
	if v, ok := p.get("DATABASE_URL"); ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.errs = append(p.errs, errors.New(`DATABASE_URL: must be a URL such as postgres://user:pass@host:5432/dbname`))
		}
		return v
	}
	port := p.integer("POSTGRES_PORT", 5432, 1, 65535)
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(p.str("POSTGRES_USER", "chronicle"), p.str("POSTGRES_PASSWORD", "chronicle")),
		Host:   net.JoinHostPort(p.str("POSTGRES_HOST", "localhost"), strconv.Itoa(port)),
		Path:   "/" + p.str("POSTGRES_DATABASE", "chronicle"),
	}
	return u.String()
}
