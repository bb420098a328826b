package authinfo

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSendmailFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line                string
		user, authid, pass, realm string
		mechs                     string
	}{
		{"all fields", `AuthInfo:h "U:user" "I:authid" "P:secret" "R:realm" "M:PLAIN LOGIN"`, "user", "authid", "secret", "realm", "PLAIN LOGIN"},
		{"U stands for I", `AuthInfo:h "U:user" "P:secret"`, "user", "user", "secret", "", ""},
		{"I stands for U", `AuthInfo:h "I:authid" "P:secret"`, "authid", "authid", "secret", "", ""},
		{"P= is base64", `AuthInfo:h "U:user" "P=c2VjcmV0"`, "user", "user", "secret", "", ""},
		{"U= is base64 too", `AuthInfo:h "U=dXNlcg==" "P:secret"`, "user", "user", "secret", "", ""},
		{"fields in any order", `AuthInfo:h "M:cram-md5" "P:secret" "U:user"`, "user", "user", "secret", "", "CRAM-MD5"},
		{"spaces and colons in the password", `AuthInfo:h "U:user" "P:a b:c"`, "user", "user", "a b:c", "", ""},
		{"backslash escapes a quote", `AuthInfo:h "U:user" "P:a\"b\\c"`, "user", "user", `a"b\c`, "", ""},
		{"adjacent quoted fields", `AuthInfo:h "U:user""P:secret"`, "user", "user", "secret", "", ""},
		{"tabs between fields", "AuthInfo:h\t\"U:user\"\t\"P:secret\"", "user", "user", "secret", "", ""},
		{"lower-case field letters", `AuthInfo:h "u:user" "p:secret"`, "user", "user", "secret", "", ""},
		{"lower-case key prefix", `authinfo:h "U:user" "P:secret"`, "user", "user", "secret", "", ""},
		{"mechanisms deduplicated, commas", `AuthInfo:h "U:u" "P:p" "M:PLAIN,plain  LOGIN"`, "u", "u", "p", "", "PLAIN LOGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.line+"\n")
			c, ok := m.Lookup(Query{Host: "h"})
			if !ok {
				t.Fatal("no entry")
			}
			if c.User != tt.user || c.AuthID != tt.authid || c.Password.Reveal() != tt.pass || c.Realm != tt.realm || strings.Join(c.Mechs, " ") != tt.mechs {
				t.Errorf("got user %q authid %q pass %q realm %q mechs %q", c.User, c.AuthID, c.Password.Reveal(), c.Realm, strings.Join(c.Mechs, " "))
			}
			if tt.mechs == "" && c.Mechs != nil {
				t.Errorf("Mechs = %q, want nil (any)", c.Mechs)
			}
		})
	}
}

func TestParsePostfixValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		q          Query
		user, pass string
	}{
		{"password with colons splits at the first", "smtp.example.com user:pa:ss:word\n", Query{Host: "smtp.example.com"}, "user", "pa:ss:word"},
		{"user with @", "smtp.example.com me@example.com:pw\n", Query{Host: "smtp.example.com"}, "me@example.com", "pw"},
		{"inner spaces kept, outer dropped", "smtp.example.com \t user:pass word \t\n", Query{Host: "smtp.example.com"}, "user", "pass word"},
		{"CRLF line ends", "smtp.example.com user:pw\r\n", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"no final newline", "smtp.example.com user:pw", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"continuation line", "smtp.example.com\n  user:pw\n", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"continuation over a comment and a blank line", "smtp.example.com\n# note\n\n\tuser:pw\n", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"continuation keeps the value's white space", "smtp.example.com user:pass\n word\n", Query{Host: "smtp.example.com"}, "user", "pass word"},
		{"# inside a value is text", "smtp.example.com user:pw#1\n", Query{Host: "smtp.example.com"}, "user", "pw#1"},
		{"indented comment", "   # comment\nsmtp.example.com user:pw\n", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"key case folded", "SMTP.Example.Com user:pw\n", Query{Host: "smtp.example.com"}, "user", "pw"},
		{"IPv6 next hop", "[ipv6:2001:db8::1]:587 user:pw\n", Query{Host: "2001:db8::1", NextHop: "[ipv6:2001:db8::1]:587"}, "user", "pw"},
		{"service name port", "[smtp.example.com]:submission user:pw\n", Query{Host: "x", NextHop: "[smtp.example.com]:submission"}, "user", "pw"},
		{"bracketed host without port", "[smtp.example.com] user:pw\n", Query{Host: "x", NextHop: "[smtp.example.com]"}, "user", "pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.text)
			c, ok := m.Lookup(tt.q)
			if !ok || c.User != tt.user || c.Password.Reveal() != tt.pass {
				t.Errorf("got %q %q %v, want %q %q", c.User, c.Password.Reveal(), ok, tt.user, tt.pass)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	m := mustParse(t, "# only comments\n\n   \n")
	if m.Len() != 0 || m.Format() != FormatEmpty {
		t.Errorf("len %d format %v", m.Len(), m.Format())
	}
	if _, ok := m.Lookup(Query{Host: "h", Sender: "a@b"}); ok {
		t.Error("empty map matched")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rS3cret"
	tests := []struct {
		name, text string
		line       int
		want       string // substring of the message
	}{
		{"sendmail: no password", `AuthInfo:h "U:u"`, 1, "no password"},
		{"sendmail: no user", `AuthInfo:h "P:` + secret + `"`, 1, "no user"},
		{"sendmail: empty password", `AuthInfo:h "U:u" "P:"`, 1, "field P: empty value"},
		{"sendmail: bad base64", `AuthInfo:h "U:u" "P=` + secret + `!"`, 1, "not valid base64"},
		{"sendmail: unknown field", `AuthInfo:h "U:u" "X:` + secret + `"`, 1, "unknown field letter"},
		{"sendmail: field twice", `AuthInfo:h "U:u" "P:a" "P:` + secret + `"`, 1, "field P given twice"},
		{"sendmail: unquoted field", `AuthInfo:h U:u P:` + secret, 1, "expected a quoted field"},
		{"sendmail: missing closing quote", `AuthInfo:h "U:u" "P:` + secret, 1, "missing closing quote"},
		{"sendmail: junk after quote", `AuthInfo:h "U:u" "P:x"` + secret, 1, "white space after the closing quote"},
		{"sendmail: field without colon", `AuthInfo:h "U:u" "P` + secret + `"`, 1, `expected "X:value"`},
		{"sendmail: Kelvin sign in key", "AuthInfo:exampl\u212a.com \"U:u\" \"P:" + secret + "\"", 1, "non-ASCII"},
		{"postfix: Kelvin sign in host key", "smtp.exampl\u212a.com u:" + secret, 1, "non-ASCII"},
		{"postfix: Kelvin sign in sender key", "\u212aate@example.com u:" + secret, 1, "non-ASCII"},
		{"postfix: Kelvin sign in sender domain", "@exampl\u212a.com u:" + secret, 1, "non-ASCII"},
		{"sendmail: port in key", `AuthInfo:relay.example.com:587 "U:u" "P:` + secret + `"`, 1, "never carry a port"},
		{"sendmail: brackets in key", `AuthInfo:[192.0.2.1] "U:u" "P:` + secret + `"`, 1, "without brackets"},
		{"sendmail: bad host", `AuthInfo:a/b "U:u" "P:` + secret + `"`, 1, "host name, an IP address"},
		{"sendmail: bad IPv6", `AuthInfo:IPv6:` + secret + ` "U:u" "P:x"`, 1, "IPv6 address"},
		{"sendmail: bad mechanism", `AuthInfo:h "U:u" "P:x" "M:PL@IN"`, 1, "not a SASL mechanism name"},
		{"sendmail: password with only OAuth mechanisms", `AuthInfo:h "U:u" "P:` + secret + `" "M:XOAUTH2"`, 1, "only OAuth mechanisms"},
		{"sendmail: key without value", "AuthInfo:h", 1, "expected a key and a value"},
		{"postfix: no colon", "smtp.example.com " + secret, 1, "no ':' found"},
		{"postfix: empty user", "smtp.example.com :" + secret, 1, "empty user name"},
		{"postfix: empty password", "smtp.example.com user:", 1, "empty password"},
		{"postfix: key alone", secret + "\n", 1, "expected a key and a value"},
		{"postfix: unclosed bracket", "[smtp.example.com:587 u:" + secret, 1, "'[' without ']'"},
		{"postfix: bad port", "[smtp.example.com]:99999 u:" + secret, 1, "expected :port"},
		{"postfix: junk after bracket", "[smtp.example.com]x u:" + secret, 1, "expected :port"},
		{"postfix: bare IPv6 with port", "2001:db8::1:587x u:" + secret, 1, "IPv6 addresses go in brackets"},
		{"postfix: bad sender domain", "user@ u:" + secret, 1, "not a domain name"},
		{"postfix: bad host", "smtp/example u:" + secret, 1, "expected a host name"},
		{"continuation at the start", "  " + secret + "\nh u:p", 1, "continues the previous entry"},
		{"duplicate key", "h u:p\n\nH u2:" + secret, 3, "duplicate key: line 1"},
		{"duplicate sendmail key (IPv6 spellings)", "AuthInfo:2001:db8::1 \"U:u\" \"P:p\"\nAuthInfo:IPv6:2001:DB8:0::1 \"U:u\" \"P:" + secret + "\"", 2, "duplicate key: line 1"},
		{"mixed syntax", "h u:p\nAuthInfo:h \"U:u\" \"P:" + secret + "\"", 2, "sendmail authinfo entry in a file whose line 1 is Postfix sasl_passwd syntax"},
		{"mixed syntax, other way", "AuthInfo:h \"U:u\" \"P:p\"\nh u:" + secret, 2, "Postfix sasl_passwd entry in a file whose line 1 is sendmail authinfo syntax"},
		{"NUL byte", "h u:" + secret + "\x00", 1, "NUL byte"},
		{"line number counts comments and blanks", "# c\n\nh u:p\n# c\nbad/key u:" + secret, 5, "expected a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.text), "/etc/relayq/authinfo")
			if err == nil {
				t.Fatal("no error")
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if se.File != "/etc/relayq/authinfo" || se.Line != tt.line {
				t.Errorf("error at %s:%d, want line %d: %v", se.File, se.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "/etc/relayq/authinfo:") {
				t.Errorf("error %q does not start with file:line", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("# padding padding padding padding\n", MaxFileSize/30)
	if _, err := Parse(strings.NewReader(big), "f"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}
