package aliases

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, text string) *Table {
	t.Helper()
	tb, err := Parse(strings.NewReader(text), "aliases")
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestParse(t *testing.T) {
	t.Parallel()
	tb := parse(t, `# comment
postmaster: root
root:   alice, ops@example.com   
ops:    alice,
        bob@example.com
  # a comment inside an entry
	, carol
"web team": web@example.com
Mixed: "Jo Doe" <jo@example.com>, "|/usr/bin/procmail", /var/mail/archive

dup: first
dup: second
`)
	tests := []struct {
		name string
		want []string
	}{
		{"postmaster", []string{"root"}},
		{"ROOT", []string{"alice", "ops@example.com"}},
		{"ops", []string{"alice", "bob@example.com", "carol"}},
		{"web team", []string{"web@example.com"}},
		{"mixed", []string{`"Jo Doe" <jo@example.com>`, `"|/usr/bin/procmail"`, "/var/mail/archive"}},
		{"dup", []string{"first"}},
	}
	for _, tc := range tests {
		got, _, ok := tb.Lookup(tc.name)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	if _, src, _ := tb.Lookup("ops"); src != "aliases:4" {
		t.Errorf("ops source %q, want aliases:4", src)
	}
	if tb.Len() != 6 {
		t.Errorf("Len %d", tb.Len())
	}
	w := strings.Join(tb.Warnings(), "\n")
	for _, want := range []string{`aliases:9: alias "Mixed": target "\"|/usr/bin/procmail\"" is a program or file`, `aliases:12: duplicate alias "dup" ignored (first defined at aliases:11)`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"root alice\n", "aliases:1: missing ':'"},
		{"ok: a\nroot:\n", `aliases:2: alias "root" has no targets`},
		{"  root: x\n", "aliases:1: continuation line with no entry"},
		{": x\n", "aliases:1: empty alias name"},
		{"\"open: x\n", "unterminated quoted alias name"},
		{"a b: x\n", "blank space"},
		{"a: \"x\n", "unterminated double quote"},
		{"a: :include:relative.txt\n", "not an absolute path"},
		{"a: <x@y\n", "missing '>'"},
		{"a: -oQ@x\n", "starts with '-'"},
		{"a: x@\n", "empty local part or domain"},
		{"a: b\x00c\n", "NUL"},
		{"# ok\n\nx: y\nbad line\n", "aliases:4: missing ':'"},
	}
	for _, tc := range tests {
		_, err := Parse(strings.NewReader(tc.in), "aliases")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error with %q", tc.in, err, tc.want)
		}
	}
	long := "a: " + strings.Repeat("x", MaxLineLength+1) + "\n"
	if _, err := Parse(strings.NewReader(long), "aliases"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long line: %v", err)
	}
}

func TestParseFileMissing(t *testing.T) {
	t.Parallel()
	_, err := ParseFile(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staff := filepath.Join(dir, "staff.list")
	if err := os.WriteFile(staff, []byte("# staff\nsam@example.com, tia\n\numa@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "nested.list")
	if err := os.WriteFile(nested, []byte(":include:"+nested+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.list")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb := parse(t, `postmaster: root
root: admin@example.com, ops
ops: ops@example.net, root
self: self, copy@example.com
a: b
b: a
staff: :include:`+staff+`
tia: tia@example.org, Tia@Example.org
prog: |/usr/bin/something
mixedprog: |/bin/x, keep@example.com
nested: :include:`+nested+`
empty: :include:`+empty+`
missing: :include:`+filepath.Join(dir, "nope")+`
`)
	var warnings []string
	r := &Resolver{Aliases: tb, Domain: "example.org", LocalDomains: []string{"localhost", "host.example.org"},
		Warn: func(m string) { warnings = append(warnings, m) }}
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"bob@example.net", []string{"bob@example.net"}, ""},
		{"nobody", []string{"nobody@example.org"}, ""},
		{"postmaster", []string{"admin@example.com", "ops@example.net", "root@example.org"}, ""},
		{"Postmaster@LOCALHOST", []string{"admin@example.com", "ops@example.net", "root@example.org"}, ""},
		{"root@host.example.org", []string{"admin@example.com", "ops@example.net", "root@example.org"}, ""},
		{"root@example.org", []string{"root@example.org"}, ""}, // the relay domain is not local
		{"self", []string{"self@example.org", "copy@example.com"}, ""},
		{"a", []string{"a@example.org"}, ""},
		{"staff", []string{"sam@example.com", "tia@example.org", "uma@example.com"}, ""},
		{"prog", []string{"prog@example.org"}, ""},
		{"mixedprog", []string{"keep@example.com"}, ""},
		{"empty", []string{"empty@example.org"}, ""},
		{"nested", nil, "nested more than 10 deep"},
		{"missing", nil, "no such file"},
	}
	for _, tc := range tests {
		got, err := r.Resolve(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, "skipping program or file target \"|/usr/bin/something\"") {
		t.Errorf("warnings: %s", w)
	}
}

func TestResolveLimit(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("big: ")
	for i := 0; i < 30; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com")
	}
	r := &Resolver{Aliases: parse(t, b.String()+"\n"), Limit: 10}
	if _, err := r.Resolve("big"); !errors.Is(err, ErrLimit) {
		t.Errorf("limit: %v", err)
	}
	// A deep chain is refused rather than recursing without bound.
	var chain strings.Builder
	for i := 0; i < 150; i++ {
		chain.WriteString("n" + itoa(i) + ": n" + itoa(i+1) + "\n")
	}
	r = &Resolver{Aliases: parse(t, chain.String())}
	if _, err := r.Resolve("n0"); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep chain: %v", err)
	}
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

func TestResolveOpenHook(t *testing.T) {
	t.Parallel()
	tb := parse(t, "list: :include:/lists/x\n")
	r := &Resolver{Aliases: tb, Domain: "example.org", Open: func(p string) (io.ReadCloser, error) {
		if p != "/lists/x" {
			t.Errorf("opened %q", p)
		}
		return io.NopCloser(strings.NewReader("a@x.org\n")), nil
	}}
	got, err := r.Resolve("list")
	if err != nil || !reflect.DeepEqual(got, []string{"a@x.org"}) {
		t.Errorf("Resolve = %q, %v", got, err)
	}
}

// FuzzParse: no panic, and everything accepted can be looked up and
// expanded without error other than the documented ones.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"root: a, b@c\n", "a: b\n  c\n", "\"q q\": x\n", "x: :include:/dev/null\n", "a: b\nb: a\n",
		"# c\n\n", "a: \"|cmd, x\"\n", "a: <b@c>, \"d\" <e@f>\n", ": \n", "a:\n b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := Parse(strings.NewReader(s), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		r := &Resolver{Aliases: tb, Domain: "example.org", Open: func(string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("")), nil
		}}
		for _, name := range tb.Names() {
			if _, _, ok := tb.Lookup(name); !ok {
				t.Fatalf("name %q listed but not found", name)
			}
			addrs, err := r.Resolve(name)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if a == "" || strings.ContainsAny(a, "\r\n\x00") || strings.HasPrefix(a, "-") {
					t.Fatalf("bad address %q from %q", a, name)
				}
			}
		}
	})
}
