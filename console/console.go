// Package console is Chronicle's web console: a page and a few small ES
// modules, embedded in the binary, that show events, the live tail, an
// event's detail and Message History, queues and dead letters, and the
// service's status, all through the HTTP API. Nothing is fetched from
// elsewhere and nothing is built at run time: the files under static/ are
// served as they are.
//
// The page and its assets hold no data, so they are served without a
// key; every data call the page makes carries the API key the user gave
// it. Every response carries a strict Content-Security-Policy (scripts
// and styles only from the service itself, none inline), so that text
// from an audit event can never run as code even if a bug rendered it as
// markup.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetPrefix is where the console's assets are served; the page itself
// is served at "/".
const AssetPrefix = "/console/"

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every console response: same-origin
// only, no inline script or style, no framing, no plugins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the console ships; a module
// script must be served as JavaScript, and nosniff forbids guessing.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console: the page at "/" and the assets under
// AssetPrefix. Answers are revalidated by ETag (a hash of the content),
// so a new build is picked up at once and an unchanged asset costs a 304.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "static/")] = file{body: b, contentType: ct,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a broken build.
		panic("console: read embedded files: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		name := "index.html"
		if r.URL.Path != "/" {
			var ok bool
			if name, ok = strings.CutPrefix(r.URL.Path, AssetPrefix); !ok || name == "index.html" {
				name = ""
			}
		}
		f, ok := files[name]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			notFound(w, r)
			return
		}
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// notFound answers like the API does: JSON with an error field.
func notFound(w http.ResponseWriter, r *http.Request) {
	b, _ := json.Marshal(map[string]string{"error": "not found: " + r.URL.Path})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write(append(b, '\n'))
}
