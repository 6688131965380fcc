package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultURL is where client subcommands look for Chronicle when neither
// --url nor CHRONICLE_URL says otherwise: the service's default port.
const defaultURL = "http://localhost:8080"

// maxErrorBody bounds how much of an error answer is read: enough for any
// JSON error Chronicle writes, little enough that a misdirected --url
// pointing at a large page cannot flood memory.
const maxErrorBody = 64 << 10

// client is a small HTTP client of a running Chronicle, shared by every
// subcommand that talks to one, so they agree on the base URL, the API key,
// timeouts and how an error answer becomes a Go error.
type client struct {
	base   *url.URL
	apiKey string
	hc     *http.Client
	tr     *http.Transport
}

// clientOptions tunes a client for its command.
type clientOptions struct {
	// Timeout bounds each request, reading the answer included. Defaults
	// to 30s.
	Timeout time.Duration
	// Conns is how many requests the command runs at once; that many
	// idle connections are kept so concurrent requests reuse them instead
	// of opening a new connection each. Defaults to 2.
	Conns int
}

// newClient returns a client of the service at rawURL ("host:port" means
// http://host:port). It fails only on a URL it cannot use.
func newClient(rawURL, apiKey string, opts clientOptions) (*client, error) {
	base, err := parseBaseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	opts.Conns = max(opts.Conns, 2)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(tr.MaxIdleConns, opts.Conns)
	tr.MaxIdleConnsPerHost = opts.Conns
	return &client{
		base:   base,
		apiKey: apiKey,
		hc:     &http.Client{Transport: tr, Timeout: opts.Timeout},
		tr:     tr,
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw != "" && !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("must be an http:// or https:// URL such as " + defaultURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must not have a query or a fragment")
	}
	return u, nil
}

// close releases the client's idle connections.
func (c *client) close() { c.tr.CloseIdleConnections() }

// String is the base URL, without any password, for messages.
func (c *client) String() string { return c.base.Redacted() }

// apiError is an answer of the service outside 2xx.
type apiError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error" (with its "reason" when there is
	// one), or what the body says when it is not Chronicle's JSON.
	Message string
	// Body is the answer as read (at most maxErrorBody bytes), for
	// callers that want more of it, like health's status.
	Body []byte
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("service answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// do sends method path (path may carry a query; a Link header's target is
// accepted as is) with body encoded as JSON when it is not nil, and
// decodes a 2xx answer into out when out is not nil. A non-2xx answer is
// an *apiError; a service that cannot be reached is an error that says
// where it was looked for. The returned response, when not nil, has its
// body already read and closed: use its status and headers.
func (c *client) do(ctx context.Context, method, path string, body, out any) (*http.Response, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "chronicle-cli")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// url.Error repeats the method and full URL; say it once, plainly.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach Chronicle at %s: %w", c, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp, &apiError{Status: resp.StatusCode, Message: errorMessage(data), Body: data}
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("read answer of %s %s: %w", method, u.Path, err)
		}
	}
	// Drain what is left so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp, nil
}

// resolve puts path under the base URL's path, so a service behind a path
// prefix works. An absolute URL (from a Link header) must point at the
// same service: the API key is never sent anywhere else.
func (c *client) resolve(path string) (*url.URL, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	if ref.IsAbs() {
		if ref.Scheme != c.base.Scheme || ref.Host != c.base.Host {
			return nil, fmt.Errorf("refusing to follow %s: it is not at %s", ref.Redacted(), c)
		}
		return ref, nil
	}
	u := *c.base
	prefix := strings.TrimSuffix(c.base.Path, "/")
	if !strings.HasPrefix(ref.Path, prefix+"/") {
		u.Path = prefix + ref.Path
		u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + ref.EscapedPath()
	} else {
		// Already under the prefix (a Link header written by a service
		// that knows it).
		u.Path, u.RawPath = ref.Path, ref.RawPath
	}
	u.RawQuery = ref.RawQuery
	return &u, nil
}

// errorMessage extracts Chronicle's {"error": …, "reason": …} from an
// error body, or a short excerpt of whatever else it is.
func errorMessage(body []byte) string {
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if e.Reason != "" {
			return e.Error + ": " + e.Reason
		}
		return e.Error
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// nextLink returns the target of a rel="next" Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for part := range strings.SplitSeq(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ">")
			if !ok || !strings.HasPrefix(target, "<") {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(name), "rel") && strings.Trim(strings.TrimSpace(val), `"`) == "next" {
					return target[1:]
				}
			}
		}
	}
	return ""
}

// addClientFlags declares the flags every client subcommand shares
// (SPEC §11: --url and --api-key, defaulting to CHRONICLE_URL and
// CHRONICLE_API_KEY).
func addClientFlags(fs *flag.FlagSet) {
	fs.String("url", "", "Chronicle's base URL (default: CHRONICLE_URL, else "+defaultURL+")")
	fs.String("api-key", "", "API key, sent as Authorization: Bearer <key> (default: CHRONICLE_API_KEY)")
	fs.Duration("timeout", 30*time.Second, "bound of each request")
	addJSONFlag(fs)
}

// addJSONFlag declares --json.
func addJSONFlag(fs *flag.FlagSet) {
	fs.Bool("json", false, "machine-readable JSON output")
}

// clientFromFlags builds the client that the flags of addClientFlags and
// the environment describe. A URL it cannot use is a usage error naming
// where it came from.
func clientFromFlags(env *Env, fs *flag.FlagSet, conns int) (*client, error) {
	rawURL, from := flagValue[string](fs, "url"), "--url"
	if rawURL == "" {
		if v, ok := lookupEnv(env, "CHRONICLE_URL"); ok && strings.TrimSpace(v) != "" {
			rawURL, from = v, "CHRONICLE_URL"
		} else {
			rawURL = defaultURL
		}
	}
	key := flagValue[string](fs, "api-key")
	if key == "" {
		key, _ = lookupEnv(env, "CHRONICLE_API_KEY")
	}
	c, err := newClient(rawURL, strings.TrimSpace(key), clientOptions{Timeout: flagValue[time.Duration](fs, "timeout"), Conns: conns})
	if err != nil {
		return nil, usagef("%s=%q: %v", from, rawURL, err)
	}
	return c, nil
}

func lookupEnv(env *Env, key string) (string, bool) {
	if env.LookupEnv == nil {
		return "", false
	}
	return env.LookupEnv(key)
}

// flagValue reads a declared flag's value; commands declare their flags
// in command.flags and read them here, after parsing.
func flagValue[T any](fs *flag.FlagSet, name string) T {
	return fs.Lookup(name).Value.(flag.Getter).Get().(T)
}

// noArgs refuses positional arguments for commands that take none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// parseInterspersed lets flags follow positional arguments
// (`chronicle flood 200 --concurrency 20`), which the flag package alone
// stops at. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	out := fs.Output()
	defer fs.SetOutput(out)
	for len(args) > 0 {
		pos = append(pos, args[0])
		if args[0] == "--" {
			return append(pos[:len(pos)-1], args[1:]...), nil
		}
		// The flag package reports errors itself; Main reports ours.
		fs.SetOutput(io.Discard)
		err := fs.Parse(args[1:])
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
	}
	return pos, nil
}

// writeJSON writes v as indented JSON, the --json output of one object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
