package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The console's tests drive a real headless Chromium (Debian's chromium
// package, which scripts/test.sh installs). One browser serves every test
// of the package; each test has tabs of its own, so they run in parallel.

// actionTimeout bounds one step of a browser test: an action, or a wait
// for a condition.
const actionTimeout = 20 * time.Second

var shared struct {
	once   sync.Once
	ctx    context.Context // the browser's
	cancel context.CancelFunc
	err    error
}

// chromium finds the browser: CHRONICLE_TEST_CHROMIUM, else the usual names.
func chromium() (string, error) {
	if p := os.Getenv("CHRONICLE_TEST_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH")
}

func startBrowser(path string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("lang", "en-GB"),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox cannot run as root (CI runs as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	shared.ctx = ctx
	shared.cancel = func() { cancel(); cancelAlloc() }
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to no test
		shared.err = fmt.Errorf("start %s: %w", path, err)
	}
}

// stopBrowser ends the shared browser, if one was started.
func stopBrowser() {
	if shared.cancel != nil {
		shared.cancel()
	}
}

// tab is one browser tab of a test.
type tab struct {
	t       *testing.T
	ctx     context.Context
	dir     string       // where its screenshots go
	dialogs atomic.Int32 // alert, confirm and prompt dialogs the page opened
	errs    syncList     // uncaught exceptions and CSP violations
}

type syncList struct {
	mu    sync.Mutex
	items []string
}

func (l *syncList) add(s string) {
	l.mu.Lock()
	l.items = append(l.items, s)
	l.mu.Unlock()
}

func (l *syncList) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.items...)
}

// newTab opens a tab 1280×800 wide in timezone (an IANA name). Without
// chromium the test fails with CI=true and is skipped otherwise. At the
// end of the test, the tab must have met no uncaught exception and no
// Content-Security-Policy violation.
func newTab(t *testing.T, timezone string) *tab {
	t.Helper()
	path, err := chromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the console's browser tests need Chromium, and none is installed: scripts/test.sh installs Debian's chromium package (or set CHRONICLE_TEST_CHROMIUM)")
		}
		t.Skip("no Chromium: the console's browser tests are skipped (scripts/test.sh installs it)")
	}
	shared.once.Do(func() { startBrowser(path) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, dir: t.TempDir()}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			tb.dialogs.Add(1)
			tb.errs.add("a " + string(d.Type) + " dialog opened: " + d.Message)
			// A dialog blocks the page: dismiss it, off the event loop.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				tb.errs.add(m.String())
			}
		}
	}()
	tb.do(chromedp.EmulateViewport(1280, 800), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: timezone})
		return err
	}))
	t.Cleanup(func() {
		for _, e := range tb.errs.all() {
			t.Errorf("in the browser: %s", e)
		}
	})
	return tb
}

// do runs actions, each bounded by actionTimeout; on failure it keeps a
// screenshot of the page and fails the test.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	for _, a := range actions {
		ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
		err := chromedp.Do(ctx, a)
		cancel()
		if err != nil {
			tb.fail(err)
		}
	}
}

func (tb *tab) fail(err error) {
	tb.t.Helper()
	tb.screenshot("failure")
	loc, _ := eval[string](tb, "location.href")
	tb.t.Fatalf("in the browser at %s: %v (a screenshot is in %s)", loc, err, tb.dir)
}

// open loads url and waits for the console to have rendered a view.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
	tb.wait("the console to start", `document.querySelector('#main h1') !== null`)
}

// wait polls the JavaScript condition cond until it holds, at most
// actionTimeout.
func (tb *tab) wait(what, cond string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	// While the page changes, cond may meet a missing element: not yet.
	guarded := "(() => { try { return !!(" + cond + ") } catch { return false } })()"
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](guarded, chromedp.WithPollingInterval(25*time.Millisecond),
		chromedp.WithPollingTimeout(actionTimeout))); err != nil {
		tb.fail(fmt.Errorf("waiting for %s (%s): %w", what, cond, err))
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// value is eval that fails the test on error.
func value[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := eval[T](tb, expr)
	if err != nil {
		tb.fail(fmt.Errorf("evaluate %s: %w", expr, err))
	}
	return v
}

// screenshot saves what the tab shows as name.png in the test's temporary
// directory, and in $CHRONICLE_TEST_SCREENSHOTS when that is set.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{tb.dir}
	if d := os.Getenv("CHRONICLE_TEST_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
}

// rows are the ids of the events the events table shows, in order.
func (tb *tab) rows() []string {
	tb.t.Helper()
	return value[[]string](tb, `[...document.querySelectorAll('#events tbody tr[data-id]')].map(r => r.dataset.id)`)
}

// withKey makes a request with an API key.
func (p *proc) withKey(key, method, path, body string) response {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data}
}
