package authinfo

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// MaxFileSize bounds a credentials file.
const MaxFileSize = 4 << 20

// Format is the syntax of a credentials file.
type Format int

// Formats.
const (
	FormatEmpty    Format = iota // no entries
	FormatSendmail               // sendmail authinfo (AuthInfo: keys)
	FormatPostfix                // Postfix sasl_passwd
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatSendmail:
		return "sendmail authinfo"
	case FormatPostfix:
		return "Postfix sasl_passwd"
	}
	return "empty"
}

// SyntaxError is a bad line. It names the file, the line and what was
// expected, and never contains any text of the line (it might be a secret).
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Map is a parsed credentials file. It is immutable and safe for concurrent
// use.
type Map struct {
	name    string
	format  Format
	entries map[string]*entry // normalised key → entry
	senders int               // number of Postfix sender keys
	order   []*entry          // file order
}

// entry is one credential with the key as written.
type entry struct {
	key  string // as written
	norm string // normalised lookup key
	line int
	kind keyKind
	cred Credential
}

// keyKind classifies keys for Explain and check output.
type keyKind int

const (
	kindHost    keyKind = iota // Postfix host or next hop; sendmail host name
	kindSender                 // Postfix user@domain or @domain
	kindAddr                   // sendmail IP address
	kindDefault                // sendmail "AuthInfo:"
)

// Name is the file name the map was parsed from.
func (m *Map) Name() string { return m.name }

// Format is the syntax of the file.
func (m *Map) Format() Format { return m.format }

// Len is the number of entries.
func (m *Map) Len() int { return len(m.order) }

// SenderDependent reports whether sender-dependent lookups are on: the
// file holds Postfix sender keys (user@domain or @domain).
func (m *Map) SenderDependent() bool { return m.senders > 0 }

// Keys lists the keys in file order, as written (no secrets).
func (m *Map) Keys() []string {
	out := make([]string, len(m.order))
	for i, e := range m.order {
		out[i] = e.key
	}
	return out
}

// logical is one logical line: a line plus its continuation lines.
type logical struct {
	text string
	line int
}

// Parse reads a credentials file in either syntax (see the package doc).
// name is used in error messages and Credential.Source.
func Parse(r io.Reader, name string) (*Map, error) {
	lines, err := readLogical(r, name)
	if err != nil {
		return nil, err
	}
	m := &Map{name: name, entries: map[string]*entry{}}
	firstLine := 0
	for _, l := range lines {
		key, value := splitKey(l.text)
		if value == "" {
			return nil, &SyntaxError{name, l.line, "expected a key and a value separated by white space (e.g. `[smtp.example.com]:587 user:password` or `AuthInfo:smtp.example.com \"U:user\" \"P:password\"`)"}
		}
		f := FormatPostfix
		if hasPrefixFold(key, authInfoPrefix) {
			f = FormatSendmail
		}
		if m.format == FormatEmpty {
			m.format, firstLine = f, l.line
		} else if m.format != f {
			return nil, &SyntaxError{name, l.line, fmt.Sprintf("%s entry in a file whose line %d is %s syntax; use one syntax per file", f, firstLine, m.format)}
		}
		var e *entry
		var msg string
		if f == FormatSendmail {
			e, msg = parseSendmail(key, value)
		} else {
			e, msg = parsePostfix(key, value)
		}
		if msg != "" {
			return nil, &SyntaxError{name, l.line, msg}
		}
		e.line, e.key = l.line, key
		e.cred.Source = fmt.Sprintf("%s:%d", name, l.line)
		e.cred.Key = key
		if old, dup := m.entries[e.norm]; dup {
			return nil, &SyntaxError{name, l.line, fmt.Sprintf("duplicate key: line %d has the same key", old.line)}
		}
		m.entries[e.norm] = e
		m.order = append(m.order, e)
		if e.kind == kindSender {
			m.senders++
		}
	}
	return m, nil
}

// readLogical reads a map file of at most MaxFileSize bytes and splits it
// into logical lines.
func readLogical(r io.Reader, name string) ([]logical, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileSize)
	}
	return logicalLines(data, name)
}

// logicalLines splits data into logical lines as Postfix's readlline(3)
// does: blank lines and lines whose first non-blank character is '#' are
// skipped; a line starting with white space continues the previous logical
// line.
func logicalLines(data []byte, name string) ([]logical, error) {
	var out []logical
	n := 0
	for len(data) > 0 {
		n++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		if bytes.IndexByte(raw, 0) >= 0 {
			return nil, &SyntaxError{name, n, "NUL byte in line"}
		}
		t := bytes.TrimSpace(raw)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if isBlank(raw[0]) {
			if len(out) == 0 {
				return nil, &SyntaxError{name, n, "line starts with white space, which continues the previous entry, but there is none above; remove the indentation"}
			}
			out[len(out)-1].text += string(raw)
			continue
		}
		out = append(out, logical{text: string(raw), line: n})
	}
	return out, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

// splitKey splits a logical line into the key (up to the first white
// space) and the value (the rest, trimmed).
func splitKey(s string) (key, value string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < 0x80 && isBlank(byte(r)) })
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// SenderKeys lists the Postfix sender keys (user@domain, @domain) in file
// order, as written.
func (m *Map) SenderKeys() []string {
	var out []string
	for _, e := range m.order {
		if e.kind == kindSender {
			out = append(out, e.key)
		}
	}
	return out
}

// HasAddressKeys reports whether the file has sendmail AuthInfo:address
// entries, so that the server's IP address matters to Lookup.
func (m *Map) HasAddressKeys() bool {
	for _, e := range m.order {
		if e.kind == kindAddr {
			return true
		}
	}
	return false
}

// Entries returns every entry's credential in file order (copies; Key and
// Source filled in), for listings such as `relayq check`.
func (m *Map) Entries() []Credential {
	out := make([]Credential, len(m.order))
	for i, e := range m.order {
		out[i] = e.credential()
	}
	return out
}
