package routing

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Sink types and formats.
const (
	SinkWebhook = "webhook"
	SinkFile    = "file"

	FormatChronicle   = "chronicle"
	FormatCloudEvents = "cloudevents"
	FormatOCSF        = "ocsf"
)

// Defaults of a sink.
const (
	DefaultSinkBatchSize   = 100
	MaxSinkBatchSize       = 1000
	DefaultSinkBatchWait   = 200 * time.Millisecond
	DefaultSinkTimeout     = 10 * time.Second
	DefaultSinkBackoffMin  = 100 * time.Millisecond
	DefaultSinkBackoffMax  = 30 * time.Second
	DefaultSinkRotateBytes = 64 << 20
	DefaultSinkRotateEvery = time.Hour
	// SecretPrefix starts a Standard Webhooks signing secret.
	SecretPrefix = "whsec_"
)

// Sink is an outbound stream ([[sinks]]): the events of the log that match
// Pattern, in log order, to a webhook or to files, in Format. Package
// outbound delivers it.
type Sink struct {
	Name string `toml:"name"`
	// Type is webhook or file.
	Type string `toml:"type"`
	// URL is where a webhook POSTs its batches (http or https).
	URL string `toml:"url"`
	// SecretEnv names the environment variable that holds a webhook's
	// signing secret, "whsec_<base64>" (Standard Webhooks).
	SecretEnv string `toml:"secret_env"`
	// Secret is the decoded signing secret, set by ResolveSecrets. It is
	// never printed.
	Secret []byte `toml:"-"`
	// Path is the directory a file sink writes its files to.
	Path string `toml:"path"`
	// Pattern selects events by event_type, in AMQP topic syntax.
	// Defaults to "#": every event.
	Pattern string `toml:"pattern"`
	// Format is chronicle, cloudevents or ocsf. Defaults to chronicle.
	Format string `toml:"format"`
	// BatchSize is the most events per batch (1 to 1000). Defaults to 100.
	BatchSize int `toml:"batch_size"`
	// BatchWait is how long a batch that is not full waits for more
	// events. Defaults to 200ms.
	BatchWait    time.Duration `toml:"-"`
	RawBatchWait string        `toml:"batch_wait"`
	// Timeout bounds one webhook request. Defaults to 10s.
	Timeout    time.Duration `toml:"-"`
	RawTimeout string        `toml:"timeout"`
	// BackoffMin and BackoffMax bound the wait between attempts to
	// deliver a batch, which doubles (with jitter) after each failure.
	// Default to 100ms and 30s.
	BackoffMin    time.Duration `toml:"-"`
	RawBackoffMin string        `toml:"backoff_min"`
	BackoffMax    time.Duration `toml:"-"`
	RawBackoffMax string        `toml:"backoff_max"`
	// RotateBytes: a file sink starts a new file before one would grow
	// past this size. Defaults to 64 MiB.
	RotateBytes int64 `toml:"rotate_bytes"`
	// RotateEvery: a file sink closes a file this long after it was
	// started, even when it is small. Defaults to 1h.
	RotateEvery    time.Duration `toml:"-"`
	RawRotateEvery string        `toml:"rotate_every"`
}

// String names the sink without its secret.
func (s *Sink) String() string { return s.Type + " sink " + s.Name }

// Sink returns the sink with the given name, or nil.
func (c *Config) Sink(name string) *Sink {
	for _, s := range c.Sinks {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// sinks checks every [[sinks]] table and applies its defaults.
func (v *validator) sinks() {
	seen := map[string]bool{}
	for i, s := range v.c.Sinks {
		where := fmt.Sprintf("sinks[%d]", i)
		if s.Name != "" {
			where += fmt.Sprintf(" (%s)", s.Name)
		}
		switch {
		case s.Name == "":
			v.fail("%s: name is required", where)
		case !nameRE.MatchString(s.Name) || len(s.Name) > 64:
			v.fail("%s: name may only contain letters, digits and _ . : - (at most 64)", where)
		case seen[s.Name]:
			v.fail("%s: duplicate sink name %q", where, s.Name)
		}
		seen[s.Name] = true
		v.sink(where, s)
	}
}

func (v *validator) sink(where string, s *Sink) {
	switch s.Type {
	case SinkWebhook:
		v.sinkURL(where, s)
		switch {
		case s.SecretEnv == "":
			v.fail("%s: secret_env is required: the name of the environment variable that holds the signing secret (whsec_<base64>)", where)
		case !envNameRE.MatchString(s.SecretEnv):
			v.fail("%s: secret_env %q is not an environment variable name", where, s.SecretEnv)
		}
		if s.Path != "" {
			v.fail("%s: path is for file sinks; a webhook has a url", where)
		}
	case SinkFile:
		if s.Path == "" {
			v.fail("%s: path is required: the directory the files are written to", where)
		}
		if s.URL != "" || s.SecretEnv != "" {
			v.fail("%s: url and secret_env are for webhook sinks; a file sink has a path", where)
		}
	case "":
		v.fail("%s: type is required (webhook or file)", where)
	default:
		v.fail("%s: type %q is not webhook or file", where, s.Type)
	}
	if s.Pattern == "" {
		s.Pattern = "#"
	}
	if err := checkPattern(Topic, s.Pattern); err != nil {
		v.fail("%s: pattern %q: %v", where, s.Pattern, err)
	}
	switch s.Format {
	case "":
		s.Format = FormatChronicle
	case FormatChronicle, FormatCloudEvents, FormatOCSF:
	default:
		v.fail("%s: format %q is not chronicle, cloudevents or ocsf", where, s.Format)
	}
	switch {
	case s.BatchSize == 0:
		s.BatchSize = DefaultSinkBatchSize
	case s.BatchSize < 1 || s.BatchSize > MaxSinkBatchSize:
		v.fail("%s: batch_size must be 1 to %d, not %d", where, MaxSinkBatchSize, s.BatchSize)
	}
	if s.RotateBytes == 0 {
		s.RotateBytes = DefaultSinkRotateBytes
	} else if s.RotateBytes < 1024 {
		v.fail("%s: rotate_bytes must be at least 1024, not %d", where, s.RotateBytes)
	}
	s.BatchWait = v.duration(where, "batch_wait", s.RawBatchWait, DefaultSinkBatchWait, 0, time.Minute)
	s.Timeout = v.duration(where, "timeout", s.RawTimeout, DefaultSinkTimeout, time.Millisecond, 10*time.Minute)
	s.BackoffMin = v.duration(where, "backoff_min", s.RawBackoffMin, DefaultSinkBackoffMin, time.Millisecond, time.Hour)
	s.BackoffMax = v.duration(where, "backoff_max", s.RawBackoffMax, DefaultSinkBackoffMax, time.Millisecond, 24*time.Hour)
	if s.BackoffMax < s.BackoffMin {
		v.fail("%s: backoff_max (%v) is less than backoff_min (%v)", where, s.BackoffMax, s.BackoffMin)
	}
	s.RotateEvery = v.duration(where, "rotate_every", s.RawRotateEvery, DefaultSinkRotateEvery, time.Second, 30*24*time.Hour)
}

func (v *validator) sinkURL(where string, s *Sink) {
	if s.URL == "" {
		v.fail("%s: url is required", where)
		return
	}
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		v.fail("%s: url is not a URL", where)
	case u.Scheme != "http" && u.Scheme != "https":
		v.fail("%s: url must be http:// or https://", where)
	case u.Host == "":
		v.fail("%s: url has no host", where)
	case u.User != nil:
		v.fail("%s: url must not hold credentials: webhooks are authenticated by their signature", where)
	}
}

// duration parses a sink's duration field raw ("200ms"), def when empty,
// and checks it is within [lo, hi].
func (v *validator) duration(where, field, raw string, def, lo, hi time.Duration) time.Duration {
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		v.fail("%s: %s %q is not a duration such as \"200ms\" or \"5s\"", where, field, raw)
	case d < lo || d > hi:
		v.fail("%s: %s must be from %v to %v, not %v", where, field, lo, hi, d)
	default:
		return d
	}
	return def
}

// ResolveSecrets reads each webhook sink's signing secret from the
// environment variable its secret_env names, through lookup. Each problem
// names the file, the sink and the variable, never the secret.
func (c *Config) ResolveSecrets(lookup func(string) (string, bool)) error {
	v := &validator{c: c}
	for i, s := range c.Sinks {
		if s.Type != SinkWebhook || s.SecretEnv == "" {
			continue
		}
		where := fmt.Sprintf("sinks[%d] (%s): secret_env", i, s.Name)
		raw, ok := lookup(s.SecretEnv)
		if !ok || raw == "" {
			v.fail("%s: the environment variable %s is not set", where, s.SecretEnv)
			continue
		}
		secret, err := DecodeSecret(raw)
		if err != nil {
			v.fail("%s: %s %v", where, s.SecretEnv, err)
			continue
		}
		s.Secret = secret
	}
	return joinErrs(v.errs)
}

// DecodeSecret decodes a Standard Webhooks secret, "whsec_" and the
// base64 of 24 to 64 random bytes.
func DecodeSecret(raw string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(raw), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q followed by base64 (e.g. %s$(openssl rand -base64 32))", SecretPrefix, SecretPrefix)
	}
	secret, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("is not %s followed by standard base64", SecretPrefix)
	}
	if len(secret) < 24 || len(secret) > 64 {
		return nil, fmt.Errorf("must hold 24 to 64 bytes after %s, not %d", SecretPrefix, len(secret))
	}
	return secret, nil
}
