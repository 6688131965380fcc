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
		s, label, ok := kr.Authenticate(tt.token)
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
	if _, _, ok := src.Keyring().Authenticate(ingestKey); !ok {
		t.Fatal("key from file not accepted")
	}
	// Rotation: both keys, then only the new one.
	next := "next-key-0123456789abc"
	os.WriteFile(path, []byte(ingestKey+":ingest\n"+next+":ingest\n"), 0o600)
	os.Chtimes(path, time.Now().Add(time.Second), time.Now().Add(time.Second))
	src.Refresh()
	if _, _, ok := src.Keyring().Authenticate(next); !ok {
		t.Fatal("new key not accepted after refresh")
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	os.Chtimes(path, time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
	src.Refresh()
	if _, _, ok := src.Keyring().Authenticate(next); !ok || len(reported) == 0 {
		t.Fatal("a broken file replaced the keys in force")
	}
}
