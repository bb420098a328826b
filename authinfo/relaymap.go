package authinfo

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
)

// relayMapWhat names a sender relay map in errors and log lines.
const relayMapWhat = "sender relay map"

// dunno is the value that ends a lookup without a relay of its own
// (Postfix 2.6 and later): the sender's mail goes to the default relay.
const dunno = "DUNNO"

// RelayMap is a parsed sender relay map (Postfix
// sender_dependent_relayhost_maps, see the package doc). It is immutable
// and safe for concurrent use; a nil *RelayMap matches no sender.
type RelayMap struct {
	name    string
	entries map[string]*RelayEntry // normalised key → entry
	order   []*RelayEntry          // file order
}

// RelayEntry is one entry of a sender relay map.
type RelayEntry struct {
	Key    string // the sender key as written: user@domain, user+ext@domain or @domain
	Relays string // the relay host(s), RELAYQ_RELAYHOST syntax, joined by ", "; "" for DUNNO
	Source string // "file:line" of the entry
}

// Name is the file name the map was parsed from.
func (m *RelayMap) Name() string { return m.name }

// Len is the number of entries.
func (m *RelayMap) Len() int { return len(m.order) }

// Entries returns the entries in file order (copies).
func (m *RelayMap) Entries() []RelayEntry {
	out := make([]RelayEntry, len(m.order))
	for i, e := range m.order {
		out[i] = *e
	}
	return out
}

// ParseRelayMapFile opens, checks and parses a sender relay map. It holds
// no secrets, so anyone may read it, but it says where mail goes: it must
// be a regular file owned by the reading user or root and writable by
// neither its group nor others. A refused file gives a *PermError wrapping
// ErrPermission; a bad line a *SyntaxError.
func ParseRelayMapFile(path string) (*RelayMap, error) {
	m, _, err := parseRelayMapFile(path)
	return m, err
}

func parseRelayMapFile(path string) (*RelayMap, fileSig, error) {
	return loadFile(path, relayMapWhat, func(fi fs.FileInfo) error {
		return checkRelayMapPerm(path, fi, os.Geteuid())
	}, ParseRelayMap)
}

// checkRelayMapPerm applies ParseRelayMapFile's owner and mode rules.
func checkRelayMapPerm(path string, fi fs.FileInfo, euid int) error {
	if _, err := checkOwner(path, relayMapWhat, fi, euid); err != nil {
		return err
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o002 != 0:
		return &PermError{Path: path, What: relayMapWhat, Kind: PermOthers, Msg: fmt.Sprintf("writable by others (mode %04o), so anyone could send mail to a relay of their choosing; run: chmod go-w %s", perm, path)}
	case perm&0o020 != 0:
		return &PermError{Path: path, What: relayMapWhat, Kind: PermGroupWrite, Msg: fmt.Sprintf("writable by its group (mode %04o), so the group could send mail to a relay of its choosing; run: chmod go-w %s", perm, path)}
	}
	return nil
}

// ParseRelayMap reads a sender relay map (see the package doc). name is
// used in error messages and RelayEntry.Source.
func ParseRelayMap(r io.Reader, name string) (*RelayMap, error) {
	lines, err := readLogical(r, name)
	if err != nil {
		return nil, err
	}
	m := &RelayMap{name: name, entries: map[string]*RelayEntry{}}
	for _, l := range lines {
		key, value := splitKey(l.text)
		if value == "" {
			return nil, &SyntaxError{name, l.line, "expected a sender key and a relay host separated by white space (e.g. `@example.com [smtp.example.com]:587`)"}
		}
		if !strings.Contains(key, "@") {
			return nil, &SyntaxError{name, l.line, "expected a sender key, user@domain or @domain (a sender relay map has no host keys)"}
		}
		norm, _, msg := postfixKey(key)
		if msg != "" {
			return nil, &SyntaxError{name, l.line, msg}
		}
		relays, msg := relayValue(value)
		if msg != "" {
			return nil, &SyntaxError{name, l.line, msg}
		}
		if old, dup := m.entries[norm]; dup {
			return nil, &SyntaxError{name, l.line, fmt.Sprintf("duplicate key: %s has the same key", old.Source)}
		}
		e := &RelayEntry{Key: key, Relays: relays, Source: fmt.Sprintf("%s:%d", name, l.line)}
		m.entries[norm] = e
		m.order = append(m.order, e)
	}
	return m, nil
}

// relayValue checks a relay list (or DUNNO) and returns it with its
// entries joined by ", ".
func relayValue(v string) (string, string) {
	if strings.EqualFold(v, dunno) {
		return "", ""
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r < 0x80 && isBlank(byte(r)) })
	if len(fields) == 0 {
		return "", "expected a relay host ([host]:port, host:port or host) or DUNNO after the key"
	}
	for i, f := range fields {
		if strings.EqualFold(f, dunno) {
			return "", "DUNNO must stand alone: it means the default relay host (RELAYQ_RELAYHOST)"
		}
		if msg := checkRelay(f); msg != "" {
			return "", fmt.Sprintf("relay %d (%q): %s", i+1, f, msg)
		}
	}
	return strings.Join(fields, ", "), ""
}

// relayPortNames are the service names a relay's port may be given as.
var relayPortNames = []string{"smtp", "submission", "submissions", "smtps"}

// checkRelay checks one relay in Postfix relayhost syntax as
// smarthost.ParseRelays reads it — [host]:port, [host], host:port, host;
// [ipv6:addr] or [addr] for IPv6 — and is stricter where that is lax
// (authinfo may not import smarthost; a smarthost test keeps the two in
// step). It returns what is wrong, or "".
func checkRelay(f string) string {
	host, port, hasPort := f, "", false
	if rest, ok := strings.CutPrefix(f, "["); ok {
		inner, after, ok := strings.Cut(rest, "]")
		if !ok {
			return "'[' without ']' (want [host]:port)"
		}
		if after != "" {
			if port, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return "expected :port or nothing after ']'"
			}
		}
		host = inner
		if hasPrefixFold(inner, "ipv6:") {
			if ip := net.ParseIP(inner[5:]); ip == nil || !strings.Contains(inner[5:], ":") {
				return "expected an IPv6 address after [ipv6:"
			}
			host = inner[5:]
		}
	} else {
		if strings.Count(f, ":") > 1 {
			return "an IPv6 address goes in brackets, e.g. [::1]:587"
		}
		host, port, hasPort = strings.Cut(f, ":")
	}
	switch {
	case host == "":
		return "empty host"
	case hasPort && !relayPort(port):
		return "expected a port after ':', a number 1-65535 or smtp, submission, submissions, smtps"
	case net.ParseIP(host) != nil:
		return ""
	case !relayHostName(host):
		return "expected a host name or an IP address (IPv6 in brackets)"
	}
	return ""
}

// relayPort accepts a port number 1-65535 or one of relayPortNames.
func relayPort(p string) bool {
	for _, n := range relayPortNames {
		if strings.EqualFold(p, n) {
			return true
		}
	}
	return p != "" && p[0] >= '0' && p[0] <= '9' && validPort(p)
}

// relayHostName accepts an ASCII host name (letters, digits, '-', '_',
// dots; one trailing dot) of at most 253 characters.
func relayHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return false // before normHostName's ToLower, which maps some to ASCII
		}
	}
	_, ok := normHostName(h)
	return ok
}

// Lookup finds the entry for an envelope sender as Postfix's
// sender_dependent_relayhost_maps does (mail_addr_find): user+ext@domain,
// then user@domain (recipient delimiter '+'), then @domain; first hit
// wins. The null sender and a sender without '@' match nothing. The entry
// found may be a DUNNO one (Relays "").
func (m *RelayMap) Lookup(sender string) (RelayEntry, bool) {
	e := m.lookup(sender, func(string, ...any) {})
	if e == nil {
		return RelayEntry{}, false
	}
	return *e, true
}

// RelayHost returns the relays for sender's mail when the map gives it a
// relay of its own (smarthost.SenderRelays); ok is false when no entry
// matches or the one that does says DUNNO.
func (m *RelayMap) RelayHost(sender string) (relays string, ok bool) {
	e, ok := m.Lookup(sender)
	if !ok || e.Relays == "" {
		return "", false
	}
	return e.Relays, true
}

// Explain returns the lookup trail for sender, one line per step: the keys
// tried in order, which one matched and the result. It is what `relayq
// authinfo lookup` prints.
func (m *RelayMap) Explain(sender string) []string {
	var trail []string
	say := func(format string, a ...any) { trail = append(trail, fmt.Sprintf(format, a...)) }
	if m == nil {
		say("no sender relay map: every sender's mail goes to the default relay host (RELAYQ_RELAYHOST)")
		return trail
	}
	say("%s: sender relay map, %d entries", m.name, len(m.order))
	e := m.lookup(sender, say)
	switch {
	case e == nil:
		say("result: no entry matches; the mail goes to the default relay host (RELAYQ_RELAYHOST)")
	case e.Relays == "":
		say("result: DUNNO (%s): the mail goes to the default relay host (RELAYQ_RELAYHOST)", e.Source)
	default:
		say("result: relay host %s (%s) instead of the default one", e.Relays, e.Source)
	}
	return trail
}

// lookup tries the sender keys in order and tells say every step.
func (m *RelayMap) lookup(sender string, say func(string, ...any)) *RelayEntry {
	if m == nil {
		return nil
	}
	keys, why := senderKeys(sender)
	if why != "" {
		say("1. sender: %s", why)
		return nil
	}
	for i, k := range keys {
		if e := m.entries[k]; e != nil {
			say("%d. sender %q: matches %s", i+1, k, e.Source)
			return e
		}
		say("%d. sender %q: no entry", i+1, k)
	}
	return nil
}
