package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/chronicle-audit/chronicle/console"
)

func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func TestServes(t *testing.T) {
	t.Parallel()
	h := console.Handler()
	for _, tt := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/console/js/app.js">`},
		{"/?actor=alice&cursor=x", "text/html; charset=utf-8", `<main id="main"`},
		{"/console/js/app.js", "text/javascript; charset=utf-8", "import"},
		{"/console/console.css", "text/css; charset=utf-8", ":root"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		r := get(t, h, tt.path)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != tt.contentType || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s: %d %s, want %s containing %q", tt.path, r.StatusCode, r.Header.Get("Content-Type"), tt.contentType, tt.contains)
		}
		checkSecurityHeaders(t, tt.path, r)
		if r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("ETag") == "" {
			t.Errorf("GET %s: Cache-Control %q, ETag %q", tt.path, r.Header.Get("Cache-Control"), r.Header.Get("ETag"))
		}
		// Revalidation costs a 304.
		if again := get(t, h, tt.path, "If-None-Match", r.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", tt.path, again.StatusCode)
		}
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	h := console.Handler()
	for _, p := range []string{"/console/", "/console/js/", "/console/nope.js", "/console/index.html", "/console/../go.mod", "/console/js/../console.css.map"} {
		r := get(t, h, p)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 404 || r.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"error":"not found: `) {
			t.Errorf("GET %s: %d %s %s", p, r.StatusCode, r.Header.Get("Content-Type"), body)
		}
		checkSecurityHeaders(t, p, r)
	}
}

func checkSecurityHeaders(t *testing.T, p string, r *http.Response) {
	t.Helper()
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("GET %s: Content-Security-Policy %q lacks %s", p, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("GET %s: Content-Security-Policy %q allows too much", p, csp)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("GET %s: X-Content-Type-Options %q, Referrer-Policy %q", p, r.Header.Get("X-Content-Type-Options"), r.Header.Get("Referrer-Policy"))
	}
}

// The rules that keep an event's text from ever becoming markup or code,
// checked on the files as they are: no HTML parsing of strings in the
// scripts, no inline script or style in the page, and every module a
// script imports is there.
func TestStaticFilesFollowTheRules(t *testing.T) {
	t.Parallel()
	root := os.DirFS("static")
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*['"]on|\.style\.|javascript:`)
	imports := regexp.MustCompile(`(?m)^import .* from '(\./[^']+)';$`)
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		src := string(b)
		switch path.Ext(p) {
		case ".js":
			for i, line := range strings.Split(src, "\n") {
				if code, _, _ := strings.Cut(line, "//"); forbidden.MatchString(code) {
					t.Errorf("%s:%d: %s", p, i+1, strings.TrimSpace(line))
				}
			}
			for _, m := range imports.FindAllStringSubmatch(src, -1) {
				if _, err := fs.Stat(root, path.Join(path.Dir(p), m[1])); err != nil {
					t.Errorf("%s imports %s, which is not there", p, m[1])
				}
			}
		case ".html":
			if regexp.MustCompile(`<script(?:\s[^>]*)?>`).FindAllString(src, -1)[0] != `<script type="module" src="/console/js/app.js">` ||
				strings.Count(src, "<script") != 1 || strings.Contains(src, "<style") || regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(src) {
				t.Errorf("%s has inline script, style or handlers", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
