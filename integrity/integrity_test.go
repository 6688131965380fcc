package integrity_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/chronicle-audit/chronicle"
	"github.com/chronicle-audit/chronicle/integrity"
	"github.com/chronicle-audit/chronicle/memory"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func event(mutate ...func(*chronicle.Event)) *chronicle.Event {
	e := &chronicle.Event{ID: "01900000-0000-7000-8000-000000000001", Actor: "alice@example.com", Action: "login",
		ResourceType: "security", ResourceID: "s-1", Timestamp: at, EventType: "security.login",
		Metadata: map[string]string{"ip": "192.0.2.1", "b": "2", "a": "1"}}
	for _, m := range mutate {
		m(e)
	}
	return e
}

// Canonical is RFC 8785 of the event's API JSON without seq: what an
// independent JCS implementation makes of that JSON.
func checkCanonical(t *testing.T, e *chronicle.Event) {
	t.Helper()
	api, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(api, &m)
	delete(m, "seq")
	delete(m, "redacted")
	delete(m, "leaf_hash")
	plain, _ := json.Marshal(m)
	want, err := jcs.Transform(plain)
	if err != nil {
		t.Fatalf("jcs of %s: %v", plain, err)
	}
	if got := integrity.Canonical(e); !bytes.Equal(got, want) {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
}

func TestCanonicalIsJCS(t *testing.T) {
	seq := int64(7)
	for name, e := range map[string]*chronicle.Event{
		"Plain":    event(),
		"Occurred": event(func(e *chronicle.Event) { e.OccurredAt = at.Add(-time.Hour); e.Seq = &seq }),
		"Optional": event(func(e *chronicle.Event) {
			e.EventType, e.Metadata, e.CorrelationID, e.EntityKey = "", nil, "c-1", "org:1"
		}),
		"Escapes": event(func(e *chronicle.Event) { e.Actor = "a\"b\\c\u0001\u001f\b\f\n\r\t<>&\u2028é😀" }),
		"KeyOrder": event(func(e *chronicle.Event) {
			e.Metadata = map[string]string{"\ue000": "1", "😀": "2", "z": "3", "Z": "4", "": "5", "é": "6"}
		}),
		"EmptyValues": event(func(e *chronicle.Event) { e.ResourceID = ""; e.Metadata = map[string]string{"k": ""} }),
	} {
		t.Run(name, func(t *testing.T) { checkCanonical(t, e) })
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("alice", "login", "k", "v", "key2", "v2")
	f.Add("\u0000\"", "\\", "😀", "\ue000", "\u007f", "\u2028")
	f.Fuzz(func(t *testing.T, actor, action, k1, v1, k2, v2 string) {
		for _, s := range []string{actor, action, k1, v1, k2, v2} {
			if !utf8.ValidString(s) {
				return // refused at ingestion
			}
		}
		checkCanonical(t, event(func(e *chronicle.Event) {
			e.Actor, e.Action, e.Metadata = actor, action, map[string]string{k1: v1, k2: v2}
		}))
	})
}

// The leaf hash is RFC 6962's, and an independent verifier accepts what
// a store proves.
func TestLeafHashAndProofs(t *testing.T) {
	e := event()
	if got, want := integrity.LeafHash(e), rfc6962.DefaultHasher.HashLeaf(integrity.Canonical(e)); !bytes.Equal(got[:], want) {
		t.Fatalf("leaf %x, want %x", got, want)
	}
	s := memory.New()
	var events []*chronicle.Event
	for i := range 21 {
		events = append(events, event(func(e *chronicle.Event) {
			e.ID = strings.Replace(e.ID, "0001", "1"+strings.Repeat("0", 1)+string(rune('a'+i%26))+"0", 1)
			e.Timestamp = at.Add(time.Duration(i) * time.Second)
		}))
	}
	if err := s.StoreEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	key, err := integrity.NewKey("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	root, err := integrity.TreeHash(t.Context(), s, 21)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := key.Sign(21, root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(key.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint parses with transparency-dev's parser.
	cp, _, _, err := log.ParseCheckpoint(signed, "example.com/log", v)
	if err != nil || cp.Size != 21 || !bytes.Equal(cp.Hash, root[:]) {
		t.Fatalf("checkpoint %s: %+v, %v", signed, cp, err)
	}
	p, err := integrity.InclusionProof(t.Context(), s, 5, 21)
	if err != nil {
		t.Fatal(err)
	}
	leaf := integrity.LeafHash(events[5])
	raw := make([][]byte, len(p))
	for i := range p {
		raw[i] = p[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 5, 21, leaf[:], raw, cp.Hash); err != nil {
		t.Fatal(err)
	}
	// A receipt round-trips and verifies offline; for another event, not.
	r := integrity.Receipt{Index: 5, Proof: p, Checkpoint: signed}
	back, err := integrity.ParseReceipt(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.Verify(events[5], v); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Verify(events[6], v); err == nil {
		t.Fatal("a receipt verifies for another event")
	}
	other, _ := integrity.NewKey("example.com/log")
	ov, _ := note.NewVerifier(other.Verifier)
	if _, err := back.Verify(events[5], ov); err == nil {
		t.Fatal("a receipt verifies with another key")
	}
}

func TestReceiptParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"NoBlankLine": "c2sp.org/tlog-proof@v1\nindex 1\n",
		"BadHeader":   "tlog-proof\nindex 1\n\ncp",
		"NoIndex":     "c2sp.org/tlog-proof@v1\n\ncp",
		"BadIndex":    "c2sp.org/tlog-proof@v1\nindex -1\n\ncp",
		"BadHash":     "c2sp.org/tlog-proof@v1\nindex 1\nnot base64!\n\ncp",
	} {
		if _, err := integrity.ParseReceipt([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// A signing key is refused unless it is readable by its owner only, of
// the right form, and named for the log.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k, err := integrity.NewKey("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.key")
	if err := k.Save(good); err != nil {
		t.Fatal(err)
	}
	if err := k.Save(good); err == nil {
		t.Fatal("Save replaced a key file")
	}
	if fi, _ := os.Stat(good); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	loaded, err := integrity.LoadKey(good, "example.com/log")
	if err != nil || loaded.Verifier != k.Verifier {
		t.Fatalf("LoadKey: %v", err)
	}
	open := filepath.Join(dir, "open.key")
	raw, _ := os.ReadFile(good)
	os.WriteFile(open, raw, 0o644)
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("PRIVATE+KEY+nope\n"), 0o600)
	for name, c := range map[string]struct{ path, origin, want string }{
		"Missing":     {filepath.Join(dir, "none"), "example.com/log", "no such file"},
		"Permissions": {open, "example.com/log", "chmod 600"},
		"Form":        {garbage, "example.com/log", "not a signing key"},
		"OtherLog":    {good, "other.example/log", `is for the log "example.com/log"`},
	} {
		if _, err := integrity.LoadKey(c.path, c.origin); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	for _, bad := range []string{"", "a b", "a+b", "tab\there"} {
		if integrity.CheckOrigin(bad) == "" {
			t.Errorf("origin %q accepted", bad)
		}
	}
}
