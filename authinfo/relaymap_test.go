package authinfo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func mustParseRelayMap(t *testing.T, text string) *RelayMap {
	t.Helper()
	m, err := ParseRelayMap(strings.NewReader(text), "relaymap")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseRelayMap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, sender string
		relays             string // "" = no relay of its own
		source             string
	}{
		{"bracketed with port", "alice@example.com [smtp.example.com]:587\n", "alice@example.com", "[smtp.example.com]:587", "relaymap:1"},
		{"domain key", "@example.com smtp.example.com:submission\n", "bob@example.com", "smtp.example.com:submission", "relaymap:1"},
		{"bare host", "@example.com smtp.example.com\n", "bob@example.com", "smtp.example.com", "relaymap:1"},
		{"bracketed, no port", "@example.com [smtp.example.com]\n", "bob@example.com", "[smtp.example.com]", "relaymap:1"},
		{"IPv4 host:port", "@example.com 192.0.2.1:2525\n", "bob@example.com", "192.0.2.1:2525", "relaymap:1"},
		{"IPv6 in brackets", "@example.com [2001:db8::1]:587\n", "bob@example.com", "[2001:db8::1]:587", "relaymap:1"},
		{"IPv6 with ipv6: prefix", "@example.com [IPv6:2001:db8::1]:465\n", "bob@example.com", "[IPv6:2001:db8::1]:465", "relaymap:1"},
		{"several, commas", "@example.com [a.example]:587,[b.example]:587\n", "bob@example.com", "[a.example]:587, [b.example]:587", "relaymap:1"},
		{"several, commas and blanks", "@example.com [a.example]:587 ,\t b.example\n", "bob@example.com", "[a.example]:587, b.example", "relaymap:1"},
		{"keys are case-insensitive", "Alice@Example.COM [smtp.example.com]:587\n", "ALICE@example.com", "[smtp.example.com]:587", "relaymap:1"},
		{"trailing dot in the key's domain", "@example.com. [smtp.example.com]:587\n", "bob@EXAMPLE.com", "[smtp.example.com]:587", "relaymap:1"},
		{"port names, any case", "@example.com [smtp.example.com]:SMTPS\n", "bob@example.com", "[smtp.example.com]:SMTPS", "relaymap:1"},
		{"comments and blank lines", "# relays\n\n   \n  # indented comment\n@example.com [smtp.example.com]:587\n", "bob@example.com", "[smtp.example.com]:587", "relaymap:5"},
		{"# inside a line is text, not a comment", "@example.com [smtp.example.com]:587\n#@example.org x\n", "bob@example.org", "", ""},
		{"continuation line", "@example.com\n  [smtp.example.com]:587\n", "bob@example.com", "[smtp.example.com]:587", "relaymap:1"},
		{"continuation adds a relay", "@example.com [a.example]:587,\n# note\n\n\t[b.example]:587\n", "bob@example.com", "[a.example]:587, [b.example]:587", "relaymap:1"},
		{"CRLF and no final newline", "@example.com [smtp.example.com]:587\r\n@example.org x.example", "bob@example.org", "x.example", "relaymap:2"},
		{"DUNNO: the default relay", "alice@example.com DUNNO\n@example.com [smtp.example.com]:587\n", "alice@example.com", "", "relaymap:1"},
		{"dunno in lower case", "alice@example.com dunno\n@example.com [smtp.example.com]:587\n", "alice+x@example.com", "", "relaymap:1"},
		{"empty file", "", "alice@example.com", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParseRelayMap(t, tt.text)
			relays, ok := m.RelayHost(tt.sender)
			if relays != tt.relays || ok != (tt.relays != "") {
				t.Errorf("RelayHost(%q) = %q %v, want %q", tt.sender, relays, ok, tt.relays)
			}
			e, found := m.Lookup(tt.sender)
			if e.Source != tt.source || found != (tt.source != "") {
				t.Errorf("Lookup(%q) = %+v %v, want source %q", tt.sender, e, found, tt.source)
			}
		})
	}
}

func TestParseRelayMapEntries(t *testing.T) {
	t.Parallel()
	m := mustParseRelayMap(t, "Alice@Example.com [a.example]:587\n@example.org\tb.example , c.example\nbob@example.org DUNNO\n")
	want := []RelayEntry{
		{Key: "Alice@Example.com", Relays: "[a.example]:587", Source: "relaymap:1"},
		{Key: "@example.org", Relays: "b.example, c.example", Source: "relaymap:2"},
		{Key: "bob@example.org", Relays: "", Source: "relaymap:3"},
	}
	got := m.Entries()
	if m.Len() != 3 || m.Name() != "relaymap" || len(got) != len(want) {
		t.Fatalf("Len %d Name %q Entries %+v", m.Len(), m.Name(), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	got[0].Relays = "changed"
	if m.Entries()[0].Relays != "[a.example]:587" {
		t.Error("Entries returns the map's own entries")
	}
}

func TestParseRelayMapErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		line       int
		want       string
	}{
		{"key without value", "@example.com\n", 1, "expected a sender key and a relay host separated by white space"},
		{"host key", "smtp.example.com [relay.example]:587\n", 1, "expected a sender key, user@domain or @domain"},
		{"next-hop key", "# c\n[smtp.example.com]:587 [relay.example]:587\n", 2, "expected a sender key, user@domain or @domain"},
		{"bad domain in the key", "alice@exa/mple.com x\n", 1, "the part after '@' is not a domain name"},
		{"empty domain in the key", "alice@ x.example\n", 1, "the part after '@' is not a domain name"},
		{"bad local part", "a[b]@example.com x.example\n", 1, "sender key: expected user@domain or @domain"},
		{"only commas", "@example.com ,,\n", 1, "expected a relay host ([host]:port, host:port or host) or DUNNO"},
		{"missing ]", "@example.com [smtp.example.com:587\n", 1, `relay 1 ("[smtp.example.com:587"): '[' without ']'`},
		{"text after ]", "@example.com [smtp.example.com]587\n", 1, "expected :port or nothing after ']'"},
		{"empty port", "@example.com [smtp.example.com]:\n", 1, "expected a port after ':'"},
		{"port out of range", "@example.com smtp.example.com:65536\n", 1, "a number 1-65535 or smtp, submission, submissions, smtps"},
		{"port zero", "@example.com smtp.example.com:0\n", 1, "expected a port after ':'"},
		{"unknown port name", "@example.com smtp.example.com:imap\n", 1, "expected a port after ':'"},
		{"empty host", "@example.com []:587\n", 1, "empty host"},
		{"empty host before :", "@example.com :587\n", 1, "empty host"},
		{"IPv6 without brackets", "@example.com 2001:db8::1\n", 1, "an IPv6 address goes in brackets"},
		{"ipv6: with a name", "@example.com [ipv6:smtp.example.com]\n", 1, "expected an IPv6 address after [ipv6:"},
		{"ipv6: with IPv4", "@example.com [ipv6:192.0.2.1]\n", 1, "expected an IPv6 address after [ipv6:"},
		{"bad host name", "@example.com smtp/example.com\n", 1, `relay 1 ("smtp/example.com"): expected a host name or an IP address`},
		{"non-ASCII host name", "@example.com smtp.\u212aelvin.example\n", 1, "expected a host name or an IP address"},
		{"empty label", "@example.com smtp..example.com\n", 1, "expected a host name"},
		{"bad second relay", "@example.com [a.example]:587, [b.example]:x\n", 1, `relay 2 ("[b.example]:x")`},
		{"DUNNO in a list", "@example.com [a.example]:587, DUNNO\n", 1, "DUNNO must stand alone"},
		{"duplicate key", "@example.com a.example\n\n@EXAMPLE.com b.example\n", 3, "duplicate key: /etc/relayq/sender_relay:1 has the same key"},
		{"duplicate after normalisation", "alice@example.com. a.example\nalice@example.com b.example\n", 2, "duplicate key"},
		{"continuation with nothing above", "  @example.com a.example\n", 1, "continues the previous entry, but there is none above"},
		{"NUL byte", "@example.com a.example\n@example.org b\x00.example\n", 2, "NUL byte in line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRelayMap(strings.NewReader(tt.text), "/etc/relayq/sender_relay")
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			prefix := "/etc/relayq/sender_relay:" + strconv.Itoa(tt.line) + ": "
			if se.Line != tt.line || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q… containing %q", err, prefix, tt.want)
			}
		})
	}
}

func TestParseRelayMapTooLarge(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("# padding\n", MaxFileSize/10+1)
	if _, err := ParseRelayMap(strings.NewReader(big), "big"); err == nil || !strings.Contains(err.Error(), "big: larger than") {
		t.Errorf("err = %v", err)
	}
}

func TestRelayMapLookupOrder(t *testing.T) {
	t.Parallel()
	m := mustParseRelayMap(t, `
alice+news@example.com  [ext.example]:587
alice@example.com       [user.example]:587
@example.com            [domain.example]:587
postmaster@example.com  DUNNO
+x@example.org          [plus.example]:587
`)
	tests := []struct {
		sender, relays string
		trail          []string // the steps of Explain
	}{
		{"alice+news@example.com", "[ext.example]:587", []string{`1. sender "alice+news@example.com": matches relaymap:2`}},
		{"alice+other@example.com", "[user.example]:587", []string{`1. sender "alice+other@example.com": no entry`, `2. sender "alice@example.com": matches relaymap:3`}},
		{"alice+a+b@example.com", "[user.example]:587", nil}, // split at the first '+'
		{"alice@example.com", "[user.example]:587", []string{`1. sender "alice@example.com": matches relaymap:3`}},
		{"<Alice@Example.COM>", "[user.example]:587", nil},
		{"bob@example.com", "[domain.example]:587", []string{`1. sender "bob@example.com": no entry`, `2. sender "@example.com": matches relaymap:4`}},
		{"bob+x@example.com", "[domain.example]:587", []string{`1. sender "bob+x@example.com": no entry`, `2. sender "bob@example.com": no entry`, `3. sender "@example.com": matches relaymap:4`}},
		{"postmaster@example.com", "", []string{`1. sender "postmaster@example.com": matches relaymap:5`}},
		{"bob@sub.example.com", "", nil}, // @domain is not a parent domain match
		{"+x@example.org", "[plus.example]:587", nil},
		{"+y@example.org", "", []string{`1. sender "+y@example.org": no entry`, `2. sender "@example.org": no entry`}}, // not split at a leading '+'
		{"", "", []string{"1. sender: null sender: no sender lookups"}},
		{"<>", "", nil},
		{"alice", "", []string{"1. sender: sender has no domain: no sender lookups"}},
	}
	for _, tt := range tests {
		relays, ok := m.RelayHost(tt.sender)
		if relays != tt.relays || ok != (tt.relays != "") {
			t.Errorf("RelayHost(%q) = %q %v, want %q", tt.sender, relays, ok, tt.relays)
		}
		trail := m.Explain(tt.sender)
		if len(trail) < 2 || !strings.Contains(trail[0], "relaymap: sender relay map, 5 entries") {
			t.Errorf("Explain(%q) = %q", tt.sender, trail)
			continue
		}
		if tt.trail != nil && strings.Join(trail[1:len(trail)-1], "\n") != strings.Join(tt.trail, "\n") {
			t.Errorf("Explain(%q) steps:\n%s\nwant:\n%s", tt.sender, strings.Join(trail[1:len(trail)-1], "\n"), strings.Join(tt.trail, "\n"))
		}
		last := trail[len(trail)-1]
		switch {
		case tt.relays != "" && !strings.HasPrefix(last, "result: relay host "+tt.relays+" (relaymap:"):
			t.Errorf("Explain(%q) result %q", tt.sender, last)
		case tt.relays == "" && !strings.Contains(last, "the default relay host (RELAYQ_RELAYHOST)"):
			t.Errorf("Explain(%q) result %q", tt.sender, last)
		}
	}
	var none *RelayMap
	if _, ok := none.RelayHost("alice@example.com"); ok {
		t.Error("a nil map matched")
	}
	if trail := none.Explain("alice@example.com"); len(trail) != 1 || !strings.Contains(trail[0], "no sender relay map") {
		t.Errorf("nil map Explain %q", trail)
	}
}

func TestCheckRelayMapPerm(t *testing.T) {
	t.Parallel()
	const me, other = 1000, 2000
	tests := []struct {
		name     string
		mode     fs.FileMode
		uid      uint32
		wantMsg  string
		wantKind PermKind
	}{
		{"0644", 0o644, me, "", 0},
		{"0444", 0o444, me, "", 0},
		{"0600", 0o600, me, "", 0},
		{"0640 root", 0o640, 0, "", 0},
		{"0755 executable is fine", 0o755, me, "", 0},
		{"0664 group-writable", 0o664, me, "writable by its group (mode 0664)", PermGroupWrite},
		{"0646 world-writable", 0o646, me, "writable by others (mode 0646)", PermOthers},
		{"0666", 0o666, me, "writable by others", PermOthers},
		{"someone else's", 0o644, other, "owned by uid 2000, not by the reading user (uid 1000) or root", PermOwner},
		{"directory", fs.ModeDir | 0o755, me, "not a regular file", PermNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const p = "/etc/relayq/sender_relay"
			err := checkRelayMapPerm(p, fakeInfo{tt.mode, tt.uid, tt.uid}, me)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *PermError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPermission) || pe.Kind != tt.wantKind {
				t.Fatalf("err = %v (%#v), want kind %d", err, pe, tt.wantKind)
			}
			if !strings.HasPrefix(err.Error(), "sender relay map "+p+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want %q", err, tt.wantMsg)
			}
			if (tt.wantKind == PermOthers || tt.wantKind == PermGroupWrite) && !strings.Contains(err.Error(), "run: chmod go-w "+p) {
				t.Errorf("err = %q: no fix", err)
			}
		})
	}
}

func writeRelayMap(t *testing.T, dir, text string, mode os.FileMode) string {
	t.Helper()
	return writeAt(t, filepath.Join(dir, "sender_relay"), text, mode)
}

func TestParseRelayMapFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeRelayMap(t, dir, "@example.com [smtp.example.com]:587\n", 0o644)
	m, err := ParseRelayMapFile(p)
	if err != nil {
		t.Fatalf("0644: %v", err)
	}
	if r, _ := m.RelayHost("a@example.com"); r != "[smtp.example.com]:587" || m.Name() != p {
		t.Errorf("relay %q name %q", r, m.Name())
	}
	for _, mode := range []os.FileMode{0o664, 0o666, 0o646} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRelayMapFile(p); !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "chmod go-w "+p) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if _, err := ParseRelayMapFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "sender relay map: ") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ParseRelayMapFile(dir); !errors.Is(err, ErrPermission) {
		t.Errorf("directory: %v", err)
	}
}

func relayOf(s *RelayStore, sender string) string {
	r, _ := s.RelayHost(sender)
	return r
}

func TestRelayStoreReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeRelayMap(t, dir, "@example.com [old.example]:587\n", 0o644)
	s, err := NewRelayStore(p)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := logTo(&s.watch)
	if s.Path() != p || relayOf(s, "a@example.com") != "[old.example]:587" || s.Map().Len() != 1 {
		t.Fatalf("initial relay %q", relayOf(s, "a@example.com"))
	}

	// Reload (SIGHUP) picks up a good file.
	writeRelayMap(t, dir, "@example.com [new.example]:587\n", 0o644)
	if err := s.Reload(); err != nil || relayOf(s, "a@example.com") != "[new.example]:587" || s.Err() != nil {
		t.Fatalf("Reload: %v, relay %q, Err %v", err, relayOf(s, "a@example.com"), s.Err())
	}
	// A broken file: Reload returns the error, the old map stays.
	writeRelayMap(t, dir, "@example.com [broken.example\n", 0o644)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), p+":1: relay 1") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if relayOf(s, "a@example.com") != "[new.example]:587" || s.Err() == nil {
		t.Fatalf("after a failed Reload: relay %q, Err %v", relayOf(s, "a@example.com"), s.Err())
	}
	// A group-writable file is a failed reload too, and so is a missing one.
	writeRelayMap(t, dir, "@example.com [unsafe.example]:587\n", 0o664)
	if err := s.Reload(); !errors.Is(err, ErrPermission) || relayOf(s, "a@example.com") != "[new.example]:587" {
		t.Fatalf("Reload of a group-writable file: %v, relay %q", err, relayOf(s, "a@example.com"))
	}
	os.Remove(p)
	if err := s.Reload(); !errors.Is(err, fs.ErrNotExist) || relayOf(s, "a@example.com") != "[new.example]:587" {
		t.Fatalf("Reload of a missing file: %v, relay %q", err, relayOf(s, "a@example.com"))
	}

	// Automatic reload at lookup time; a
	// broken version is logged once and keeps the old map.
	writeRelayMap(t, dir, "@example.com [auto.example]:587\n", 0o644)
	if got := relayOf(s, "a@example.com"); got != "[auto.example]:587" || !strings.Contains(logBuf.String(), "sender relay map reloaded") {
		t.Fatalf("auto reload: relay %q, log %s", got, logBuf.String())
	}
	logBuf.Reset()
	writeRelayMap(t, dir, "@example.com [auto.example]:x\n", 0o644)
	for range 3 {
		if got := relayOf(s, "a@example.com"); got != "[auto.example]:587" {
			t.Fatalf("broken file replaced the map: %q", got)
		}
	}
	if n := strings.Count(logBuf.String(), "sender relay map not reloaded; the previous entries stay in force"); n != 1 {
		t.Errorf("%d error log lines, want 1:\n%s", n, logBuf.String())
	}
	if trail := strings.Join(s.Explain("a@example.com"), "\n"); !strings.Contains(trail, "result: relay host [auto.example]:587") {
		t.Errorf("Explain: %s", trail)
	}
}

func TestNewRelayStoreError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := NewRelayStore(writeRelayMap(t, dir, "smtp.example.com x\n", 0o644)); err == nil {
		t.Error("NewRelayStore accepted a broken file")
	}
	if _, err := NewRelayStore(writeRelayMap(t, dir, "@example.com x\n", 0o666)); !errors.Is(err, ErrPermission) {
		t.Errorf("NewRelayStore of a world-writable file: %v", err)
	}
	var none *RelayStore
	if _, ok := none.RelayHost("a@example.com"); ok || none.Map() != nil || len(none.Explain("a@example.com")) != 1 {
		t.Error("a nil RelayStore is not empty")
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	creds := mustParse(t, "[smtp.example.com]:587 user:pw\n")
	relays := mustParseRelayMap(t, "@example.org [other.example]:587\n")
	r := Routes{Credentials: creds, Relays: relays}
	if c, ok := r.Lookup(Query{NextHop: "[smtp.example.com]:587"}); !ok || c.User != "user" {
		t.Errorf("Lookup: %v %v", c, ok)
	}
	if h, ok := r.RelayHost("a@example.org"); !ok || h != "[other.example]:587" {
		t.Errorf("RelayHost: %q %v", h, ok)
	}
	var empty Routes
	if _, ok := empty.Lookup(Query{NextHop: "[smtp.example.com]:587"}); ok {
		t.Error("Routes without credentials found one")
	}
	if _, ok := empty.RelayHost("a@example.org"); ok {
		t.Error("Routes without a relay map found a relay")
	}
}
