package submit

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNormalizer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		nul, cr, lf    int64
		eightBit       bool
	}{
		{"crlf kept", "A: b\r\n\r\nbody\r\n", "A: b\r\n\r\nbody\r\n", 0, 0, 0, false},
		{"bare lf", "A: b\n\nbody\nmore\n", "A: b\r\n\r\nbody\r\nmore\r\n", 0, 0, 4, false},
		{"bare lf dot lf stays data", "A: b\r\n\r\nx\n.\nMAIL FROM:<e@x>\n", "A: b\r\n\r\nx\r\n.\r\nMAIL FROM:<e@x>\r\n", 0, 0, 3, false},
		{"stray cr", "A: b\r\n\r\nx\ry\r\n", "A: b\r\n\r\nx y\r\n", 0, 1, 0, false},
		{"cr cr lf", "x\r\r\n", "x \r\n", 0, 1, 0, false},
		{"cr at end", "x\r", "x ", 0, 1, 0, false},
		{"cr dot cr", "A: b\r\n\r\n\r.\r", "A: b\r\n\r\n . ", 0, 2, 0, false},
		{"lf cr", "x\n\ry\r\n", "x\r\n y\r\n", 0, 1, 1, false},
		{"nul removed", "A: b\r\n\r\nx\x00y\x00\r\n\x00", "A: b\r\n\r\nxy\r\n", 3, 0, 0, false},
		{"cr nul lf", "x\r\x00\n", "x \r\n", 1, 1, 1, false},
		{"no final line end", "a\r\nb", "a\r\nb", 0, 0, 0, false},
		{"empty", "", "", 0, 0, 0, false},
		{"8bit kept", "A: \xc3\xa9\r\n\r\n\xff\r\n", "A: \xc3\xa9\r\n\r\n\xff\r\n", 0, 0, 0, true},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			z := NewNormalizer(r)
			got, err := io.ReadAll(z)
			if err != nil || string(got) != tt.want {
				t.Errorf("%s (one byte %v): %q, %v; want %q", tt.name, oneByte, got, err, tt.want)
			}
			if z.NULs != tt.nul || z.StrayCRs != tt.cr || z.BareLFs != tt.lf || z.EightBit != tt.eightBit {
				t.Errorf("%s (one byte %v): NULs %d StrayCRs %d BareLFs %d EightBit %v, want %d %d %d %v",
					tt.name, oneByte, z.NULs, z.StrayCRs, z.BareLFs, z.EightBit, tt.nul, tt.cr, tt.lf, tt.eightBit)
			}
		}
	}
}

func TestNormalizerSourceError(t *testing.T) {
	t.Parallel()
	boom := io.ErrUnexpectedEOF
	z := NewNormalizer(io.MultiReader(strings.NewReader("A: b\r"), iotest.ErrReader(boom)))
	got, err := io.ReadAll(z)
	if err != boom || string(got) != "A: b " {
		t.Fatalf("%q, %v; want %q, %v", got, err, "A: b ", boom)
	}
}

// FuzzNormalizer checks the stored form: only CRLF line ends, no NUL, no
// bare CR or LF, every other octet unchanged and in order.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\n.\n", "\r.\r", "x\r\r\n", "\x00", "A: b\n\nbody", "\r\n.\r\n", "\r\x00\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := io.ReadAll(NewNormalizer(iotest.HalfReader(bytes.NewReader(in))))
		if err != nil {
			t.Fatal(err)
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
				if r == '\r' || r == '\n' || r == ' ' || r == 0 {
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
