package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	ingestKey = "ingest-key-0123456789"
	adminKey  = "admin-key-0123456789abc"
)

func TestParseAndAuthenticate(t *testing.T) {
	t.Parallel()
	h := sha256.Sum256([]byte("hashed-key-0123456789"))
	kr, err := Parse(ingestKey + ":ingest, " + adminKey + ":admin,sha256=" + hex.EncodeToString(h[:]) + ":read+ingest")
	if err != nil {
		t.Fatal(err)
	}
	if kr.Len() != 3 {
		t.Fatalf("%d keys", kr.Len())
	}
	for _, tt := range []struct {
		token string
		ok    bool
		need  Scope
		allow bool
	}{
		{ingestKey, true, Ingest, true},
		{ingestKey, true, Read, false},
		{adminKey, true, Read, true},
		{adminKey, true, Ingest, true},
		{"hashed-key-0123456789", true, Read, true},
		{"hashed-key-0123456789", true, Admin, false},
		{"nope", false, 0, false},
		{"", false, 0, false},
	} {
		p, ok := kr.Authenticate(tt.token)
		s, label := p.Scopes, p.Label
		if ok != tt.ok || (ok && s.Allows(tt.need) != tt.allow) {
			t.Errorf("Authenticate(%q) = %v %v; allows %v = %v", tt.token, s, ok, tt.need, s.Allows(tt.need))
		}
		if ok && (strings.Contains(label, tt.token) || !strings.HasPrefix(label, "sha256:")) {
			t.Errorf("label %q reveals the key", label)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ spec, want string }{
		{"nocolon", "entry 1: want <key>:<scopes>"},
		{ingestKey + ":write", `entry 1: unknown scope "write"`},
		{"short:read", "entry 1: key is shorter than 16 characters"},
		{ingestKey + ":read,sha256=zz:read", "entry 2: sha256= must be followed by 64 hex digits"},
	} {
		_, err := Parse(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want %q", tt.spec, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), ingestKey) {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

func TestFileRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(path, []byte("# keys\n"+ingestKey+":ingest\n"), 0o600)
	var reported []error
	src, err := LoadFile(path, func(err error) { reported = append(reported, err) })
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	src.now = func() time.Time { return clock }
	accepts := func(key string) bool {
		_, ok := src.Keyring().Authenticate(key)
		return ok
	}
	// step makes time pass, then changes the file as write says.
	step := func(write func()) {
		clock = clock.Add(2 * DefaultRefreshInterval)
		write()
		src.Refresh()
	}
	if !accepts(ingestKey) {
		t.Fatal("key from file not accepted")
	}
	// Rotation: both keys, then only the new one.
	next := "next-key-0123456789abc"
	step(func() { os.WriteFile(path, []byte(ingestKey+":ingest\n"+next+":ingest\n"), 0o600) })
	if !accepts(next) || !accepts(ingestKey) {
		t.Fatal("keys not both accepted after adding one")
	}
	step(func() { os.WriteFile(path, []byte(next+":ingest\n"), 0o600) })
	if accepts(ingestKey) || !accepts(next) {
		t.Fatal("a removed key still works")
	}
	// Fail closed: a broken file, an empty one, a deleted one: no key
	// works, and each change is reported once.
	for _, tt := range []struct {
		name  string
		write func()
	}{
		{"Malformed", func() { os.WriteFile(path, []byte(next+":ingest\ngarbage\n"), 0o600) }},
		{"Empty", func() { os.WriteFile(path, nil, 0o600) }},
		{"Deleted", func() { os.Remove(path) }},
	} {
		step(func() { os.WriteFile(path, []byte(next+":ingest\n"), 0o600) })
		if !accepts(next) {
			t.Fatalf("%s: key not accepted before the change", tt.name)
		}
		before := len(reported)
		step(tt.write)
		if accepts(next) {
			t.Fatalf("%s: a key still works from an unusable file", tt.name)
		}
		for range 3 {
			step(func() {})
		}
		if got := len(reported) - before; got != 1 {
			t.Fatalf("%s: reported %d times, want once: %v", tt.name, got, reported[before:])
		}
	}
	step(func() { os.WriteFile(path, []byte(next+":ingest\n"), 0o600) })
	if !accepts(next) {
		t.Fatal("keys not back once the file is fixed")
	}
}

// The file is looked at no more than once per interval, however many
// requests ask.
func TestRefreshInterval(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(path, []byte(ingestKey+":ingest\n"), 0o600)
	src, err := LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	src.now = func() time.Time { return clock }
	src.checkedAt = clock
	os.Remove(path)
	src.Refresh()
	if _, ok := src.Keyring().Authenticate(ingestKey); !ok {
		t.Fatal("the file was looked at again within the interval")
	}
	clock = clock.Add(DefaultRefreshInterval)
	src.Refresh()
	if _, ok := src.Keyring().Authenticate(ingestKey); ok {
		t.Fatal("a deleted file's keys still work after the interval")
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"Bearer abc":      "abc",
		"bearer abc":      "abc",
		"BEARER  abc ":    "abc",
		"Basic abc":       "",
		"Bearer":          "",
		"Bearer ":         "",
		"":                "",
		"Bearerabc":       "",
		"Token Bearer ab": "",
	} {
		got, ok := BearerToken(h)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", h, got, ok, want)
		}
	}
}
