package mime7

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"
)

// leaves decodes msg with go-message (an independent MIME reader) and
// returns the decoded body of every leaf part, in order.
func leaves(t testing.TB, msg []byte) [][]byte {
	t.Helper()
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		t.Fatalf("go-message cannot read %q: %v", msg, err)
	}
	var out [][]byte
	err = e.Walk(func(path []int, ent *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if ent.MultipartReader() != nil {
			return nil
		}
		b, err := io.ReadAll(ent.Body)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %q: %v", msg, err)
	}
	return out
}

// check7 asserts the converter's promises on out: 7-bit (when asked) and
// no line over 998 octets, CRLF line ends only.
func check7(t testing.TB, out []byte, sevenBit bool) {
	t.Helper()
	if sevenBit && has8bit(out) {
		t.Errorf("output has 8-bit octets:\n%q", out)
	}
	for i, l := range bytes.Split(out, []byte("\r\n")) {
		if len(l) > MaxLine {
			t.Errorf("output line %d is %d octets", i+1, len(l))
		}
	}
}

func TestConvert(t *testing.T) {
	long := strings.Repeat("long line ", 150) // 1500 octets
	tests := []struct {
		name, in string
		seven    bool
		changed  bool
		want     []string // substrings of the output
		err      error
	}{
		{"7-bit untouched", "Subject: a\r\n\r\nhello\r\n", true, false, nil, nil},
		{"8-bit kept with 8BITMIME", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nh\xc3\xa9\r\n", false, false, nil, nil},
		{"8-bit text to QP", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nh\xc3\xa9llo\r\n", true, true,
			[]string{"Content-Transfer-Encoding: quoted-printable\r\n", "h=C3=A9llo", "Content-Type: text/plain; charset=utf-8\r\n"}, nil},
		{"non-MIME made MIME", "Subject: x\r\n\r\nh\xc3\xa9\r\n", true, true,
			[]string{"MIME-Version: 1.0\r\n", "charset=utf-8", "quoted-printable"}, nil},
		{"binary to base64", "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\r\n\x00\xff\xfe\r\n", true, true,
			[]string{"Content-Transfer-Encoding: base64\r\n"}, nil},
		{"long line to QP, 8BITMIME relay", "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + long + "\r\n", false, true,
			[]string{"quoted-printable"}, nil},
		{"multipart: only the 8-bit part", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n--b1--\r\nepilogue\r\n", true, true,
			[]string{"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\n", "=C3=A9t=C3=A9", "\r\n--b1--\r\nepilogue\r\n"}, nil},
		{"signed refused", "MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\n\xc3\xa9\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n", true, false, nil, ErrSigned},
		{"signed, nothing to do", "MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\nascii\r\n--s--\r\n", true, false, nil, nil},
		{"8-bit inside nested message", "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: inner \xc3\xa9\r\nMIME-Version: 1.0\r\n\r\nb\xc3\xb6dy\r\n", true, true,
			[]string{"=?utf-8?q?", "b=C3=B6dy"}, nil},
		{"declared base64 with 8-bit", "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n\xc3\xa9\r\n", true, false, nil, ErrCannot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := Convert([]byte(tc.in), Options{SevenBit: tc.seven})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Errorf("changed = %v, want %v:\n%s", changed, tc.changed, out)
			}
			if !changed && string(out) != tc.in {
				t.Errorf("unchanged but different: %q", out)
			}
			for _, w := range tc.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			check7(t, out, tc.seven)
			if tc.name == "8-bit inside nested message" {
				return // go-message does not descend into message/rfc822
			}
			a, b := leaves(t, []byte(tc.in)), leaves(t, out)
			if len(a) != len(b) {
				t.Fatalf("%d leaves in, %d out", len(a), len(b))
			}
			for i := range a {
				if !bytes.Equal(a[i], b[i]) {
					t.Errorf("leaf %d decodes to %q, was %q", i, b[i], a[i])
				}
			}
		})
	}
}

// FuzzConvert: whatever the part contents, the output is 7-bit, has no
// line over 998 octets, keeps the MIME structure and decodes (go-message)
// to the same octets part by part.
func FuzzConvert(f *testing.F) {
	f.Add([]byte("h\xc3\xa9llo\r\n"), []byte("\x00\x01\xff"), "text/plain", true)
	f.Add([]byte(strings.Repeat("a", 2000)), []byte("b\r\n"), "text/html", false)
	f.Add([]byte("trailing space \r\n.\r\n"), []byte(strings.Repeat("\xe2\x82\xac", 500)), "application/pdf", true)
	f.Fuzz(func(t *testing.T, p1, p2 []byte, ctype string, multi bool) {
		const bnd = "=_relayq_fuzz_b"
		if bytes.Contains(p1, []byte(bnd)) || bytes.Contains(p2, []byte(bnd)) {
			return
		}
		switch ctype {
		case "text/plain", "text/html", "application/pdf", "application/octet-stream":
		default:
			ctype = "text/plain"
		}
		var msg []byte
		if multi {
			msg = []byte("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + bnd + "\"\r\n\r\npre\r\n--" + bnd +
				"\r\nContent-Type: " + ctype + "\r\n\r\n" + string(p1) + "\r\n--" + bnd + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
				string(p2) + "\r\n--" + bnd + "--\r\n")
		} else {
			msg = []byte("MIME-Version: 1.0\r\nContent-Type: " + ctype + "\r\n\r\n" + string(p1))
		}
		out, _, err := Convert(msg, Options{SevenBit: true})
		if err != nil {
			t.Fatalf("Convert: %v", err)
		}
		check7(t, out, true)
		a, b := leaves(t, msg), leaves(t, out)
		if len(a) != len(b) {
			t.Fatalf("%d leaves in, %d out\n%q", len(a), len(b), out)
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("leaf %d decodes to %q, was %q\nout: %q", i, b[i], a[i], out)
			}
		}
	})
}
