package sendmail

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"alice@example.com", []string{"alice@example.com"}, ""},
		{"root", []string{"root"}, ""},
		{"a@x.org, b@y.org", []string{"a@x.org", "b@y.org"}, ""},
		{`"Bob B." <bob@example.com>`, []string{"bob@example.com"}, ""},
		{`Bob <bob@example.com>, carol@example.com (Carol C.)`, []string{"bob@example.com", "carol@example.com"}, ""},
		{`(comment (nested) \) x) dan@example.com`, []string{"dan@example.com"}, ""},
		{"undisclosed-recipients:;", nil, ""},
		{"team: dan@example.com, eve;, frank@x.org", []string{"dan@example.com", "eve", "frank@x.org"}, ""},
		{"<@relay.example:fred@example.com>", []string{"fred@example.com"}, ""},
		{`"john doe"@example.com`, []string{`"john doe"@example.com`}, ""},
		{`"x@y"@example.net`, []string{`"x@y"@example.net`}, ""},
		{`"a\"b"@example.net`, []string{`"a\"b"@example.net`}, ""},
		{`j\xrg@example.net`, nil, "must be quoted"},
		{`a[b@example.net`, nil, "must be quoted"},
		{"bad<x>@example.net", nil, "after <x>"},
		{"<x@example.net> trailing", nil, "after <x@example.net>"},
		{"<x@example.net> (comment), y@example.net", []string{"x@example.net", "y@example.net"}, ""},
		{`"a,b" <ab@example.com>`, []string{"ab@example.com"}, ""},
		{"user @ example . com", []string{"user@example.com"}, ""},
		{"a@x.org,,b@y.org,", []string{"a@x.org", "b@y.org"}, ""},
		{"a@x.org; b@y.org", []string{"a@x.org", "b@y.org"}, ""},
		{"  \t ", nil, ""},
		{"<>", nil, ""},
		{"Joe Bloggs", nil, "blank space"},
		{"<a@x.org", nil, "unterminated '<'"},
		{"a@x.org>", nil, "unbalanced '>'"},
		{`"open`, nil, "unterminated quoted"},
		{"(open", nil, "unterminated comment"},
		{"a@x.org)", nil, "unbalanced ')'"},
		{"<a<b>>", nil, "nested"},
		{"a\x01b@x.org", nil, "control character"},
		{"@x.org", nil, "empty local part"},
		{strings.Repeat("a", 250) + "@x.org", nil, "longer than"},
	}
	for _, tc := range tests {
		got, err := ParseAddressList(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAddressList(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseAddressList(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseAddressList: no panic; every address returned is non-empty,
// has no control character, no unquoted blank, and fits the length limit.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"a@b", `"x y" <a@b>, c (d)`, "g: a, b;", "<@r:a@b>", "(((", `"\"`, "a\r\nb", "<<>>", ",,;:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := ParseAddressList(s)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if a == "" || len(a) > maxAddressLen {
				t.Fatalf("bad address %q from %q", a, s)
			}
			if err := checkAddr(a); err != nil {
				t.Fatalf("returned address %q fails its own check: %v", a, err)
			}
			if strings.ContainsAny(a, "\r\n\x00") {
				t.Fatalf("control character in %q", a)
			}
		}
	})
}
