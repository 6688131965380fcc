package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/chronicle-audit/chronicle"
)

// An audit log stores text exactly as it was sent, or refuses it. Go's
// JSON decoder would quietly replace bytes that are not UTF-8, and escapes
// of unpaired surrogates (\ud800), with U+FFFD: the log would then hold
// something the producer never sent. CheckUTF8 finds such strings first.
//
// Control characters are refused too, where no one means them: NUL
// (which PostgreSQL cannot store at all) anywhere, and every control
// character (Unicode category Cc: U+0000–U+001F, U+007F–U+009F) in
// identifiers (actor, action, resource_type, resource_id, event_type,
// correlation_id, entity_key) and in metadata keys. Metadata values are
// free text and may hold tab, line feed and carriage return.

// CheckUTF8 returns an error wrapping chronicle.ErrInvalid that names the
// first JSON string of data (a value or a key) that is not valid UTF-8 or
// escapes an unpaired surrogate, or nil. Malformed JSON is left to the
// decoder to report.
func CheckUTF8(data []byte) error {
	if utf8.Valid(data) && !hasSurrogateEscape(data) {
		return nil
	}
	sc := &textScanner{data: data}
	sc.value("")
	return sc.err
}

// hasSurrogateEscape reports whether data may escape a surrogate (\uD800
// to \uDFFF): the fast path's cheap test.
func hasSurrogateEscape(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(`\u`))
		if j < 0 || i+j+3 >= len(data) {
			return false
		}
		i += j + 2
		if (data[i] == 'd' || data[i] == 'D') && bytes.IndexByte([]byte("89abcdefABCDEF"), data[i+1]) >= 0 {
			return true
		}
	}
}

// textScanner walks JSON just far enough to check each string's raw bytes
// and to name where it is.
type textScanner struct {
	data  []byte
	pos   int
	depth int
	err   error
}

// maxDepth bounds the nesting the scanner follows, so that a body of a
// million '[' costs no more than a shallow one.
const maxDepth = 64

func (s *textScanner) skipSpace() {
	for s.pos < len(s.data) && (s.data[s.pos] == ' ' || s.data[s.pos] == '\t' || s.data[s.pos] == '\n' || s.data[s.pos] == '\r') {
		s.pos++
	}
}

// value scans one JSON value at path; it stops at the first problem or at
// anything malformed.
func (s *textScanner) value(path string) bool {
	s.skipSpace()
	if s.pos >= len(s.data) || s.err != nil {
		return false
	}
	switch s.data[s.pos] {
	case '{', '[':
		if s.depth++; s.depth > maxDepth {
			s.err = chronicle.Errorf(chronicle.ErrInvalid, "JSON nested deeper than %d levels", maxDepth)
			return false
		}
		defer func() { s.depth-- }()
		if s.data[s.pos] == '{' {
			return s.object(path)
		}
		return s.array(path)
	case '"':
		_, ok := s.str(path, false)
		return ok
	default:
		start := s.pos
		for s.pos < len(s.data) && bytes.IndexByte([]byte(",]} \t\r\n"), s.data[s.pos]) < 0 {
			s.pos++
		}
		return s.pos > start // nothing scanned: malformed
	}
}

func (s *textScanner) object(path string) bool {
	s.pos++ // {
	for {
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == '}' {
			s.pos++
			return true
		}
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		key, ok := s.str(path, true)
		if !ok {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		child := key
		if path != "" {
			child = path + "." + key
		}
		if !s.value(child) {
			return false
		}
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == ',' {
			s.pos++
		}
	}
}

func (s *textScanner) array(path string) bool {
	s.pos++ // [
	for i := 0; ; i++ {
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			return true
		}
		if !s.value(fmt.Sprintf("%s[%d]", path, i)) {
			return false
		}
		s.skipSpace()
		if s.pos < len(s.data) && s.data[s.pos] == ',' {
			s.pos++
		}
	}
}

// str scans the string at pos, checking its raw bytes and escapes. It
// returns the string's text (best effort, for naming a key).
func (s *textScanner) str(path string, isKey bool) (string, bool) {
	start := s.pos + 1
	i := start
	for i < len(s.data) && s.data[i] != '"' {
		if s.data[i] == '\\' {
			i += 2
			continue
		}
		i++
	}
	if i >= len(s.data) {
		return "", false
	}
	raw := s.data[start:i]
	s.pos = i + 1
	where := func() string {
		switch {
		case isKey && path == "":
			return fmt.Sprintf("a key %q", string(bytes.ToValidUTF8(raw, []byte("\uFFFD"))))
		case isKey:
			return fmt.Sprintf("a key of %q", path)
		default:
			return fmt.Sprintf("field %q", path)
		}
	}
	if !utf8.Valid(raw) {
		s.err = chronicle.Errorf(chronicle.ErrInvalid, "%s is not valid UTF-8: Chronicle stores text exactly as sent, so send UTF-8", where())
		return "", false
	}
	if esc, ok := unpairedSurrogate(raw); ok {
		s.err = chronicle.Errorf(chronicle.ErrInvalid, "%s escapes an unpaired surrogate (%s), which is not a Unicode character", where(), esc)
		return "", false
	}
	text, err := strconv.Unquote(`"` + string(raw) + `"`)
	if err != nil {
		text = string(raw)
	}
	return text, true
}

// unpairedSurrogate finds a \uD800–\uDFFF escape that is not one half
// of a pair.
func unpairedSurrogate(raw []byte) (string, bool) {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // another escape: skip the escaped byte
			continue
		}
		if i+6 > len(raw) {
			return "", false
		}
		r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		if err != nil {
			return "", false
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if lo, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 32); err == nil && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return string(raw[i : i+6]), true
		case r >= 0xDC00 && r <= 0xDFFF:
			return string(raw[i : i+6]), true
		}
		i += 5
	}
	return "", false
}

// checkControl refuses control characters where no one means them (see
// the comment at the top of this file), naming the field.
func checkControl(e *chronicle.Event) error {
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"action", e.Action}, {"resource_type", e.ResourceType},
		{"resource_id", e.ResourceID}, {"event_type", e.EventType},
		{"correlation_id", e.CorrelationID}, {"entity_key", e.EntityKey},
	} {
		if err := Identifier(f.name, f.v); err != nil {
			return err
		}
	}
	return TextMap("metadata", e.Metadata)
}

// Identifier refuses a control character in an identifier field.
func Identifier(field, s string) error {
	if r, ok := control(s, false); ok {
		return chronicle.Errorf(chronicle.ErrInvalid, "field %q holds the control character %U; identifiers may not", field, r)
	}
	return nil
}

// TextMap refuses control characters in a map of free text such as
// metadata or an entity's attributes: none in keys; in values none but
// tab, line feed and carriage return.
func TextMap(field string, m map[string]string) error {
	for k, v := range m {
		if r, ok := control(k, false); ok {
			return chronicle.Errorf(chronicle.ErrInvalid, "a key of %q holds the control character %U; keys may not", field, r)
		}
		if r, ok := control(v, true); ok {
			return chronicle.Errorf(chronicle.ErrInvalid, "field %q holds the control character %U; %s values may hold only tab, line feed and carriage return", field+"."+k, r, field)
		}
	}
	return nil
}

// control returns the first control character of s, allowing tab, line
// feed and carriage return when freeText.
func control(s string, freeText bool) (rune, bool) {
	for _, r := range s {
		if !unicode.IsControl(r) {
			continue
		}
		if freeText && (r == '\t' || r == '\n' || r == '\r') {
			continue
		}
		return r, true
	}
	return 0, false
}
