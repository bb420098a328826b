package aliases

import (
	"strings"
	"testing"
)

func TestGeneric(t *testing.T) {
	t.Parallel()
	g, err := ParseGeneric(strings.NewReader(`# sender rewriting
root@host.example.org   alerts@example.com
www-data                web@example.com
@host.example.org       fallback@example.com
@old.example.com        @new.example.com
Mixed@Case.example      lower@example.com
`), "generic")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr  string
		local bool
		want  string
		ok    bool
	}{
		{"root@host.example.org", true, "alerts@example.com", true},
		{"ROOT@Host.Example.Org", true, "alerts@example.com", true},
		{"www-data@host.example.org", true, "web@example.com", true},
		{"www-data@elsewhere.org", false, "www-data@elsewhere.org", false}, // bare-user pattern: local only
		{"cron@host.example.org", true, "fallback@example.com", true},
		{"jo@old.example.com", false, "jo@new.example.com", true},
		{"mixed@case.example", false, "lower@example.com", true},
		{"other@example.net", false, "other@example.net", false},
		{"", true, "", false},
	}
	for _, tc := range tests {
		got, ok := g.Rewrite(tc.addr, tc.local)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Rewrite(%q, %v) = %q, %v; want %q, %v", tc.addr, tc.local, got, ok, tc.want, tc.ok)
		}
	}
	if g.Len() != 5 {
		t.Errorf("Len %d", g.Len())
	}
	var nilMap *Generic
	if a, ok := nilMap.Rewrite("x@y", true); ok || a != "x@y" {
		t.Errorf("nil map rewrote")
	}
}

func TestGenericErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"root\n", "generic:1: expected PATTERN RESULT, found 1 fields"},
		{"a b c\n", "found 3 fields"},
		{"a@b@c x@y\n", "more than one '@'"},
		{"a@ x@y\n", "empty domain"},
		{"a x\n", "not user@domain or @domain"},
		{"a -x@y\n", "starts with '-'"},
		{"a @\n", "not @domain"},
		{"a x@y\nA z@y\n", `generic:2: pattern "A" already given at generic:1`},
		{"a <x@y>\n", "contains"},
	}
	for _, tc := range tests {
		_, err := ParseGeneric(strings.NewReader(tc.in), "generic")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseGeneric(%q) = %v, want error with %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseGeneric(f *testing.F) {
	for _, s := range []string{"a@b c@d\n", "@x @y\n", "u r@s\n  \n", "# c\n"} {
		f.Add(s, "u@x")
	}
	f.Fuzz(func(t *testing.T, s, addr string) {
		g, err := ParseGeneric(strings.NewReader(s), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		out, ok := g.Rewrite(addr, true)
		if ok && (out == "" || strings.ContainsAny(out, " \r\n\x00<>")) && !strings.ContainsAny(addr, " \r\n\x00<>") {
			t.Fatalf("Rewrite(%q) = %q", addr, out)
		}
	})
}
