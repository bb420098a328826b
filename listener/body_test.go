package listener

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNormalizer(t *testing.T) {
	tests := []struct {
		name, in, want string
		maxHeader      int
		err            error
	}{
		{"crlf kept", "A: b\r\n\r\nbody\r\n", "A: b\r\n\r\nbody\r\n", 0, nil},
		{"bare lf", "A: b\n\nbody\nmore\n", "A: b\r\n\r\nbody\r\nmore\r\n", 0, nil},
		{"bare lf dot lf stays data", "A: b\r\n\r\nx\n.\nMAIL FROM:<e@x>\n", "A: b\r\n\r\nx\r\n.\r\nMAIL FROM:<e@x>\r\n", 0, nil},
		{"stray cr", "A: b\r\n\r\nx\ry\r\n", "A: b\r\n\r\nx y\r\n", 0, nil},
		{"cr cr lf", "x\r\r\n", "x \r\n", 0, nil},
		{"cr at end", "x\r", "x ", 0, nil},
		{"cr dot cr", "A: b\r\n\r\n\r.\r", "A: b\r\n\r\n . ", 0, nil},
		{"lf cr", "x\n\ry\r\n", "x\r\n y\r\n", 0, nil},
		{"empty", "", "", 0, nil},
		{"nul", "A: b\r\n\r\nx\x00y\r\n", "", 0, errNUL},
		{"header at limit", "A: bc\r\n\r\nbody body body\r\n", "A: bc\r\n\r\nbody body body\r\n", 7, nil},
		{"header over limit", "A: bcd\r\n\r\nbody\r\n", "", 7, errHeaderTooBig},
		{"header over limit bare lf", "A: bc\nB: c\n\n", "", 10, errHeaderTooBig},
		{"no header body only", "\r\n" + strings.Repeat("x", 100) + "\r\n", "\r\n" + strings.Repeat("x", 100) + "\r\n", 10, nil},
		{"8bit kept", "A: \xc3\xa9\r\n\r\n\xff\r\n", "A: \xc3\xa9\r\n\r\n\xff\r\n", 0, nil},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			max := tt.maxHeader
			if max == 0 {
				max = 1 << 20
			}
			z := newNormalizer(r, max)
			got, err := io.ReadAll(z)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || z.err != tt.err {
					t.Errorf("%s (one byte %v): err %v, want %v", tt.name, oneByte, err, tt.err)
				}
				if z.eof {
					t.Errorf("%s: eof set on a failed message", tt.name)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (one byte %v): %v", tt.name, oneByte, err)
				continue
			}
			if string(got) != tt.want {
				t.Errorf("%s (one byte %v): got %q, want %q", tt.name, oneByte, got, tt.want)
			}
			if !z.eof || z.n != int64(len(got)) {
				t.Errorf("%s: eof %v n %d, want true %d", tt.name, z.eof, z.n, len(got))
			}
		}
	}
}

func TestNormalizerSourceError(t *testing.T) {
	boom := errors.New("connection reset")
	z := newNormalizer(io.MultiReader(strings.NewReader("A: b\r\n"), iotest.ErrReader(boom)), 1000)
	_, err := io.ReadAll(z)
	if !errors.Is(err, boom) || z.eof {
		t.Fatalf("err %v eof %v, want %v and no eof", err, z.eof, boom)
	}
}

// FuzzNormalizer checks the output invariants: only CRLF line ends, no
// NUL, no bare CR or LF, and content octets other than CR/LF unchanged.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\n.\n", "\r.\r", "x\r\r\n", "\x00", "A: b\n\nbody", "\r\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		z := newNormalizer(bytes.NewReader(in), 64)
		out, err := io.ReadAll(z)
		if err != nil {
			if !errors.Is(err, errNUL) && !errors.Is(err, errHeaderTooBig) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, errNUL) && !bytes.Contains(in, []byte{0}) {
				t.Fatalf("errNUL without NUL")
			}
			return
		}
		if bytes.IndexByte(out, 0) >= 0 {
			t.Fatal("NUL in output")
		}
		for i, c := range out {
			if c == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, out)
			}
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		strip := func(b []byte) []byte {
			return bytes.Map(func(r rune) rune {
				if r == '\r' || r == '\n' || r == ' ' {
					return -1
				}
				return r
			}, b)
		}
		if !bytes.Equal(strip(in), strip(out)) {
			t.Fatalf("content changed: %q -> %q", in, out)
		}
	})
}
