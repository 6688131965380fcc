package integrity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Key signs the log's checkpoints: an Ed25519 key in the form
// golang.org/x/mod/sumdb/note writes ("PRIVATE+KEY+name+hash+base64"),
// whose name is the log's origin.
type Key struct {
	signer note.Signer
	skey   string
	// Verifier is the public key that checks the signatures, in note form
	// (name+hash+base64): what /log/key serves and verifiers pin.
	Verifier string
}

// Name is the key's name: the log's origin.
func (k *Key) Name() string { return k.signer.Name() }

// LoadKey reads the signing key in path. A key that is unreadable, of
// the wrong form, readable by others than its owner, or named other than
// origin is refused: a log must never be signed by a key nobody meant it
// to have. A missing file gives an error that is fs.ErrNotExist.
func LoadKey(path, origin string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: permissions %#o let others read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	k, err := ParseKey(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if k.Name() != origin {
		return nil, fmt.Errorf("signing key %s is for the log %q, not %q (CHRONICLE_LOG_ORIGIN): a checkpoint names its log, and its key must too", path, k.Name(), origin)
	}
	return k, nil
}

// NewKey generates a signing key for the log named origin.
func NewKey(origin string) (*Key, error) {
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, fmt.Errorf("signing key for %q: %w", origin, err)
	}
	return ParseKey(skey)
}

// Save writes the key to path, readable by its owner only. It never
// replaces a file.
func (k *Key) Save(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", path, err)
	}
	_, err = f.WriteString(k.skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("signing key %s: %w", path, err)
	}
	return nil
}

// ParseKey reads a signer key in note form.
func ParseKey(skey string) (*Key, error) {
	const form = "want one line PRIVATE+KEY+<name>+<hash>+<base64>, as chronicle generates"
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("not a signing key (%s): %v", form, err)
	}
	// note.NewSigner has checked the form; the seed is the key's fifth
	// part (base64, which may hold '+' itself).
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, fmt.Errorf("not an Ed25519 signing key (%s)", form)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, err
	}
	return &Key{signer: signer, skey: skey, Verifier: vkey}, nil
}

// ParseVerifier reads a verifier key given as the key itself or as the
// name of a file holding it.
func ParseVerifier(keyOrFile string) (note.Verifier, error) {
	s := strings.TrimSpace(keyOrFile)
	if v, err := note.NewVerifier(s); err == nil {
		return v, nil
	}
	data, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %q is neither a key (name+hash+base64) nor a readable file: %w", keyOrFile, err)
	}
	s = strings.TrimSpace(string(data))
	v, err := note.NewVerifier(s)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %v (want name+hash+base64, as GET /log/key serves)", s, err)
	}
	return v, nil
}

// CheckOrigin says what is wrong with origin as a log's name, or "": it
// is the first line of every checkpoint and its key's name, so it must be
// a note key name (no '+', no spaces) and is best a schemaless URL.
func CheckOrigin(origin string) string {
	switch {
	case origin == "":
		return "must not be empty"
	case strings.ContainsAny(origin, "+ \t\r\n") || !utf8.ValidString(origin):
		return "must not contain '+' or spaces (it names the log in its checkpoints and its key), e.g. audit.example.com/chronicle"
	}
	for _, r := range origin {
		if !unicode.IsGraphic(r) {
			return "must hold printable characters only"
		}
	}
	return ""
}
