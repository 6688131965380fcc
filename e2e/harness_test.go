// Package e2e starts the real chronicle binary and drives it over HTTP, the
// way its users do.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the chronicle binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chronicle-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "chronicle")
	build := exec.Command("go", "build", "-o", binary, "../cmd/chronicle")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build chronicle:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopBrowser()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one running chronicle process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	port   int
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts `chronicle args...` with env added to a minimal environment
// and returns without waiting for it to be ready.
func run(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	p.cmd.Dir = t.TempDir() // files it makes by default (its signing key) stay out of the tree
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if v, ok := env["CHRONICLE_PORT"]; ok {
		p.port, _ = strconv.Atoi(v)
		p.url = "http://127.0.0.1:" + v
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("chronicle %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// serve starts a service on a free port, a fresh SQLite file unless env
// says otherwise, and waits until /health answers 200.
func serve(t *testing.T, env map[string]string) *proc {
	t.Helper()
	full := map[string]string{
		"CHRONICLE_PORT":        strconv.Itoa(freePort(t)),
		"CHRONICLE_SQLITE_PATH": filepath.Join(t.TempDir(), "chronicle.db"),
		"CHRONICLE_LISTEN_HOST": "127.0.0.1",
	}
	for k, v := range env {
		full[k] = v
	}
	p := run(t, full, "serve")
	p.waitHealthy(30 * time.Second)
	return p
}

func (p *proc) waitHealthy(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			p.t.Fatalf("chronicle exited before becoming healthy: %v\n%s", p.err, p.stderr.String())
		default:
		}
		resp, err := http.Get(p.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("chronicle not healthy after %v: %v\n%s", timeout, err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig and waits for the exit; it returns the exit code.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) int {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("chronicle did not exit within %v of %v\n%s", timeout, sig, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// wait waits for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("chronicle still running after %v\n%s", timeout, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

var client = &http.Client{Timeout: 30 * time.Second}

func (p *proc) do(method, path, body string) response {
	p.t.Helper()
	r, err := p.try(method, path, body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (p *proc) try(method, path, body string) (response, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, p.url+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, data}, err
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) expect(t *testing.T, status int, contains string) {
	t.Helper()
	if r.Status != status || !strings.Contains(string(r.Body), contains) {
		t.Fatalf("got %d %s; want %d containing %q", r.Status, r.Body, status, contains)
	}
}

type event struct {
	ID            string            `json:"id"`
	Actor         string            `json:"actor"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type"`
	ResourceID    string            `json:"resource_id"`
	EventType     string            `json:"event_type"`
	CorrelationID string            `json:"correlation_id"`
	EntityKey     string            `json:"entity_key"`
	Timestamp     string            `json:"timestamp"`
	Metadata      map[string]string `json:"metadata"`
}

// allEvents pages through GET /events?query with the Link header.
func (p *proc) allEvents(query string) []event {
	p.t.Helper()
	var out []event
	next := "/events?limit=1000"
	if query != "" {
		next += "&" + query
	}
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			p.t.Fatal("pagination does not end")
		}
		r := p.do("GET", next, "")
		r.expect(p.t, 200, "[")
		var page []event
		r.json(p.t, &page)
		out = append(out, page...)
		next = ""
		if link := r.Header.Get("Link"); link != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	return out
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// checkMetrics runs `promtool check metrics` on p's /metrics: the names,
// help and types Prometheus expects. scripts/test.sh installs promtool;
// with CI=true a missing promtool fails the test.
func checkMetrics(t *testing.T, p *proc) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/test.sh installs Debian's prometheus package)")
		}
		t.Log("promtool is not installed: /metrics not linted (scripts/test.sh installs it)")
		return
	}
	r := p.do("GET", "/metrics", "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.Body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
