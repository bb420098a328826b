package authinfo

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) *Map {
	t.Helper()
	m, err := Parse(strings.NewReader(text), "authinfo")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// postfixFile exercises every Postfix lookup step.
const postfixFile = `# Postfix sasl_passwd
[smtp.example.com]:587   nexthop:pw-nexthop
smtp.example.com         host:pw-host
alice+tag@a.test         alice-ext:pw-alice-ext
alice@a.test             alice:pw-alice
@b.test                  domain-b:pw-b
postmaster@c.test        pm:pw-pm
[10.0.0.1]:2525          ip-nexthop:pw-ip
`

func TestLookupPostfix(t *testing.T) {
	t.Parallel()
	m := mustParse(t, postfixFile)
	if !m.SenderDependent() || m.Format() != FormatPostfix || m.Len() != 7 {
		t.Fatalf("map: sender-dependent %v format %v len %d", m.SenderDependent(), m.Format(), m.Len())
	}
	hop := "[smtp.example.com]:587"
	tests := []struct {
		name string
		q    Query
		user string // "" = no entry
		key  string
	}{
		{"sender with extension, exact key", Query{Sender: "alice+tag@a.test", Host: "smtp.example.com", NextHop: hop}, "alice-ext", "alice+tag@a.test"},
		{"other extension falls back to user@domain", Query{Sender: "alice+other@a.test", Host: "smtp.example.com", NextHop: hop}, "alice", "alice@a.test"},
		{"user@domain", Query{Sender: "alice@a.test", Host: "smtp.example.com", NextHop: hop}, "alice", "alice@a.test"},
		{"sender keys fold case", Query{Sender: "Alice+TAG@A.Test", Host: "smtp.example.com", NextHop: hop}, "alice-ext", "alice+tag@a.test"},
		{"@domain", Query{Sender: "bob@b.test", Host: "smtp.example.com", NextHop: hop}, "domain-b", "@b.test"},
		{"@domain with extension", Query{Sender: "bob+x@b.test", Host: "smtp.example.com", NextHop: hop}, "domain-b", "@b.test"},
		{"subdomain is not the domain", Query{Sender: "bob@sub.b.test", Host: "smtp.example.com", NextHop: hop}, "host", "smtp.example.com"},
		{"unknown sender: server name before next hop", Query{Sender: "carol@c.test", Host: "smtp.example.com", NextHop: hop}, "host", "smtp.example.com"},
		{"null sender skips sender keys", Query{Sender: "", Host: "smtp.example.com", NextHop: hop}, "host", "smtp.example.com"},
		{"sender without domain skips sender keys", Query{Sender: "alice", Host: "smtp.example.com", NextHop: hop}, "host", "smtp.example.com"},
		{"host key matches any port", Query{Host: "smtp.example.com", Port: 25, NextHop: "[smtp.example.com]:25"}, "host", "smtp.example.com"},
		{"server name folds case, trailing dot", Query{Host: "SMTP.Example.COM.", NextHop: "x"}, "host", "smtp.example.com"},
		{"next hop as written when the server name has no entry", Query{Host: "mx1.example.com", NextHop: hop}, "nexthop", hop},
		{"next hop folds case", Query{Host: "mx1.example.com", NextHop: "[SMTP.example.com]:587"}, "nexthop", hop},
		{"next hop needs the same port", Query{Host: "mx1.example.com", NextHop: "[smtp.example.com]:465"}, "", ""},
		{"next hop needs the brackets", Query{Host: "mx1.example.com", NextHop: "smtp.example.com:587"}, "", ""},
		{"postmaster+x is split (only exact postmaster is not)", Query{Sender: "postmaster+x@c.test", Host: "h"}, "pm", "postmaster@c.test"},
		{"IP next hop", Query{Host: "10.0.0.1", Addr: "10.0.0.1", NextHop: "[10.0.0.1]:2525"}, "ip-nexthop", "[10.0.0.1]:2525"},
		{"nothing matches: no AUTH", Query{Sender: "x@y.test", Host: "other.example", NextHop: "[other.example]:587"}, "", ""},
		{"empty query", Query{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := m.Lookup(tt.q)
			if tt.user == "" {
				if ok {
					t.Fatalf("Lookup(%+v) = %v, want no entry", tt.q, c)
				}
				return
			}
			if !ok || c.User != tt.user || c.AuthID != tt.user || c.Key != tt.key {
				t.Fatalf("Lookup(%+v) = %v (key %q) %v, want user %q key %q", tt.q, c, c.Key, ok, tt.user, tt.key)
			}
			if want := "pw-" + strings.TrimPrefix(strings.ReplaceAll(tt.user, "domain-", ""), "ip-"); tt.user != "ip-nexthop" && c.Password.Reveal() != want {
				t.Errorf("password of %s = %q, want %q", tt.user, c.Password.Reveal(), want)
			}
			if !strings.HasPrefix(c.Source, "authinfo:") {
				t.Errorf("Source = %q", c.Source)
			}
		})
	}
}

func TestLookupPostfixNoSenderKeys(t *testing.T) {
	t.Parallel()
	// Without sender keys sender-dependent lookups are off: a host key that
	// happens to look like nothing else still matches for every sender.
	m := mustParse(t, "smtp.example.com u:p\n")
	if m.SenderDependent() {
		t.Fatal("SenderDependent with no sender keys")
	}
	for _, s := range []string{"", "a@b.test", "x+y@smtp.example.com"} {
		if c, ok := m.Lookup(Query{Sender: s, Host: "smtp.example.com"}); !ok || c.User != "u" {
			t.Errorf("sender %q: %v %v", s, c, ok)
		}
	}
	trail := strings.Join(m.Explain(Query{Sender: "a@b.test", Host: "smtp.example.com"}), "\n")
	if !strings.Contains(trail, "sender-dependent lookups off") || strings.Contains(trail, `sender "a@b.test"`) {
		t.Errorf("Explain:\n%s", trail)
	}
}

func TestLookupPostfixHostPortKey(t *testing.T) {
	t.Parallel()
	// host:port without brackets is only ever a next-hop key (relayhost
	// written as host:port, with MX lookup).
	m := mustParse(t, "example.com:587 u:p\n")
	if _, ok := m.Lookup(Query{Host: "example.com", Port: 587, NextHop: "[example.com]:587"}); ok {
		t.Error("host:port key matched a bracketed next hop")
	}
	if c, ok := m.Lookup(Query{Host: "mx.example.com", Port: 587, NextHop: "example.com:587"}); !ok || c.User != "u" {
		t.Errorf("host:port next hop: %v %v", c, ok)
	}
}

const sendmailFile = `# sendmail authinfo
AuthInfo:relay.example.com "U:host-user" "P:pw-host" "M:PLAIN LOGIN"
AuthInfo:192.0.2.1 "U:addr-user" "P:pw-addr"
AuthInfo:IPv6:2001:db8::1 "U:v6-user" "P:pw-v6"
AuthInfo: "U:default-user" "P:pw-default"
`

func TestLookupSendmail(t *testing.T) {
	t.Parallel()
	m := mustParse(t, sendmailFile)
	if m.Format() != FormatSendmail || m.SenderDependent() {
		t.Fatalf("format %v sender-dependent %v", m.Format(), m.SenderDependent())
	}
	tests := []struct {
		name string
		q    Query
		user string
	}{
		{"host name first", Query{Host: "relay.example.com", Addr: "192.0.2.1", NextHop: "[relay.example.com]:587", Port: 587}, "host-user"},
		{"host name folds case", Query{Host: "Relay.Example.Com", Addr: "198.51.100.7"}, "host-user"},
		{"address when the name has no entry", Query{Host: "mx.example.com", Addr: "192.0.2.1"}, "addr-user"},
		{"IPv4-mapped address", Query{Host: "mx.example.com", Addr: "::ffff:192.0.2.1"}, "addr-user"},
		{"IPv6 address, non-canonical form", Query{Host: "mx.example.com", Addr: "2001:0db8:0:0::1"}, "v6-user"},
		{"IPv6 address in sendmail's form", Query{Host: "mx.example.com", Addr: "IPv6:2001:db8::1"}, "v6-user"},
		{"bracketed address", Query{Host: "mx.example.com", Addr: "[192.0.2.1]"}, "addr-user"},
		{"default last", Query{Host: "mx.example.com", Addr: "198.51.100.7"}, "default-user"},
		{"sender and next hop play no part", Query{Sender: "a@relay.example.com", Host: "other", NextHop: "[relay.example.com]:587"}, "default-user"},
		{"no port in the name lookup", Query{Host: "relay.example.com", Port: 2525}, "host-user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := m.Lookup(tt.q)
			if !ok || c.User != tt.user {
				t.Fatalf("Lookup(%+v) = %v %v, want %s", tt.q, c, ok, tt.user)
			}
		})
	}
	c, _ := m.Lookup(Query{Host: "relay.example.com"})
	if strings.Join(c.Mechs, ",") != "PLAIN,LOGIN" || c.Key != "AuthInfo:relay.example.com" || c.Source != "authinfo:2" {
		t.Errorf("credential %+v key %q", c, c.Key)
	}
	// Lookup returns copies: changing them does not change the map.
	c.Mechs[0] = "X"
	if c2, _ := m.Lookup(Query{Host: "relay.example.com"}); c2.Mechs[0] != "PLAIN" {
		t.Error("Lookup shares the Mechs slice with the map")
	}

	// At most three lookups, and no default entry means no AUTH.
	m2 := mustParse(t, "AuthInfo:relay.example.com \"U:u\" \"P:p\"\n")
	if _, ok := m2.Lookup(Query{Host: "other.example.com", Addr: "192.0.2.9"}); ok {
		t.Error("matched without a default entry")
	}
	trail := m2.Explain(Query{Host: "other.example.com", Addr: "192.0.2.9"})
	want := []string{`1. server name "authinfo:other.example.com": no entry`, `2. server address "authinfo:192.0.2.9": no entry`, `3. default "authinfo:": no entry`, "result: no entry matches"}
	for _, w := range want {
		if !strings.Contains(strings.Join(trail, "\n"), w) {
			t.Errorf("Explain lacks %q:\n%s", w, strings.Join(trail, "\n"))
		}
	}
	if len(trail) != 5 {
		t.Errorf("Explain has %d lines, want 5 (header, three lookups, result):\n%s", len(trail), strings.Join(trail, "\n"))
	}
}

func TestExplainPostfix(t *testing.T) {
	t.Parallel()
	m := mustParse(t, postfixFile)
	trail := m.Explain(Query{Sender: "alice+zz@a.test", Host: "mx1.example.com", NextHop: "[smtp.example.com]:587"})
	want := []string{
		"authinfo: Postfix sasl_passwd syntax, 7 entries; sender-dependent lookups on (4 sender keys)",
		`1. sender "alice+zz@a.test": no entry`,
		`2. sender "alice@a.test": matches authinfo:5`,
		`result: user "alice" password ******** (authinfo:5)`,
	}
	if strings.Join(trail, "\n") != strings.Join(want, "\n") {
		t.Errorf("Explain:\n%s\nwant:\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	trail = m.Explain(Query{Sender: "zed@z.test", Host: "mx1.example.com", NextHop: "[smtp.example.com]:587"})
	want = []string{
		"authinfo: Postfix sasl_passwd syntax, 7 entries; sender-dependent lookups on (4 sender keys)",
		`1. sender "zed@z.test": no entry`,
		`2. sender "@z.test": no entry`,
		`3. server name "mx1.example.com": no entry`,
		`4. next hop "[smtp.example.com]:587": matches authinfo:2`,
		`result: user "nexthop" password ******** (authinfo:2)`,
	}
	if strings.Join(trail, "\n") != strings.Join(want, "\n") {
		t.Errorf("Explain:\n%s\nwant:\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	var nilMap *Map
	if _, ok := nilMap.Lookup(Query{Host: "x"}); ok {
		t.Error("nil map matched")
	}
	if got := nilMap.Explain(Query{}); len(got) != 1 {
		t.Errorf("nil map Explain = %q", got)
	}
}

func TestSenderKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sender string
		want   string
	}{
		{"user+ext@example.com", "user+ext@example.com user@example.com @example.com"},
		{"user@example.com", "user@example.com @example.com"},
		{"<User+A+B@Example.COM>", "user+a+b@example.com user@example.com @example.com"},
		{"+ext@example.com", "+ext@example.com @example.com"},
		{"postmaster@example.com", "postmaster@example.com @example.com"},
		{"mailer-daemon@example.com", "mailer-daemon@example.com @example.com"},
		{"a@b@example.com", "a@b@example.com @example.com"},
		{"", ""},
		{"root", ""},
	}
	for _, tt := range tests {
		keys, _ := senderKeys(tt.sender)
		if got := strings.Join(keys, " "); got != tt.want {
			t.Errorf("senderKeys(%q) = %q, want %q", tt.sender, got, tt.want)
		}
	}
}

func TestMapListings(t *testing.T) {
	t.Parallel()
	m := mustParse(t, postfixFile)
	if got := strings.Join(m.SenderKeys(), " "); got != "alice+tag@a.test alice@a.test @b.test postmaster@c.test" {
		t.Errorf("SenderKeys = %q", got)
	}
	if m.HasAddressKeys() || len(m.Keys()) != 7 || m.Keys()[0] != "[smtp.example.com]:587" {
		t.Errorf("HasAddressKeys %v Keys %q", m.HasAddressKeys(), m.Keys())
	}
	s := mustParse(t, sendmailFile)
	if !s.HasAddressKeys() || s.SenderKeys() != nil {
		t.Errorf("sendmail: HasAddressKeys %v SenderKeys %q", s.HasAddressKeys(), s.SenderKeys())
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	m := mustParse(t, sendmailFile)
	es := m.Entries()
	if len(es) != 4 || es[0].Key != "AuthInfo:relay.example.com" || es[0].Source != "authinfo:2" || es[3].User != "default-user" {
		t.Fatalf("Entries = %v", es)
	}
	es[0].Mechs[0] = "X"
	if m.Entries()[0].Mechs[0] != "PLAIN" {
		t.Error("Entries shares slices with the map")
	}
}

// TestLookupKelvinSign: lookups fold case in ASCII only; a Kelvin sign
// (U+212A), which strings.ToLower turns into 'k', matches no 'k' key.
func TestLookupKelvinSign(t *testing.T) {
	t.Parallel()
	m := mustParse(t, "smtp.kelvin.test host:pw\nkate@kelvin.test kate:pw\n@kelvin.test dom:pw\n")
	for _, q := range []Query{
		{Host: "smtp.\u212aelvin.test"},
		{Host: "other.test", NextHop: "[smtp.\u212aelvin.test]:587"},
		{Sender: "\u212aate@other.test", Host: "other.test"},
		{Sender: "x@\u212aelvin.test", Host: "other.test"},
	} {
		if c, ok := m.Lookup(q); ok {
			t.Errorf("Lookup(%+v) = %q, want no entry", q, c.User)
		}
	}
	if c, ok := m.Lookup(Query{Sender: "KATE@KELVIN.TEST", Host: "other.test"}); !ok || c.User != "kate" {
		t.Errorf("ASCII case folding lost: %q %v", c.User, ok)
	}
}
