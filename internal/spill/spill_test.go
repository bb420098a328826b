package spill

import (
	"io"
	"strings"
	"testing"
)

func TestBuffer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		limit   int
		body    string
		spilled bool
	}{
		{"empty", 0, "", false},
		{"small in memory", 0, "hello\r\n", false},
		{"at the limit in memory", 8, "12345678", false},
		{"over the limit in a file", 8, "123456789", true},
		{"large", 0, strings.Repeat("0123456789abcdef", DefaultLimit/16+100), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &Buffer{Limit: tc.limit, Dir: t.TempDir()}
			defer b.Release()
			// Written in pieces, as a copy loop does.
			for s := tc.body; len(s) > 0; {
				n := min(len(s), 3)
				if _, err := b.Write([]byte(s[:n])); err != nil {
					t.Fatal(err)
				}
				s = s[n:]
			}
			if b.Spilled() != tc.spilled || b.Size() != int64(len(tc.body)) {
				t.Fatalf("spilled %v size %d, want %v %d", b.Spilled(), b.Size(), tc.spilled, len(tc.body))
			}
			for i := 0; i < 2; i++ { // readable more than once (relay failover)
				r, err := b.Open()
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil || string(got) != tc.body {
					t.Fatalf("read %d: %d octets, %v; want %d", i, len(got), err, len(tc.body))
				}
			}
		})
	}
}

func TestCopy(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", DefaultLimit+1)
	b, err := Copy(strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	r, _ := b.Open()
	got, _ := io.ReadAll(r)
	if !b.Spilled() || string(got) != big {
		t.Fatalf("spilled %v, %d octets", b.Spilled(), len(got))
	}
	if _, err := Copy(io.MultiReader(strings.NewReader("x"), errReader{})); err == nil || !strings.Contains(err.Error(), "copy body") {
		t.Fatalf("source error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
