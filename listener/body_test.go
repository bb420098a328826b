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
		{"line rules (submit.Normalizer)", "A: b\n\nx\ry\x00z\r\n", "A: b\r\n\r\nx yz\r\n", 0, nil},
		{"header at limit", "A: bc\r\n\r\nbody body body\r\n", "A: bc\r\n\r\nbody body body\r\n", 7, nil},
		{"header over limit", "A: bcd\r\n\r\nbody\r\n", "", 7, errHeaderTooBig},
		{"header over limit bare lf", "A: bc\nB: c\n\n", "", 10, errHeaderTooBig},
		{"no header body only", "\r\n" + strings.Repeat("x", 100) + "\r\n", "\r\n" + strings.Repeat("x", 100) + "\r\n", 10, nil},
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

// FuzzNormalizer: the header bound holds and is the only error.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "A: b\n\nbody", "\r\n.\r\n", strings.Repeat("A: b\n", 20)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		z := newNormalizer(bytes.NewReader(in), 64)
		out, err := io.ReadAll(z)
		if err != nil {
			if !errors.Is(err, errHeaderTooBig) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		hdr, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
		if len(hdr) > 64 {
			t.Fatalf("header of %d octets passed a bound of 64", len(hdr))
		}
	})
}
