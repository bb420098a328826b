package sendmail

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestReadHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		dots      bool
		fields    []string // names
		firstBody string
		blank     bool
		ended     bool
	}{
		{"simple", "A: 1\nB: 2\n\nbody", false, []string{"A", "B"}, "", true, false},
		{"continuation", "A: 1\n  more\n\tmore\nB: 2\n\n", false, []string{"A", "B"}, "", true, false},
		{"non-header ends", "A: 1\nnot a header\n", false, []string{"A"}, "not a header", false, false},
		{"leading blank line", "\nbody", false, nil, "", true, false},
		{"leading continuation", " x\nA: 1\n", false, nil, " x", false, false},
		{"mbox From_", "From x Sun Nov 22 2026\nA: 1\n\n", false, []string{"A"}, "", true, false},
		{"From_ only first", "A: 1\nFrom x y\n", false, []string{"A"}, "From x y", false, false},
		{"obsolete blank before colon", "Subject : x\n\n", false, []string{"Subject"}, "", true, false},
		{"dot ends", "A: 1\n.\nB: 2\n", false, []string{"A"}, "", false, true},
		{"dot kept with -i", "A: 1\n.\n", true, []string{"A"}, ".", false, false},
		{"eof", "A: 1", false, []string{"A"}, "", false, true},
		{"colon first", ": x\n", false, nil, ": x", false, false},
		{"space in name", "Bad Name: x\n", false, nil, "Bad Name: x", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := readHeader(newLineReader(strings.NewReader(tc.in)), tc.dots, 1024)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range h.fields {
				names = append(names, f.name)
			}
			if strings.Join(names, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("fields %q, want %q", names, tc.fields)
			}
			if string(h.firstBody) != tc.firstBody || h.blank != tc.blank || h.ended != tc.ended {
				t.Errorf("firstBody %q blank %v ended %v; want %q %v %v", h.firstBody, h.blank, h.ended, tc.firstBody, tc.blank, tc.ended)
			}
		})
	}
}

func TestFieldValue(t *testing.T) {
	t.Parallel()
	h, err := readHeader(newLineReader(strings.NewReader("To: a@x.org,\n  b@y.org\nSubject:   hi  \n\n")), false, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if v := h.fields[0].value(); v != "a@x.org,  b@y.org" {
		t.Errorf("To value %q", v)
	}
	if v := h.fields[1].value(); v != "hi" {
		t.Errorf("Subject value %q", v)
	}
}

func TestLineRules(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a\nb\n", "a|b|"},
		{"a\r\nb\r\n", "a|b|"},
		{"a\rb\n", "a b|"},
		{"a\r\r\n", "a |"},
		{"a\x00b\n", "ab|"},
		{"no newline", "no newline|"},
		{"\r", " |"},
		{"", ""},
	}
	for _, tc := range tests {
		lr := newLineReader(strings.NewReader(tc.in))
		var b strings.Builder
		for {
			p, complete, err := lr.next(MaxLine)
			if err != nil {
				break
			}
			b.Write(p)
			if complete {
				b.WriteString("|")
			}
		}
		if b.String() != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

// TestCRAtBufferEdge puts a CRLF across the bufio buffer boundary.
func TestCRAtBufferEdge(t *testing.T) {
	t.Parallel()
	for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1} {
		in := strings.Repeat("x", n) + "\r\nnext\r\n"
		var out bytes.Buffer
		if err := copyBody(&out, newLineReader(strings.NewReader(in)), true); err != nil {
			t.Fatal(err)
		}
		checkWire(t, append([]byte("\r\n"), out.Bytes()...)) // a body: no header
		if !strings.HasSuffix(out.String(), "x\r\nnext\r\n") || strings.Contains(out.String(), " ") {
			t.Errorf("n=%d: CRLF across the buffer edge mangled: ...%q", n, tail(out.Bytes()))
		}
	}
}

func TestFolding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		lines int
	}{
		{"Subject: short", 1},
		{"Subject: " + strings.Repeat("w ", 600), 2},
		{"X: " + strings.Repeat("y", 3000), 5},
		{"X: " + strings.Repeat("é", 1500), 5},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		writeFolded(&b, []byte(tc.in))
		checkWire(t, b.Bytes())
		out := b.String()
		if n := strings.Count(out, "\r\n"); n != tc.lines {
			t.Errorf("%.20q...: %d lines, want %d", tc.in, n, tc.lines)
		}
		for i, l := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if i > 0 && l[0] != ' ' && l[0] != '\t' {
				t.Errorf("continuation line %d does not start with blank space", i)
			}
		}
		// Unfolding gives back the text (plus the inserted spaces of hard breaks).
		unfolded := strings.ReplaceAll(out, "\r\n", "")
		if strings.ReplaceAll(unfolded, " ", "") != strings.ReplaceAll(tc.in, " ", "") {
			t.Errorf("%.20q...: unfolding loses text", tc.in)
		}
	}
}

// FuzzIntake feeds arbitrary input through the whole intake (header
// parser, line rules, folding, completion) and checks what is queued:
// CRLF only, no bare CR/LF or NUL, lines of at most 998 octets, the
// required headers present, no Bcc.
func FuzzIntake(f *testing.F) {
	for _, s := range []string{
		"Subject: x\n\nbody\n",
		"To: a@b\nBcc: c@d\n\n.\n",
		"From x\nA: 1\n b\n\n\r\x00\r\n",
		"Subject: " + strings.Repeat("ab ", 400) + "\n\n" + strings.Repeat("z", 2000),
		"Resent-To: r@x\nTo: t@x\n\n",
		": bad\n",
		"A\rB: c\n\n",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, extract bool) {
		q := &fakeQueue{}
		o, _, _ := testOptions(q, in)
		args := []string{"-i", "fallback@example.net"}
		if extract {
			args = []string{"-t"}
		}
		code := Main(context.Background(), o, args)
		if code != ExitOK {
			if code != ExitDataErr {
				t.Fatalf("exit %d for %q", code, in)
			}
			return
		}
		body := q.msgs[0].body
		checkWire(t, body)
		hdr := string(body)
		if i := strings.Index(hdr, "\r\n\r\n"); i >= 0 {
			hdr = hdr[:i+2]
		}
		low := "\r\n" + strings.ToLower(hdr)
		for _, h := range []string{"from:", "date:", "message-id:"} {
			if !strings.Contains(low, "\r\n"+h) {
				t.Fatalf("no %s header in %q", h, hdr)
			}
		}
		for _, h := range []string{"bcc:", "resent-bcc:", "return-path:", "content-length:"} {
			if strings.Contains(low, "\r\n"+h) {
				t.Fatalf("%s header kept in %q", h, hdr)
			}
		}
	})
}
