package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Assignment is one KEY=VALUE line of an env file.
type Assignment struct {
	Key   string
	Value string
	Line  int // line where the key starts (1-based)
}

// SyntaxError is an env-file syntax error; it prints as "file:line: msg".
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxEnvFile bounds what ParseEnvFile reads: a configuration file, not a
// data file.
const maxEnvFile = 1 << 20

// ParseEnvFile parses an env file in systemd EnvironmentFile syntax
// (systemd.exec(5), as implemented by systemd ≥ 254 in src/basic/env-file.c):
//
//   - Blank lines are ignored. A line whose first non-blank character is '#'
//     or ';' is a comment. There are no trailing comments: in KEY=a # b the
//     value is "a # b".
//   - KEY=VALUE. Blanks around KEY and after '=' are ignored. A leading
//     "export " (shell habit) is tolerated and dropped. KEY must be a valid
//     environment name ([A-Za-z_][A-Za-z0-9_]*).
//   - Unquoted values lose trailing blanks; a backslash escapes the next
//     character ("\\#" is "#"), and a backslash at the end of a line joins
//     the next line.
//   - 'single quotes' take everything literally, newlines included.
//   - "double quotes" take everything literally except a backslash before
//     one of " \ ` $ (which yields that character) or before a newline
//     (which joins the lines); before anything else the backslash is kept.
//   - Quotes are special only where a value (or a piece of it) starts: a
//     quoted piece may be followed by blanks (dropped) and another piece,
//     KEY="a b" 'c'd is "a bcd"; inside an unquoted piece quotes are
//     literal, KEY=a"b" is a"b".
//
// Unlike systemd, which skips bad lines with a warning, relayq rejects them:
// a line without '=', an invalid key name, an unterminated quote, a NUL byte
// or invalid UTF-8 is a *SyntaxError naming name:line. A later assignment of
// the same key wins, as in systemd.
func ParseEnvFile(r io.Reader, name string) ([]Assignment, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxEnvFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxEnvFile {
		return nil, &SyntaxError{name, 1, fmt.Sprintf("file is larger than %d bytes", maxEnvFile)}
	}
	// A UTF-8 byte order mark (some editors write one) is not part of the
	// first key.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	p := envParser{name: name, line: 1}
	as, err := p.parse(data)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if !utf8.ValidString(a.Value) {
			return nil, p.errf(a.Line, "the value of %s is not valid UTF-8", a.Key)
		}
	}
	return as, nil
}

// BadLine is a line of an env file that ParseEnvFileLines skipped: the
// syntax error and the key the line sets, as far as it can be told (""
// when it cannot).
type BadLine struct {
	Err *SyntaxError
	Key string
}

// ParseEnvFileLines parses as ParseEnvFile does but, as systemd does, skips
// a line with a syntax error (and, for an unterminated quote, the line the
// quote opens on) instead of rejecting the file: the other lines apply,
// and each skipped line is returned with the key it meant to set, so that
// the caller decides what a lost value means (sendmail must still queue
// mail when the line was about delivery).
func ParseEnvFileLines(r io.Reader, name string) ([]Assignment, []BadLine, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxEnvFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxEnvFile {
		return nil, nil, &SyntaxError{name, 1, fmt.Sprintf("file is larger than %d bytes", maxEnvFile)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []Assignment
	var bad []BadLine
	for line, rest := 1, data; ; {
		p := envParser{name: name, line: line}
		as, err := p.parse(rest)
		out = append(out, as...)
		var se *SyntaxError
		if !errors.As(err, &se) {
			break
		}
		bad = append(bad, BadLine{Err: se, Key: lineKey(rest, se.Line-line)})
		if se.Line < line {
			break // cannot happen: the parser counts forward
		}
		off := lineStart(rest, se.Line-line+1)
		if off >= len(rest) {
			break
		}
		line, rest = se.Line+1, rest[off:]
	}
	kept := out[:0]
	for _, a := range out {
		if !utf8.ValidString(a.Value) {
			bad = append(bad, BadLine{Err: &SyntaxError{name, a.Line, fmt.Sprintf("the value of %s is not valid UTF-8", a.Key)}, Key: a.Key})
			continue
		}
		kept = append(kept, a)
	}
	return kept, bad, nil
}

// lineStart is the offset in data of line n (0-based), counting line ends
// as the parser does ("\r\n" once, a lone '\r' or '\n' once); len(data)
// when there are fewer lines.
func lineStart(data []byte, n int) int {
	for i := 0; i < len(data) && n > 0; i++ {
		switch data[i] {
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			n--
		case '\n':
			n--
		}
		if n == 0 {
			return i + 1
		}
	}
	if n == 0 {
		return 0
	}
	return len(data)
}

// lineKey is the variable name that line n (0-based) of data starts with
// (after blanks and an "export "), upper-cased; "" when it starts with none.
func lineKey(data []byte, n int) string {
	s := data[lineStart(data, n):]
	if i := bytes.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	t := strings.TrimLeft(string(s), " \t\v\f")
	if rest, ok := strings.CutPrefix(t, "export"); ok && rest != "" && isBlank(rest[0]) {
		t = strings.TrimLeft(rest, " \t\v\f")
	}
	end := 0
	for end < len(t) && (t[end] == '_' || t[end] >= 'A' && t[end] <= 'Z' || t[end] >= 'a' && t[end] <= 'z' || end > 0 && t[end] >= '0' && t[end] <= '9') {
		end++
	}
	return strings.ToUpper(t[:end])
}

type envState int

const (
	stPreKey envState = iota
	stKey
	stPreValue
	stValue
	stValueEscape
	stSingle
	stDouble
	stDoubleEscape
	stComment
	stEnd // the parse stops
)

type envParser struct {
	name      string
	line      int
	out       []Assignment
	key       strings.Builder
	val       strings.Builder
	keyLine   int
	quoteLine int
	trailing  int // length of val before its trailing unquoted blanks
}

func (p *envParser) errf(line int, format string, a ...any) error {
	return &SyntaxError{File: p.name, Line: line, Msg: fmt.Sprintf(format, a...)}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

func isNewline(c byte) bool { return c == '\n' || c == '\r' }

// newline advances the line counter; "\r\n" counts once.
func (p *envParser) newline(data []byte, i int) {
	if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
		return // the '\n' that follows counts
	}
	p.line++
}

func (p *envParser) parse(data []byte) ([]Assignment, error) {
	st := stPreKey
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == 0 {
			return p.out, p.errf(p.line, "NUL byte")
		}
		var err error
		switch st {
		case stPreKey, stComment, stKey:
			st, err = p.inKey(st, data, i)
			if err != nil || st == stEnd {
				return p.out, err
			}
		case stPreValue, stValue, stValueEscape:
			st, i = p.inValue(st, data, i)
		default:
			st, i = p.inQuote(st, data, i)
		}
	}
	return p.finish(st)
}

// inKey takes octet data[i] before and in a key (and in a comment line).
// stEnd with a nil error ends the parse with no assignments.
func (p *envParser) inKey(st envState, data []byte, i int) (envState, error) {
	c := data[i]
	switch st {
	case stPreKey:
		switch {
		case c == '#' || c == ';':
			return stComment, nil
		case isNewline(c):
			p.newline(data, i)
		case isBlank(c):
		case c == '=':
			p.key.Reset()
			p.keyLine = p.line
			return stEnd, p.checkKey()
		default:
			p.key.Reset()
			p.key.WriteByte(c)
			p.keyLine = p.line
			return stKey, nil
		}
	case stComment:
		if isNewline(c) {
			p.newline(data, i)
			return stPreKey, nil
		}
	case stKey:
		switch {
		case c == '=':
			if err := p.checkKey(); err != nil {
				return st, err
			}
			p.val.Reset()
			p.trailing = 0
			return stPreValue, nil
		case isNewline(c):
			return st, p.errf(p.keyLine, "expected KEY=VALUE, found %q", strings.TrimSpace(p.key.String()))
		default:
			p.key.WriteByte(c)
		}
	}
	return st, nil
}

// inValue takes octet data[i] of an unquoted value (or before it); it
// returns the next state and the index of the last octet it consumed.
func (p *envParser) inValue(st envState, data []byte, i int) (envState, int) {
	c := data[i]
	switch st {
	case stPreValue:
		switch {
		case isNewline(c):
			p.push()
			p.newline(data, i)
			return stPreKey, i
		case c == '\'':
			p.quoteLine = p.line
			return stSingle, i
		case c == '"':
			p.quoteLine = p.line
			return stDouble, i
		case c == '\\':
			return stValueEscape, i
		case isBlank(c):
		default:
			p.val.WriteByte(c)
			p.trailing = p.val.Len()
			return stValue, i
		}
	case stValue:
		switch {
		case isNewline(c):
			p.push()
			p.newline(data, i)
			return stPreKey, i
		case c == '\\':
			return stValueEscape, i
		default:
			p.val.WriteByte(c)
			if !isBlank(c) {
				p.trailing = p.val.Len()
			}
		}
	case stValueEscape:
		if isNewline(c) {
			return stValue, p.continuation(data, i)
		}
		p.val.WriteByte(c)
		p.trailing = p.val.Len()
		return stValue, i
	}
	return st, i
}

// inQuote takes octet data[i] of a single- or double-quoted value; it
// returns the next state and the index of the last octet it consumed.
func (p *envParser) inQuote(st envState, data []byte, i int) (envState, int) {
	c := data[i]
	switch st {
	case stSingle:
		if c == '\'' {
			p.trailing = p.val.Len()
			return stPreValue, i
		}
		if isNewline(c) {
			p.newline(data, i)
		}
		p.val.WriteByte(c)
	case stDouble:
		switch {
		case c == '"':
			p.trailing = p.val.Len()
			return stPreValue, i
		case c == '\\':
			return stDoubleEscape, i
		default:
			if isNewline(c) {
				p.newline(data, i)
			}
			p.val.WriteByte(c)
		}
	case stDoubleEscape:
		switch {
		case c == '"' || c == '\\' || c == '`' || c == '$':
			p.val.WriteByte(c)
		case isNewline(c):
			return stDouble, p.continuation(data, i)
		default:
			p.val.WriteByte('\\')
			p.val.WriteByte(c)
		}
		return stDouble, i
	}
	return st, i
}

// continuation handles an escaped line end at data[i] (a backslash before
// it joins the lines); CRLF counts as one. It returns the index of the
// last octet consumed.
func (p *envParser) continuation(data []byte, i int) int {
	p.newline(data, i)
	if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
		i++
	}
	return i
}

// finish ends the parse in state st: an unfinished key or quote is an
// error, a value in progress is kept. The assignments before an error are
// returned with it; the callers check UTF-8.
func (p *envParser) finish(st envState) ([]Assignment, error) {
	switch st {
	case stKey:
		return p.out, p.errf(p.keyLine, "expected KEY=VALUE, found %q", strings.TrimSpace(p.key.String()))
	case stSingle, stDouble, stDoubleEscape:
		return p.out, p.errf(p.quoteLine, "unterminated quote in the value of %s", p.key.String())
	case stPreValue, stValue, stValueEscape:
		p.push()
	}
	return p.out, nil
}

// checkKey trims the key, drops a leading "export", and checks the name.
func (p *envParser) checkKey() error {
	k := strings.TrimRight(p.key.String(), " \t\v\f")
	if rest, ok := strings.CutPrefix(k, "export"); ok && rest != "" && isBlank(rest[0]) {
		k = strings.TrimLeft(rest, " \t\v\f")
	}
	if !validEnvName(k) {
		return p.errf(p.keyLine, "invalid variable name %q", k)
	}
	p.key.Reset()
	p.key.WriteString(k)
	return nil
}

func (p *envParser) push() {
	v := p.val.String()[:p.trailing]
	p.out = append(p.out, Assignment{Key: p.key.String(), Value: v, Line: p.keyLine})
}

// validEnvName reports whether k is [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
