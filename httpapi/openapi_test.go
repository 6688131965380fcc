package httpapi_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/chronicle-audit/chronicle/auth"
	"github.com/chronicle-audit/chronicle/httpapi"
)

// loadOpenAPI loads and validates the served document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// documentedPath is the document's path of a mux path: "/{$}" is "/",
// and a subtree ("/console/") is one parameter below it.
func documentedPath(doc *openapi3.T, muxPath string) string {
	switch {
	case muxPath == "/{$}":
		return "/"
	case strings.HasSuffix(muxPath, "/"):
		for p := range doc.Paths.Map() {
			if rest, ok := strings.CutPrefix(p, muxPath); ok && strings.HasPrefix(rest, "{") && strings.Count(rest, "{") == 1 && strings.HasSuffix(rest, "}") {
				return p
			}
		}
	}
	return muxPath
}

// The document describes every route the server registers, with the
// scope it needs, and nothing else.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = op
		}
	}
	var missing []string
	for _, r := range httpapi.Routes() {
		key := r.Method + " " + documentedPath(doc, r.Path)
		op, ok := documented[key]
		if !ok {
			missing = append(missing, key)
			continue
		}
		delete(documented, key)
		if got := op.Extensions["x-chronicle-scope"]; got != r.Scope {
			t.Errorf("%s: x-chronicle-scope is %v, the server needs %q", key, got, r.Scope)
		}
		open := op.Security != nil && len(*op.Security) == 0
		if open != (r.Scope == "none") {
			t.Errorf("%s: security %v does not match scope %q", key, op.Security, r.Scope)
		}
		for code, resp := range op.Responses.Map() {
			if _, ok := resp.Value.Headers["X-Request-Id"]; !ok {
				t.Errorf("%s %s: no X-Request-Id header documented", key, code)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("routes the server registers that openapi.json does not document: %s", strings.Join(missing, ", "))
	}
	var extra []string
	for k := range documented {
		extra = append(extra, k)
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("operations openapi.json documents that the server does not register: %s", strings.Join(extra, ", "))
	}
}

// GET /openapi.json serves the document, without a key.
func TestOpenAPIServed(t *testing.T) {
	kr, err := auth.Parse("0123456789abcdef0123456789abcdef:read")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, 100, false, func(c *httpapi.Config) { c.Auth = auth.NewSource(kr) })
	r := b.do(t, "GET", "/openapi.json", "")
	expect(t, r, 200, `"openapi": "3.1.0"`)
	if !bytes.Equal([]byte(r.body), httpapi.OpenAPI()) {
		t.Fatal("GET /openapi.json is not the embedded document")
	}
}
