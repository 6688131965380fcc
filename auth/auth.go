// Package auth is Chronicle's access control: API keys (bearer tokens)
// with scopes. Keys are kept only as SHA-256 hashes and compared in
// constant time; several keys may be valid at once, so a key is rotated
// by adding the new one, moving clients over, then removing the old.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Scope is what a key may do.
type Scope uint8

const (
	// Ingest may POST events.
	Ingest Scope = 1 << iota
	// Read may read events and entities.
	Read
	// Admin may change entities, handle dead letters and see queues. It
	// implies the other scopes.
	Admin
)

func (s Scope) String() string {
	var parts []string
	for _, x := range []struct {
		s    Scope
		name string
	}{{Ingest, "ingest"}, {Read, "read"}, {Admin, "admin"}} {
		if s&x.s != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "+")
}

// Allows reports whether s includes need (admin includes everything).
func (s Scope) Allows(need Scope) bool { return s&Admin != 0 || s&need == need }

type key struct {
	hash   [sha256.Size]byte
	scopes Scope
	label  string // a printable, non-secret name: the hash's prefix
}

// Keyring is the set of valid keys. The zero value has no keys.
type Keyring struct {
	keys []key
}

// Parse reads CHRONICLE_API_KEYS: comma- or newline-separated entries
// "<key>:<scopes>", scopes joined by "+" from ingest, read, admin; a key
// written "sha256=<hex>" is given by its hash, so the secret itself need
// not be stored. Blank lines and lines starting with # are ignored.
// Errors never contain a key.
func Parse(spec string) (*Keyring, error) {
	kr := &Keyring{}
	entries := strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '\n' })
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		secret, scopeSpec, ok := cutLast(e, ":")
		if !ok || secret == "" {
			return nil, fmt.Errorf("entry %d: want <key>:<scopes>, e.g. mykey:ingest+read", i+1)
		}
		scopes, err := parseScopes(scopeSpec)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		var k key
		if hexHash, ok := strings.CutPrefix(secret, "sha256="); ok {
			b, err := hex.DecodeString(hexHash)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("entry %d: sha256= must be followed by 64 hex digits", i+1)
			}
			copy(k.hash[:], b)
		} else {
			if len(secret) < 16 {
				return nil, fmt.Errorf("entry %d: key is shorter than 16 characters; use a long random key (e.g. openssl rand -hex 24)", i+1)
			}
			k.hash = sha256.Sum256([]byte(secret))
		}
		k.scopes = scopes
		k.label = "sha256:" + hex.EncodeToString(k.hash[:4])
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func parseScopes(spec string) (Scope, error) {
	var s Scope
	for _, p := range strings.Split(spec, "+") {
		switch strings.TrimSpace(p) {
		case "ingest":
			s |= Ingest
		case "read":
			s |= Read
		case "admin":
			s |= Admin
		default:
			return 0, fmt.Errorf("unknown scope %q (scopes are ingest, read, admin, joined by +)", p)
		}
	}
	return s, nil
}

// Len is the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// Authenticate returns the scopes of token and a label for logs, or
// ok=false. Every key is compared, in constant time, so the time taken
// says nothing about which key came close.
func (kr *Keyring) Authenticate(token string) (scopes Scope, label string, ok bool) {
	h := sha256.Sum256([]byte(token))
	for _, k := range kr.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			scopes, label, ok = k.scopes, k.label, true
		}
	}
	return scopes, label, ok
}

// Source is where the keys come from; a file is re-read when it changes,
// so keys can be rotated without a restart.
type Source struct {
	mu      sync.RWMutex
	ring    *Keyring
	path    string
	modTime time.Time
	onError func(error)
}

// NewSource returns a Source of a fixed keyring.
func NewSource(kr *Keyring) *Source { return &Source{ring: kr} }

// LoadFile reads keys from path (one entry per line) and returns a Source
// that re-reads it when Refresh sees a new modification time.
func LoadFile(path string, onError func(error)) (*Source, error) {
	s := &Source{path: path, onError: onError}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Source) reload() error {
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("API keys file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		// Readable by others: still used, but said.
		if s.onError != nil {
			s.onError(fmt.Errorf("API keys file %s is readable by other users (mode %v); chmod 600 it", s.path, st.Mode().Perm()))
		}
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("API keys file: %w", err)
	}
	kr, err := Parse(string(data))
	if err != nil {
		return fmt.Errorf("API keys file %s: %w", s.path, err)
	}
	if kr.Len() == 0 {
		return errors.New("API keys file " + s.path + " has no keys")
	}
	s.mu.Lock()
	s.ring, s.modTime = kr, st.ModTime()
	s.mu.Unlock()
	return nil
}

// Refresh re-reads the file if it changed. A file that became invalid is
// reported and the previous keys stay in force.
func (s *Source) Refresh() {
	if s.path == "" {
		return
	}
	st, err := os.Stat(s.path)
	s.mu.RLock()
	changed := err == nil && !st.ModTime().Equal(s.modTime)
	s.mu.RUnlock()
	if !changed {
		return
	}
	if err := s.reload(); err != nil && s.onError != nil {
		s.onError(fmt.Errorf("%w; keeping the previous keys", err))
	}
}

// Keyring returns the keys in force.
func (s *Source) Keyring() *Keyring {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ring
}
