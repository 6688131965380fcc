package e2e

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/internal/rabbitmqtest"
)

// The README cannot drift from the code: every subcommand, make target and
// variable it names exists, and its quick start works as written.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func unique(matches [][]string) []string {
	var out []string
	for _, m := range matches {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// codeBlocks returns the README's shell blocks.
func codeBlocks(text string) string {
	var b strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		b.WriteString(m[1])
	}
	return b.String()
}

func TestREADMESubcommands(t *testing.T) {
	t.Parallel()
	text := readme(t)
	// In shell blocks, and in the first column of the subcommand table.
	subs := unique(regexp.MustCompile(`(?m)^chronicle ([a-z]+)`).FindAllStringSubmatch(codeBlocks(text), -1))
	table := text[strings.Index(text, "| Subcommand |"):]
	table = table[:strings.Index(table, "\n\n")]
	for _, row := range strings.Split(strings.ReplaceAll(table, `\|`, "/"), "\n")[2:] {
		first := strings.SplitN(row, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([a-z]+)").FindAllStringSubmatch(first, -1) {
			if !slices.Contains(subs, m[1]) {
				subs = append(subs, m[1])
			}
		}
	}
	if len(subs) < 15 {
		t.Fatalf("found only %v", subs)
	}
	for _, sub := range subs {
		out, err := exec.Command(binary, sub, "-h").CombinedOutput()
		if err != nil {
			t.Errorf("README names `chronicle %s`, but `chronicle %s -h` fails: %v\n%s", sub, sub, err, out)
		}
	}
}

func TestREADMEMakeTargets(t *testing.T) {
	t.Parallel()
	text := readme(t)
	targets := unique(regexp.MustCompile(`(?m)^make (?:[a-z]+=[^ ]+ )*([a-z][a-z0-9-]+)`).FindAllStringSubmatch(codeBlocks(text), -1))
	if len(targets) < 10 {
		t.Fatalf("found only %v", targets)
	}
	for _, target := range targets {
		cmd := exec.Command("make", "-n", target)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README names `make %s`, but make does not know it: %v\n%s", target, err, out)
		}
	}
}

func TestREADMEVariables(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	for _, f := range []string{"../config/config.go", "../cli/client.go", "../cli/log.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	varRE := regexp.MustCompile(`\b((?:CHRONICLE|RABBITMQ|POSTGRES)_[A-Z_]+|DATABASE_URL)\b`)
	text := readme(t)
	for _, v := range unique(varRE.FindAllStringSubmatch(text, -1)) {
		if strings.HasPrefix(v, "CHRONICLE_TEST_") { // the test suite's, not the service's
			continue
		}
		if !strings.Contains(src.String(), `"`+v+`"`) {
			t.Errorf("README names %s, which the configuration does not read", v)
		}
	}
	// And the other way round: every variable the configuration reads is
	// documented.
	for _, v := range unique(regexp.MustCompile(`"((?:CHRONICLE|RABBITMQ|POSTGRES)_[A-Z_]+|DATABASE_URL)"`).FindAllStringSubmatch(src.String(), -1)) {
		if !strings.Contains(text, "`"+v+"`") && !strings.Contains(text, v) {
			t.Errorf("the configuration reads %s, which the README does not document", v)
		}
	}
}

// The quick start's curl commands, against the real binary.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	text := readme(t)
	start := strings.Index(text, "Then, in another terminal:")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text[start:])
	if start < 0 || block == nil {
		t.Fatal("no quick start block after the two commands")
	}
	p := serve(t, nil)
	script := strings.ReplaceAll(block[1], "localhost:8080", strings.TrimPrefix(p.url, "http://"))
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(script, "curl ", "curl -fsS ")).CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	for _, want := range []string{`"status":"accepted"`, `"actor":"alice@example.com"`, `"status":"healthy"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("quick start output lacks %s:\n%s", want, out)
		}
	}
}

// The shell examples of "Sending events" (curl, the management API,
// amqp-publish and chronicle dlq peek), against the real binary on
// RabbitMQ, in a vhost of the test's own.
func TestREADMESendingEvents(t *testing.T) {
	t.Parallel()
	tool(t, "amqp-publish", "amqp-tools")
	text := readme(t)
	start := strings.Index(text, "\n## Sending events\n")
	if start < 0 {
		t.Fatal(`no "Sending events" section`)
	}
	section := text[start+1:]
	section = section[:strings.Index(section, "\n## ")]
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 3 {
		t.Fatalf("%d shell blocks in Sending events, want 3 (curl, management API, amqp-publish)", len(blocks))
	}
	c := newCluster(t)
	p := serve(t, c.with())
	api, err := url.Parse(rabbitmqtest.API())
	if err != nil {
		t.Fatal(err)
	}
	replacer := strings.NewReplacer(
		"localhost:8080", strings.TrimPrefix(p.url, "http://"),
		"localhost:15672", api.Host,
		"/api/exchanges/%2F/", "/api/exchanges/"+url.PathEscape(c.vhost)+"/",
		"amqp://guest:guest@localhost:5672", c.url,
		"curl ", "curl -fsS ",
	)
	for i, want := range [][]string{
		{`"status":"accepted"`},
		{`{"routed":true}`, `"event_type":"security.login"`, `"actor":"alice@example.com"`},
		{"reason:  missing message_id: AMQP message_id is required: it is the event's id"},
	} {
		script := replacer.Replace(blocks[i][1])
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"), "CHRONICLE_URL="+p.url)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("block %d failed: %v\n%s\nscript:\n%s", i+1, err, out, script)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("block %d: output lacks %s:\n%s\nscript:\n%s", i+1, w, out, script)
			}
		}
	}
}
