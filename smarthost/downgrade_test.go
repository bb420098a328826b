package smarthost

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"github.com/relayq/relayq/internal/testlib"
)

// bodyRelay is a scripted relay that offers ext (EHLO keywords) and hands
// each body it receives (dot-unstuffed) and each MAIL line to the channels.
func bodyRelay(t *testing.T, ext []string, bodies chan<- string, mails chan<- string) *testlib.Server {
	return testlib.Serve(t, func(c *testlib.Conn) {
		c.Send("220 relay.test ESMTP")
		for {
			cmd := c.Cmd()
			u := strings.ToUpper(cmd)
			switch {
			case cmd == "":
				return
			case strings.HasPrefix(u, "EHLO"):
				r := "250-relay.test\r\n"
				for _, e := range ext {
					r += "250-" + e + "\r\n"
				}
				c.Send(r + "250 HELP")
			case strings.HasPrefix(u, "MAIL"):
				mails <- cmd
				c.Send("250 ok")
			case u == "DATA":
				c.Send("354 go")
				var b strings.Builder
				for l := range strings.SplitAfterSeq(c.Data(), "\r\n") {
					b.WriteString(strings.TrimPrefix(l, ".")) // RFC 5321 §4.5.2
				}
				bodies <- b.String()
				c.Send("250 2.0.0 ok")
			case u == "QUIT":
				c.Send("221 bye")
				return
			default:
				c.Send("250 ok")
			}
		}
	})
}

// decodedLeaves is the decoded body of every leaf part (go-message).
func decodedLeaves(t *testing.T, msg string) []string {
	t.Helper()
	e, err := message.Read(strings.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("read %q: %v", msg, err)
	}
	var out []string
	if err := e.Walk(func(_ []int, ent *message.Entity, werr error) error {
		if werr != nil && !message.IsUnknownCharset(werr) {
			return werr
		}
		if ent.MultipartReader() != nil {
			return nil
		}
		b, err := io.ReadAll(ent.Body)
		out = append(out, string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func bodyMessage(body string, eightBit bool) *Message {
	m := testMessage("b@example.com")
	m.Body8Bit = eightBit
	m.Size = int64(len(body))
	m.Body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return m
}

// TestDowngradeTo7Bit: an 8-bit message to a relay without 8BITMIME goes
// out as 7-bit MIME (no BODY=8BITMIME) that decodes to the same octets;
// inside multipart/signed it is bounced with 5.6.3; a line over 998
// octets goes out quoted-printable (not folded) and decodes to itself.
func TestDowngradeTo7Bit(t *testing.T) {
	long := strings.Repeat("0123456789", 150) // 1500 octets, one line
	mixed := "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe, .dot\r\n.\r\nend\r\n--b\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n\x00\x01\xfe\xff\r\n--b--\r\n"
	signed := "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n"
	plainLong := "From: a@example.org\r\nSubject: long\r\n\r\n" + long + "\r\nshort\r\n"
	cases := []struct {
		name, body string
		eightBit   bool
		ext        []string
		want       Status
		enh        string
	}{
		{"8-bit multipart to a relay without 8BITMIME", mixed, true, nil, Delivered, "2.0.0"},
		{"signed 8-bit to a relay without 8BITMIME", signed, true, nil, Bounced, "5.6.3"},
		{"signed 8-bit with 8BITMIME: sent as is", signed, true, []string{"8BITMIME"}, Delivered, "2.0.0"},
		{"long line, 8BITMIME relay", plainLong, false, []string{"8BITMIME"}, Delivered, "2.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bodies, mails := make(chan string, 4), make(chan string, 4)
			srv := bodyRelay(t, tc.ext, bodies, mails)
			c := newTestClient(t, rawRelay(srv), nil, func(o *Options) { o.TLS = None })
			out, err := c.Deliver(context.Background(), bodyMessage(tc.body, tc.eightBit))
			if err != nil {
				t.Fatal(err)
			}
			if r := out.Recipients[0]; r.Status != tc.want || r.Enhanced != tc.enh {
				t.Fatalf("outcome %+v, want %v %s", r, tc.want, tc.enh)
			}
			if tc.want != Delivered {
				if srv.Count("DATA") != 0 {
					t.Error("DATA sent for a bounced message")
				}
				return
			}
			mail := <-mails
			if strings.Contains(tc.name, "without 8BITMIME") && strings.Contains(mail, "8BITMIME") {
				t.Errorf("MAIL line %q to a relay without 8BITMIME", mail)
			}
			got := <-bodies
			if strings.Contains(tc.name, "as is") {
				if got != tc.body {
					t.Errorf("signed message changed:\n%q\nwant\n%q", got, tc.body)
				}
				return
			}
			for i, l := range strings.Split(got, "\r\n") {
				if len(l) > 998 {
					t.Errorf("line %d is %d octets", i, len(l))
				}
				if tc.eightBit && !isASCII(l) {
					t.Errorf("line %d is 8-bit: %q", i, l)
				}
			}
			a, b := decodedLeaves(t, tc.body), decodedLeaves(t, got)
			if len(a) != len(b) {
				t.Fatalf("%d parts sent, %d stored:\n%s", len(b), len(a), got)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("part %d decodes to %q, want %q", i, b[i], a[i])
				}
			}
		})
	}
}
