package wire

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReadReply(t *testing.T) {
	cases := []struct {
		name string
		in   string
		code int
		txt  []string
		err  string
	}{
		{"one line", "250 ok\r\n", 250, []string{"ok"}, ""},
		{"multi-line", "250-relay\r\n250-SIZE 10\r\n250 AUTH PLAIN\r\n", 250, []string{"relay", "SIZE 10", "AUTH PLAIN"}, ""},
		{"code only", "220\r\n", 220, []string{""}, ""},
		{"bare LF", "250 ok\n", 250, []string{"ok"}, ""},
		{"longest line", "250 " + strings.Repeat("x", MaxLineLen-6) + "\r\n", 250, []string{strings.Repeat("x", MaxLineLen-6)}, ""},
		{"most lines", strings.Repeat("250-x\r\n", MaxLines-1) + "250 x\r\n", 250, strings.Split(strings.Repeat("x ", MaxLines-1)+"x", " "), ""},
		{"code changed", "250-a\r\n251 b\r\n", 0, nil, "code changed"},
		{"short", "25\r\n", 0, nil, "malformed"},
		{"letters", "abc def\r\n", 0, nil, "malformed"},
		{"600", "600 x\r\n", 0, nil, "malformed"},
		{"199", "199 x\r\n", 0, nil, "malformed"},
		{"sign", "+25 x\r\n", 0, nil, "malformed"},
		{"bad separator", "250x\r\n", 0, nil, "malformed"},
		{"cut off", "250-a\r\n", 0, nil, io.ErrUnexpectedEOF.Error()},
		{"line too long", "250 " + strings.Repeat("x", MaxLineLen) + "\r\n", 0, nil, "size limits"},
		{"too many lines", strings.Repeat("250-x\r\n", MaxLines+1), 0, nil, "size limits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ReadReply(bufio.NewReaderSize(strings.NewReader(tc.in), 64))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil || r.Code != tc.code || !reflect.DeepEqual(r.Lines, tc.txt) {
				t.Fatalf("%+v %v, want %d %q", r, err, tc.code, tc.txt)
			}
		})
	}
	_, err := ReadReply(bufio.NewReader(strings.NewReader(strings.Repeat("250-x\r\n", MaxLines+1))))
	if !errors.Is(err, ErrTooLong) {
		t.Errorf("too many lines: %v, want ErrTooLong", err)
	}
}

func TestReplyForms(t *testing.T) {
	cases := []struct {
		raw          RawReply
		enh, text, s string
	}{
		{RawReply{550, []string{"5.1.1 <x@y>: no such user", "second"}}, "5.1.1", "<x@y>: no such user; second", "550 5.1.1 <x@y>: no such user; second"},
		{RawReply{250, []string{"2.0.0 a", "2.0.0 b"}}, "2.0.0", "a; 2.0.0 b", "250 2.0.0 a; 2.0.0 b"},
		{RawReply{220, []string{""}}, "", "", "220"},
		{RawReply{451, []string{"4.7.0x hi"}}, "", "4.7.0x hi", "451 4.7.0x hi"},
		{RawReply{421, []string{"4.4.2"}}, "4.4.2", "", "421 4.4.2"},
	}
	for _, tc := range cases {
		if e, x, s := tc.raw.Enhanced(), tc.raw.Text(), tc.raw.String(); e != tc.enh || x != tc.text || s != tc.s {
			t.Errorf("%+v: %q %q %q, want %q %q %q", tc.raw, e, x, s, tc.enh, tc.text, tc.s)
		}
	}
	for _, tc := range []struct {
		r    Reply
		want string
	}{
		{Reply{550, "5.1.1", "no"}, "550 5.1.1 no"},
		{Reply{550, "", "no"}, "550 no"},
		{Reply{0, "", "connect: refused"}, "connect: refused"},
		{Reply{0, "4.4.1", "timeout"}, "4.4.1 timeout"},
		{Reply{250, "", ""}, "250"},
		{Reply{}, ""},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
	e := RawReply{452, []string{"4.5.3 too many"}}.Err("RCPT")
	if e.Error() != "RCPT: 452 4.5.3 too many" || !e.Temporary() || e.Reply() != (Reply{452, "4.5.3", "too many"}) {
		t.Errorf("ReplyError %+v: %q temporary %v", e, e.Error(), e.Temporary())
	}
}

func TestEnhanced(t *testing.T) {
	for s, want := range map[string]bool{
		"5.1.1": true, "2.0.0": true, "4.7.123": true, "5.10.10": true,
		"3.0.0": false, "5.1": false, "5.1.1.1": false, "5..1": false, "5.1.1234": false, "5.a.1": false, "": false, "55.1.1": false,
	} {
		if IsEnhanced(s) != want {
			t.Errorf("IsEnhanced(%q) = %v", s, !want)
		}
	}
	if c, rest := SplitEnhanced("5.7.1 denied here"); c != "5.7.1" || rest != "denied here" {
		t.Errorf("SplitEnhanced = %q %q", c, rest)
	}
	if c, rest := SplitEnhanced("denied"); c != "" || rest != "denied" {
		t.Errorf("SplitEnhanced without code = %q %q", c, rest)
	}
}

func TestXtext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain@example.com", "plain@example.com"},
		{"a+b=c d", "a+2Bb+3Dc+20d"},
		{"a+b=c d\x01é", "a+2Bb+3Dc+20d+01+C3+A9"},
		{"", ""},
		{"~!", "~!"},
		{"\x7f\xff", "+7F+FF"},
	} {
		got := Xtext(tc.in)
		if got != tc.want {
			t.Errorf("Xtext(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := DecodeXtext(got)
		if err != nil || back != tc.in {
			t.Errorf("DecodeXtext(%q) = %q, %v, want %q", got, back, err, tc.in)
		}
	}
	if s, err := DecodeXtext("a+2bc"); err != nil || s != "a+c" {
		t.Errorf("lower-case hex: %q %v", s, err)
	}
	for _, bad := range []string{"a b", "a=b", "+", "+4", "+4G", "é"} {
		if s, err := DecodeXtext(bad); err == nil {
			t.Errorf("DecodeXtext(%q) = %q, want an error", bad, s)
		}
	}
}

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"line\r\nBcc: x", "line  Bcc: x"},
		{"tab\there", "tab here"},
		{"nul\x00bell\x07esc\x1b[2J", "nul?bell?esc?[2J"},
		{"del\x7f", "del?"},
		{"c1 \u009b31m", "c1 ?31m"},
		{"bad \xff utf-8", "bad ? utf-8"},
		{"grüße ✓", "grüße ✓"},
		{"", ""},
	} {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "220\r\n", "5", "250 2.0.0 Ok: queued as 0123456789AB\r\n", "250-a\r\n251 b\r\n", "999 x\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ReadReply(bufio.NewReaderSize(strings.NewReader(s), 16))
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > MaxLines {
			t.Fatalf("%q: %+v", s, r)
		}
		for _, l := range r.Lines {
			if len(l) > MaxLineLen || strings.ContainsAny(l, "\n") {
				t.Fatalf("%q: line %q", s, l)
			}
		}
		if e := r.Enhanced(); e != "" && !IsEnhanced(e) {
			t.Fatalf("%q: enhanced %q", s, e)
		}
		_ = r.String()
	})
}

func FuzzXtext(f *testing.F) {
	for _, s := range []string{"a+b=c d", "é", "", "+2B", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x := Xtext(s)
		for i := 0; i < len(x); i++ {
			if x[i] < '!' || x[i] > '~' || x[i] == '=' {
				t.Fatalf("Xtext(%q) = %q has octet %#x", s, x, x[i])
			}
		}
		back, err := DecodeXtext(x)
		if err != nil || back != s {
			t.Fatalf("round trip %q → %q → %q, %v", s, x, back, err)
		}
		if d, err := DecodeXtext(s); err == nil && !strings.Contains(s, "+") && Xtext(d) != s {
			t.Fatalf("DecodeXtext(%q) = %q re-encodes as %q", s, d, Xtext(d))
		}
	})
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"a\r\nb", "\x00\x7f\u009b", "\xff", "grüße"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) {
				t.Fatalf("Sanitize(%q) = %q keeps %U", s, out, r)
			}
		}
		if Sanitize(out) != out {
			t.Fatalf("Sanitize is not idempotent on %q", s)
		}
	})
}
