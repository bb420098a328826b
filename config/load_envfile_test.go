package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Assignment
	}{
		{"empty", "", nil},
		{"blank and comments", "\n  \n# c\n  ; c2\n", nil},
		{"simple", "A=b\n", []Assignment{{"A", "b", 1}}},
		{"no final newline", "A=b", []Assignment{{"A", "b", 1}}},
		{"blanks around", "  A  =  b c  \n", []Assignment{{"A", "b c", 1}}},
		{"empty value", "A=\nB=x", []Assignment{{"A", "", 1}, {"B", "x", 2}}},
		{"no trailing comment", "A=a # b\n", []Assignment{{"A", "a # b", 1}}},
		{"export prefix", "export A=1\nexport\tB=2\n", []Assignment{{"A", "1", 1}, {"B", "2", 2}}},
		{"key named export", "export=1\n", []Assignment{{"export", "1", 1}}},
		{"single quotes literal", `A='x \n "y" $z'`, []Assignment{{"A", `x \n "y" $z`, 1}}},
		{"double quote escapes", `A="a\"b\\c\$d\` + "`" + `e\nf"`, []Assignment{{"A", `a"b\c$d` + "`" + `e\nf`, 1}}},
		{"double keeps trailing blank", `A=" x "`, []Assignment{{"A", " x ", 1}}},
		{"quoted pieces join", `A="a b" 'c'd`, []Assignment{{"A", "a bcd", 1}}},
		{"quotes literal mid value", `A=a"b"`, []Assignment{{"A", `a"b"`, 1}}},
		{"unquoted escape", `A=a\ \#b\\`, []Assignment{{"A", `a #b\`, 1}}},
		{"continuation", "A=one \\\ntwo\nB=3\n", []Assignment{{"A", "one two", 1}, {"B", "3", 3}}},
		{"continuation in double", "A=\"one\\\ntwo\"\nB=3", []Assignment{{"A", "onetwo", 1}, {"B", "3", 3}}},
		{"multi-line single", "A='l1\nl2'\nB=3", []Assignment{{"A", "l1\nl2", 1}, {"B", "3", 3}}},
		{"crlf", "A=1\r\nB=2\r\n", []Assignment{{"A", "1", 1}, {"B", "2", 2}}},
		{"comment continuation does not continue (systemd >= 254)", "# a \\\nA=1\n", []Assignment{{"A", "1", 2}}},
		{"later wins kept in order", "A=1\nA=2\n", []Assignment{{"A", "1", 1}, {"A", "2", 2}}},
		{"equals in value", "A=b=c\n", []Assignment{{"A", "b=c", 1}}},
		{"utf8", "A=grüße\n", []Assignment{{"A", "grüße", 1}}},
		{"lowercase key", "a_b1=x\n", []Assignment{{"a_b1", "x", 1}}},
		{"escape at eof", `A=x\`, []Assignment{{"A", "x", 1}}},
		{"byte order mark", "\xef\xbb\xbfA=1\n", []Assignment{{"A", "1", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(strings.NewReader(tt.in), "f.env")
			if err != nil {
				t.Fatalf("ParseEnvFile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"no equals", "A=1\nB\n", 2, `expected KEY=VALUE, found "B"`},
		{"no equals at eof", "A=1\n\nsomething", 3, `expected KEY=VALUE, found "something"`},
		{"bad name", "A=1\n1A=2\n", 2, `invalid variable name "1A"`},
		{"space in name", "A B=2\n", 1, `invalid variable name "A B"`},
		{"dash in name", "A-B=2\n", 1, `invalid variable name "A-B"`},
		{"empty name", "=2\n", 1, `invalid variable name ""`},
		{"unterminated double", "A=1\nB=\"abc\nC=3\n", 2, "unterminated quote in the value of B"},
		{"unterminated single", "A='abc", 1, "unterminated quote in the value of A"},
		{"nul", "A=1\nB=a\x00b\n", 2, "NUL byte"},
		{"bad utf8", "A=1\nB=\xff\n", 2, "the value of B is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEnvFile(strings.NewReader(tt.in), "/etc/x.env")
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SyntaxError", err)
			}
			if se.File != "/etc/x.env" || se.Line != tt.line || se.Msg != tt.msg {
				t.Errorf("got %q, want /etc/x.env:%d: %s", err, tt.line, tt.msg)
			}
		})
	}
}

// FuzzParseEnvFile checks that the parser never panics, that every result
// has a valid name and a 1-based line, and that Quote round-trips every
// value it produces.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{
		"A=b\n", "A='x\ny'\n", `A="a\"b\\c"`, "A=a\\\nb", "# c\n;d\nexport A=1",
		"A=\"unterminated", "A B=c", "A=1\r\nB=2", `A="x" 'y'z`, "A=\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		as, err := ParseEnvFile(strings.NewReader(in), "fuzz")
		// ParseEnvFileLines agrees where the file is clean, and
		// otherwise skips at least one line, each with a line number
		// in the file, and keeps only valid assignments.
		las, bad, lerr := ParseEnvFileLines(strings.NewReader(in), "fuzz")
		if lerr != nil {
			t.Fatalf("ParseEnvFileLines: %v", lerr)
		}
		if err == nil && (len(bad) != 0 || !reflect.DeepEqual(nonNil(las), nonNil(as))) {
			t.Fatalf("clean file: ParseEnvFileLines %#v %#v, ParseEnvFile %#v", las, bad, as)
		}
		if err != nil && len(bad) == 0 {
			t.Fatalf("ParseEnvFile: %v; ParseEnvFileLines skipped nothing", err)
		}
		lines := strings.Count(strings.ReplaceAll(in, "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(in, "\r\n", ""), "\r") + 1
		for _, b := range bad {
			if b.Err.Line < 1 || b.Err.Line > lines || b.Err.File != "fuzz" {
				t.Fatalf("skipped line %d of %d: %v", b.Err.Line, lines, b.Err)
			}
		}
		for _, a := range las {
			if !validEnvName(a.Key) || a.Line < 1 || a.Line > lines || !utf8.ValidString(a.Value) {
				t.Fatalf("bad assignment %#v", a)
			}
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.File != "fuzz" {
				t.Fatalf("error %v is not a *SyntaxError with a line", err)
			}
			return
		}
		prev := 0
		for _, a := range as {
			if !validEnvName(a.Key) || a.Line < prev {
				t.Fatalf("bad assignment %#v", a)
			}
			prev = a.Line
			back, err := ParseEnvFile(strings.NewReader("K="+Quote(a.Value)+"\n"), "q")
			if err != nil {
				t.Fatalf("Quote(%q) = %q does not parse: %v", a.Value, Quote(a.Value), err)
			}
			if len(back) != 1 || back[0].Value != a.Value {
				t.Fatalf("Quote(%q) = %q reads back as %#v", a.Value, Quote(a.Value), back)
			}
		}
	})
}

// FuzzScanTag checks scanTag against reflect.StructTag.Get for the keys
// Load reads, on well-formed tags.
func FuzzScanTag(f *testing.F) {
	f.Add(`envconfig:"SPOOL" default:"/var/spool/relayq/queue.db" desc:"bbolt spool file"`)
	f.Add(`envconfig:"X" secret:"true" required:"true" ignored:"false"`)
	f.Add(`default:"a\"b\\c" envconfig:"Q"`)
	f.Add(`json:"x,omitempty" envconfig:"J"`)
	f.Add(`bad tag`)
	f.Fuzz(func(t *testing.T, tag string) {
		got := scanTag(reflect.StructTag(tag))
		// reflect's lookup is the reference wherever the whole tag is
		// well-formed (scanTag stops at a fault; reflect may skip on).
		if !wellFormed(tag) {
			return
		}
		for _, k := range []string{"envconfig", "default", "secret", "required", "ignored"} {
			want, ok := reflect.StructTag(tag).Lookup(k)
			g, gok := got[k]
			if ok != gok || want != g {
				t.Fatalf("tag %q key %s: scanTag %q,%v; reflect %q,%v", tag, k, g, gok, want, ok)
			}
		}
	})
}

// wellFormed reports whether every pair of tag parses as reflect expects.
func wellFormed(tag string) bool {
	if !utf8.ValidString(tag) { // Go source, hence every tag, is UTF-8
		return false
	}
	for tag != "" {
		i := 0
		for i < len(tag) && tag[i] == ' ' {
			i++
		}
		tag = tag[i:]
		if tag == "" {
			return true
		}
		i = 0
		for i < len(tag) && tag[i] > ' ' && tag[i] != ':' && tag[i] != '"' && tag[i] != 0x7f {
			i++
		}
		if i == 0 || i+1 >= len(tag) || tag[i] != ':' || tag[i+1] != '"' {
			return false
		}
		tag = tag[i+1:]
		i = 1
		for i < len(tag) && tag[i] != '"' {
			if tag[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(tag) {
			return false
		}
		if _, err := strconv.Unquote(tag[:i+1]); err != nil {
			return false
		}
		tag = tag[i+1:]
	}
	return true
}

func nonNil(as []Assignment) []Assignment {
	if as == nil {
		return []Assignment{}
	}
	return as
}

// TestParseEnvFileLines: a line with a syntax error is skipped, named with
// its line and key, and the lines around it still apply.
func TestParseEnvFileLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		keys string // the assignments kept, "KEY=value;..."
		bad  string // the skipped lines, "line:KEY;..."
	}{
		{"clean", "A=1\nB=2\n", "A=1;B=2;", ""},
		{"no equals", "A=1\nRELAYQ_TLS verify\nB=2\n", "A=1;B=2;", "2:RELAYQ_TLS;"},
		{"bad name", "A=1\nRELAYQ-TLS=x\r\nB=2", "A=1;B=2;", "2:RELAYQ;"},
		{"export and lower case", "  export relayq_spool /x\nB=2\n", "B=2;", "1:RELAYQ_SPOOL;"},
		{"unterminated quote", "A=1\nRELAYQ_RELAYHOST=\"[x]:587\nB=2\n", "A=1;B=2;", "2:RELAYQ_RELAYHOST;"},
		{"nul", "A=1\nB=\x00\nC=3", "A=1;C=3;", "2:B;"},
		{"utf-8", "A=\xff\nB=2", "B=2;", "1:A;"},
		{"two bad lines", "x\ny\nB=2", "B=2;", "1:X;2:Y;"},
		{"bad last line", "B=2\n=oops", "B=2;", "2:;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, bad, err := ParseEnvFileLines(strings.NewReader(tt.in), "f.env")
			if err != nil {
				t.Fatal(err)
			}
			var keys, lines strings.Builder
			for _, a := range as {
				fmt.Fprintf(&keys, "%s=%s;", a.Key, a.Value)
			}
			for _, b := range bad {
				fmt.Fprintf(&lines, "%d:%s;", b.Err.Line, b.Key)
			}
			if keys.String() != tt.keys || lines.String() != tt.bad {
				t.Errorf("kept %q skipped %q, want %q and %q", keys.String(), lines.String(), tt.keys, tt.bad)
			}
		})
	}
}
