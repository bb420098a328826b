// Package aliases turns the recipients and senders a local caller names into
// the addresses relayq queues: /etc/aliases expansion for local names,
// qualification of bare names with the local domain, and Postfix
// generic(5)-style sender rewriting (generic.go).
//
// # Aliases file format
//
// The file uses the /etc/aliases syntax of Sendmail and Postfix (aliases(5)):
//
//	# comment: a line whose first non-blank character is '#'
//	postmaster: root
//	root:       alice, ops@example.com
//	ops:        alice,
//	            bob@example.com          # a line starting with blank space continues the entry
//	staff:      :include:/etc/relayq/staff.list
//	"web team": web@example.com
//
// Each entry is NAME ":" TARGET ["," TARGET]... where NAME is a local name
// (optionally in double quotes, compared without regard to case) and each
// TARGET is one of:
//
//   - an address: user@domain, or a bare local name (expanded again);
//     "Display Name <user@domain>" and quoted local parts are accepted;
//   - ":include:/absolute/path": the addresses listed in that file, separated
//     by commas and/or newlines, with '#' comment lines (includes may nest up
//     to 10 deep);
//   - "|command" or "/file/path": delivery to a program or a file. relayq is
//     a relay client and has no local delivery agent, so such targets are
//     skipped with a warning (Table.Warnings, and Resolver.Warn at expansion).
//
// Blank lines are ignored. A line that does not start with blank space and
// has no ':' is an error naming the file and line. An entry with no targets
// is an error. A name given twice keeps its first entry and adds a warning
// (as postalias does).
//
// # Lookups and expansion
//
// Only local addresses are looked up: a bare name ("root"), or a name at one
// of the local domains (Resolver.LocalDomains, e.g. "localhost" and the host
// name). Expansion is recursive: each local target is looked up again. A name
// that appears again on its own expansion path (root: root, backup@x; or
// a: b / b: a) is not expanded again but kept as a final address, so loops
// end. An expansion yielding more than Resolver.Limit addresses (default
// 1000, as Postfix expansion_limit) is an error. A local name that no alias
// covers is qualified with Resolver.Domain (cron's mail to root goes to
// root@<domain>). Results are deduplicated without regard to case, first
// occurrence kept.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxLineLength bounds one physical line of an aliases or map file.
const MaxLineLength = 64 << 10

// Table is a parsed aliases file.
type Table struct {
	entries  map[string]entry
	order    []string
	warnings []string
}

type entry struct {
	targets []string
	source  string // "file:line"
}

// ParseFile reads an aliases file. A missing file is an error that wraps
// fs.ErrNotExist, so callers can treat it as "no aliases".
func ParseFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads aliases from r; name is used in error messages ("file:line").
func Parse(r io.Reader, name string) (*Table, error) {
	t := &Table{entries: map[string]entry{}}
	err := logicalLines(r, name, func(lineno int, line string) error {
		return t.add(name, lineno, line)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// logicalLines calls fn for each entry of a file in the aliases/map syntax:
// comment lines and blank lines skipped, continuation lines (starting with a
// space or tab) joined to the entry before them with one space. lineno is
// the entry's first line.
func logicalLines(r io.Reader, name string, fn func(lineno int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLineLength)
	var cur strings.Builder
	start, n := 0, 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		s := cur.String()
		cur.Reset()
		return fn(start, s)
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.IndexByte(line, 0) >= 0 {
			return fmt.Errorf("%s:%d: NUL character", name, n)
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur.Len() == 0 {
				return fmt.Errorf("%s:%d: continuation line with no entry before it", name, n)
			}
			cur.WriteByte(' ')
			cur.WriteString(trimmed)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		start = n
		cur.WriteString(trimmed)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line longer than %d octets", name, n+1, MaxLineLength)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return flush()
}

func (t *Table) add(file string, lineno int, line string) error {
	where := fmt.Sprintf("%s:%d", file, lineno)
	name, rest, err := splitName(line)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	targets, err := splitList(rest)
	if err != nil {
		return fmt.Errorf("%s: alias %q: %w", where, name, err)
	}
	if len(targets) == 0 {
		return fmt.Errorf("%s: alias %q has no targets", where, name)
	}
	for _, tg := range targets {
		if err := checkTarget(tg); err != nil {
			return fmt.Errorf("%s: alias %q: %w", where, name, err)
		}
		if isPipeOrFile(tg) {
			t.warnings = append(t.warnings, fmt.Sprintf("%s: alias %q: target %q is a program or file; relayq has no local delivery and skips it", where, name, tg))
		}
	}
	key := strings.ToLower(name)
	if prev, ok := t.entries[key]; ok {
		t.warnings = append(t.warnings, fmt.Sprintf("%s: duplicate alias %q ignored (first defined at %s)", where, name, prev.source))
		return nil
	}
	t.entries[key] = entry{targets: targets, source: where}
	t.order = append(t.order, key)
	return nil
}

// splitName splits `name: targets`, with an optionally quoted name.
func splitName(line string) (name, rest string, err error) {
	if strings.HasPrefix(line, `"`) {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", errors.New("unterminated quoted alias name")
		}
		name = line[1 : 1+end]
		rest = strings.TrimLeft(line[2+end:], " \t")
		if !strings.HasPrefix(rest, ":") {
			return "", "", fmt.Errorf("missing ':' after alias name %q", name)
		}
		rest = rest[1:]
	} else {
		i := strings.IndexByte(line, ':')
		if i < 0 {
			return "", "", fmt.Errorf("missing ':' in %q (expected NAME: TARGET, ...)", clip(line))
		}
		name = strings.TrimSpace(line[:i])
		rest = line[i+1:]
	}
	if name == "" {
		return "", "", errors.New("empty alias name")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", "", fmt.Errorf("alias name %q has a control character", name)
		}
	}
	if !strings.HasPrefix(line, `"`) && strings.ContainsAny(name, " \t,<>") {
		return "", "", fmt.Errorf("alias name %q has blank space or one of ,<> (quote it)", name)
	}
	return name, rest, nil
}

// splitList splits a comma-separated target list; commas inside double
// quotes or angle brackets do not split.
func splitList(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, inAngle := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			cur.WriteByte(c)
			i++
			cur.WriteByte(s[i])
			continue
		case c == '"':
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inAngle = true
		case c == '>' && !inQuote:
			inAngle = false
		case c == ',' && !inQuote && !inAngle:
			if t := strings.TrimSpace(cur.String()); t != "" {
				out = append(out, t)
			}
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if inQuote {
		return nil, errors.New("unterminated double quote")
	}
	if t := strings.TrimSpace(cur.String()); t != "" {
		out = append(out, t)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func isPipeOrFile(t string) bool {
	u := unquote(t)
	return strings.HasPrefix(u, "|") || strings.HasPrefix(u, "/")
}

func isInclude(t string) (string, bool) {
	if len(t) >= 9 && strings.EqualFold(t[:9], ":include:") {
		return strings.TrimSpace(t[9:]), true
	}
	return "", false
}

// checkTarget validates one target's syntax.
func checkTarget(t string) error {
	if path, ok := isInclude(t); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("include file %q is not an absolute path", path)
		}
		return nil
	}
	if isPipeOrFile(t) {
		return nil
	}
	_, err := Address(t)
	return err
}

func unquote(t string) string {
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		return t[1 : len(t)-1]
	}
	return t
}

// Address extracts the bare address from one target or list item:
// "Name <user@domain>" gives "user@domain"; "user@domain (comment)" gives
// "user@domain". It rejects blank space, control characters and a
// leading '-' in the result.
func Address(item string) (string, error) {
	s := strings.TrimSpace(item)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && !inQuotes(s, i) {
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return "", fmt.Errorf("%q: missing '>'", clip(item))
		}
		s = s[i+1 : i+j]
	} else if i := strings.IndexByte(s, '('); i > 0 && !inQuotes(s, i) {
		s = strings.TrimSpace(s[:i])
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%q: empty address", clip(item))
	}
	if s[0] == '-' {
		return "", fmt.Errorf("address %q starts with '-'", clip(s))
	}
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
			continue
		}
		if c < 0x20 || c == 0x7f || ((c == ' ' || c == '\t') && !quoted) || c == '<' || c == '>' || c == ',' {
			return "", fmt.Errorf("address %q contains blank space, a control character or one of <>,", clip(s))
		}
	}
	if quoted {
		return "", fmt.Errorf("address %q: unterminated quote", clip(s))
	}
	if strings.HasSuffix(s, "@") || strings.HasPrefix(s, "@") {
		return "", fmt.Errorf("address %q: empty local part or domain", clip(s))
	}
	return s, nil
}

func inQuotes(s string, pos int) bool {
	q := false
	for i := 0; i < pos; i++ {
		if s[i] == '\\' && q {
			i++
			continue
		}
		if s[i] == '"' {
			q = !q
		}
	}
	return q
}

// Len returns the number of aliases.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Warnings returns what parsing found suspicious but not fatal, each
// starting with "file:line:".
func (t *Table) Warnings() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.warnings...)
}

// Lookup returns the targets of a local name (case-insensitive) and the
// file:line of its entry.
func (t *Table) Lookup(name string) (targets []string, source string, ok bool) {
	if t == nil {
		return nil, "", false
	}
	e, ok := t.entries[strings.ToLower(name)]
	if !ok {
		return nil, "", false
	}
	return append([]string(nil), e.targets...), e.source, true
}

// Names returns the alias names in file order (lower case).
func (t *Table) Names() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.order...)
}
