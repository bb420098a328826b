package submit

import (
	"errors"
	"testing"
)

func TestQuoteLocal(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a@example.net", "a@example.net"},
		{"first.last+tag@example.net", "first.last+tag@example.net"},
		{"john doe@example.net", `"john doe"@example.net`},
		{"x@y@example.net", `"x@y"@example.net`},
		{`a"b@example.net`, `"a\"b"@example.net`},
		{`j\xrg@example.net`, `"j\\xrg"@example.net`},
		{".lead@example.net", `".lead"@example.net`},
		{"a..b@example.net", `"a..b"@example.net`},
		{"jörg@example.net", "jörg@example.net"},
		{"postmaster", "postmaster"},
		{"", ""},
	} {
		if got := QuoteLocal(tc.in); got != tc.want {
			t.Errorf("QuoteLocal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"quoted"@example.net`, "quoted@example.net"},
		{`"john doe"@example.net`, `"john doe"@example.net`},
		{`"x@y"@example.net`, `"x@y"@example.net`},
		{`"a\"b"@example.net`, `"a\"b"@example.net`},
		{`"j\xrg"@example.net`, "jxrg@example.net"},
		{`"bare"`, "bare"},
		{"plain@example.net", "plain@example.net"},
		{`"a"b@example.net`, `"a"b@example.net`},
	} {
		if got := Canonical(tc.in); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckWrittenLocal(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"a@example.net", true}, {`"john doe"@example.net`, true}, {`"x@y"@example.net`, true},
		{`j\xrg@example.net`, false}, {"a(b@example.net", false}, {"jörg@example.net", true}, {"root", true},
	} {
		err := CheckWrittenLocal(tc.in)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrUnquotedSpecial) {
			t.Errorf("CheckWrittenLocal(%q) = %v", tc.in, err)
		}
	}
}

// FuzzQuoteLocal: the result's local part is a Dot-string or a quoted
// string that unquotes to the input's local part.
func FuzzQuoteLocal(f *testing.F) {
	f.Add("john doe@example.net")
	f.Add(`a"\b@x`)
	f.Fuzz(func(t *testing.T, addr string) {
		q := QuoteLocal(addr)
		if q == addr {
			return
		}
		at := len(q)
		for i := len(q) - 1; i >= 0; i-- {
			if q[i] == '@' {
				at = i
				break
			}
		}
		local := q[:at]
		if len(local) < 2 || local[0] != '"' || local[len(local)-1] != '"' {
			t.Fatalf("%q -> %q: not quoted", addr, q)
		}
		var un []byte
		for i := 1; i < len(local)-1; i++ {
			if local[i] == '\\' {
				i++
			} else if local[i] == '"' {
				t.Fatalf("%q -> %q: unescaped quote", addr, q)
			}
			un = append(un, local[i])
		}
		if string(un)+q[at:] != addr {
			t.Fatalf("%q -> %q unquotes to %q", addr, q, un)
		}
	})
}
