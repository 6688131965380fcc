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
	"syscall"
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

// BearerToken returns the token of an Authorization header value
// "Bearer <token>"; the scheme is case-insensitive (RFC 7235).
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Len is the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// Principal is who a request comes from: the API key it presented.
type Principal struct {
	// ID names the key without revealing it (its SHA-256, hex): what a
	// key's idempotency keys are scoped to.
	ID string
	// Label is a short, printable name of the key for logs.
	Label string
	// Scopes are what the key may do.
	Scopes Scope
}

// Authenticate returns the principal of token, or ok=false. Every key is
// compared, in constant time, so the time taken says nothing about which
// key came close.
func (kr *Keyring) Authenticate(token string) (p Principal, ok bool) {
	h := sha256.Sum256([]byte(token))
	for _, k := range kr.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			p, ok = Principal{ID: hex.EncodeToString(k.hash[:]), Label: k.label, Scopes: k.scopes}, true
		}
	}
	return p, ok
}

// Source is where the keys come from. A file is re-read when it changes,
// so keys can be rotated (add the new key, move clients over, remove the
// old one) and revoked without a restart.
//
// It fails closed: when the file changes into something that cannot be
// used (it does not parse, holds no key, or is gone), no key is accepted
// until it is fixed, so that removing a key can never leave it working.
// Each such change is reported once, not at every request.
type Source struct {
	path     string
	interval time.Duration
	onError  func(error)
	now      func() time.Time

	mu        sync.RWMutex
	ring      *Keyring
	stamp     fileStamp // what the file looked like when last read
	checkedAt time.Time // when Refresh last looked at the file
}

// fileStamp tells whether a file changed: a rewrite, a replacement by
// rename, or a removal all change it.
type fileStamp struct {
	exists  bool
	modTime time.Time
	size    int64
	inode   uint64
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	fs := fileStamp{exists: true, modTime: st.ModTime(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fs.inode = sys.Ino
	}
	return fs, nil
}

// DefaultRefreshInterval is how often, at most, a keys file is looked at.
const DefaultRefreshInterval = time.Second

// NewSource returns a Source of a fixed keyring.
func NewSource(kr *Keyring) *Source { return &Source{ring: kr} }

// LoadFile reads keys from path (one entry per line) and returns a Source
// that re-reads it when Refresh sees it changed, at most once per
// DefaultRefreshInterval. The file must be usable now. onError is told of
// problems (an unusable file, one readable by others).
func LoadFile(path string, onError func(error)) (*Source, error) {
	s := &Source{path: path, interval: DefaultRefreshInterval, onError: onError, now: time.Now}
	if onError == nil {
		s.onError = func(error) {}
	}
	stamp, err := stampOf(path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	kr, err := s.read(stamp)
	if err != nil {
		return nil, err
	}
	s.ring, s.stamp, s.checkedAt = kr, stamp, s.now()
	return s, nil
}

// read parses the file; it must hold at least one key.
func (s *Source) read(stamp fileStamp) (*Keyring, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	kr, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("API keys file %s: %w", s.path, err)
	}
	if kr.Len() == 0 {
		return nil, errors.New("API keys file " + s.path + " has no keys")
	}
	if st, err := os.Stat(s.path); err == nil && st.Mode().Perm()&0o077 != 0 {
		// Readable by others: still used, but said.
		s.onError(fmt.Errorf("API keys file %s is readable by other users (mode %v); chmod 600 it", s.path, st.Mode().Perm()))
	}
	return kr, nil
}

// Refresh re-reads the file if it changed since it was last read, looking
// at most once per interval. A file that became unusable takes every key
// away (fail closed) until it is usable again.
func (s *Source) Refresh() {
	if s.path == "" {
		return
	}
	now := s.now()
	s.mu.RLock()
	due := now.Sub(s.checkedAt) >= s.interval
	s.mu.RUnlock()
	if !due {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.checkedAt) < s.interval { // another request looked meanwhile
		return
	}
	s.checkedAt = now
	stamp, statErr := stampOf(s.path)
	if stamp == s.stamp {
		return
	}
	s.stamp = stamp
	kr, err := s.read(stamp)
	if statErr != nil {
		err = fmt.Errorf("API keys file: %w", statErr)
	}
	if err != nil {
		s.ring = &Keyring{}
		s.onError(fmt.Errorf("%w; no API key is accepted until the file is fixed", err))
		return
	}
	s.ring = kr
}

// Keyring returns the keys in force.
func (s *Source) Keyring() *Keyring {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ring
}
