// Package integrity makes Chronicle's audit log verifiable: every stored
// event is a leaf of an RFC 6962 Merkle tree (the C2SP tlog model, built
// with golang.org/x/mod/sumdb/tlog), in the order it was stored; signed
// checkpoints (C2SP tlog-checkpoint notes, Ed25519) commit to the tree's
// size and root; inclusion and consistency proofs show that an event is in
// the log and that the log only ever grew. The stores keep the hashes
// (chronicle.Log); this package computes them, signs, proves and verifies.
package integrity

import (
	"crypto/sha256"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/chronicle-audit/chronicle"
)

// Canonical returns the canonical bytes of an event, the content its leaf
// commits to: the event's JSON as the API returns it, without seq,
// redacted and anything read-time enrichment adds, canonicalized per RFC
// 8785 (JCS). Every value of an event is a string, so the JCS rules that
// matter are few: members sorted by the UTF-16 code units of their names,
// no whitespace, strings escaped as ECMAScript's JSON.stringify does
// (only '"', '\\' and control characters). Times are as the API writes
// them: UTC, exactly six fractional digits.
//
// Anyone can recompute a leaf from an exported event: drop "seq" and any
// member not listed here, canonicalize with any JCS library, and hash
// 0x00 followed by the bytes with SHA-256.
func Canonical(e *chronicle.Event) []byte {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	b = member(b, "action", e.Action, true)
	b = member(b, "actor", e.Actor, false)
	b = optional(b, "correlation_id", e.CorrelationID)
	b = optional(b, "entity_key", e.EntityKey)
	b = optional(b, "event_type", e.EventType)
	b = member(b, "id", e.ID, false)
	if len(e.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		for i, k := range keys {
			b = member(b, k, e.Metadata[k], i == 0)
		}
		b = append(b, '}')
	}
	if !e.OccurredAt.IsZero() {
		b = member(b, "occurred_at", formatTime(e.OccurredAt), false)
	}
	b = member(b, "resource_id", e.ResourceID, false)
	b = member(b, "resource_type", e.ResourceType, false)
	b = member(b, "timestamp", formatTime(e.Timestamp), false)
	return append(b, '}')
}

// LeafHash is the hash of the event's leaf in the log's tree:
// SHA-256(0x00 ‖ Canonical(e)), RFC 6962's leaf hash (tlog.RecordHash).
func LeafHash(e *chronicle.Event) chronicle.Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(Canonical(e))
	var out chronicle.Hash
	h.Sum(out[:0])
	return out
}

// formatTime writes t as the API does, at the microsecond the stores keep.
func formatTime(t time.Time) string {
	return t.Truncate(time.Microsecond).UTC().Format(chronicle.TimestampLayout)
}

func optional(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return member(b, name, v, false)
}

func member(b []byte, name, v string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = appendString(b, name)
	b = append(b, ':')
	return appendString(b, v)
}

const hex = "0123456789abcdef"

// appendString appends s as JCS writes a string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as JCS sorts
// member names: above U+FFFF a character is a surrogate pair, which sorts
// below U+E000..U+FFFF although its code point is greater.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return cmpUnits(ra, rb)
		}
		a, b = a[na:], b[nb:]
	}
	return strings.Compare(a, b) // the shorter, a prefix of the other, first
}

func cmpUnits(a, b rune) int {
	ua, ub := firstUnit(a), firstUnit(b)
	if ua != ub {
		return int(ua) - int(ub)
	}
	// Same high surrogate: the low surrogates decide, in code point order.
	return int(a) - int(b)
}

func firstUnit(r rune) uint16 {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return uint16(hi)
	}
	return uint16(r)
}
