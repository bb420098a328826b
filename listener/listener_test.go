package listener

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestQueueLoopback(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"SIZE", "DSN", "SMTPUTF8", "8BITMIME"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("extension %s not offered", ext)
		}
	}
	if _, p := c.Extension("SIZE"); p != "10240000" {
		t.Errorf("SIZE %q, want 10240000", p)
	}
	if err := c.Mail("a@example.com", &smtp.MailOptions{Body: smtp.Body8BitMIME, Return: smtp.DSNReturnHeaders, EnvelopeID: "env+1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure}, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "b@example.org"}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(fullHeader + "Subject: hi\r\n\r\nbody\r\n.dot\r\n"))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusText != "2.0.0 Ok: queued as TESTID000001" {
		t.Errorf("reply %q", resp.StatusText)
	}
	msgs := k.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.env.From != "a@example.com" || !m.env.Body8Bit || m.env.Ret != "HDRS" || m.env.EnvID != "env+1" {
		t.Errorf("envelope %+v", m.env)
	}
	if len(m.env.Recipients) != 1 || m.env.Recipients[0].Notify != "SUCCESS,FAILURE" || m.env.Recipients[0].ORcpt != "RFC822;b@example.org" {
		t.Errorf("recipients %+v", m.env.Recipients)
	}
	if !strings.HasPrefix(m.body, "Received: from client.test ([127.0.0.1])\r\n\tby relay.test (relayq) with ESMTP;\r\n\t") {
		t.Errorf("body starts %q", m.body)
	}
	if !strings.HasSuffix(m.body, "\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n") {
		t.Errorf("body ends %q", m.body)
	}
	if !strings.HasPrefix(m.env.Origin, "127.0.0.1:") {
		t.Errorf("origin %q", m.env.Origin)
	}
}

// usersFile writes a users file (0600) with the given name:password pairs.
func usersFile(t testing.TB, pairs ...string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(pairs); i += 2 {
		b.WriteString(pairs[i] + ":" + lowCost(t, pairs[i+1]) + "\n")
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAllowList(t *testing.T) {
	outside := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name  string
		o     Options
		reply string
	}{
		{"loopback default", Options{}, "250"},
		{"listed", Options{MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, "250"},
		{"not listed no auth", Options{MyNetworks: outside}, "554 5.7.1"},
		{"not listed auth configured", Options{MyNetworks: outside, Users: usersFile(t, "u", "p")}, "530 5.7.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &sink{}
			tt.o.Submit = k.Submit
			_, addr := startTCP(t, tt.o)
			r := dialRaw(t, "tcp", addr)
			r.cmd("EHLO c.test", "250")
			r.cmd("MAIL FROM:<a@example.com>", tt.reply)
			if tt.reply == "250" {
				return
			}
			// Nothing may slip through RCPT or DATA either.
			r.cmd("RCPT TO:<victim@example.org>", "502")
			r.cmd("DATA", "502")
			if n := len(k.all()); n != 0 {
				t.Errorf("%d messages stored", n)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	users := usersFile(t, "alice", "right pw", "bob@example.com", "pw2")
	outside := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, MyNetworks: outside, Users: users})

	t.Run("plain good", func(t *testing.T) {
		r := dialRaw(t, "tcp", addr)
		ehlo := r.cmd("EHLO c.test", "250")
		if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
			t.Errorf("EHLO %q lacks AUTH PLAIN LOGIN (loopback client)", ehlo)
		}
		r.cmd("MAIL FROM:<a@example.com>", "530 5.7.0")
		r.cmd("AUTH PLAIN "+b64("\x00alice\x00right pw"), "235")
		r.cmd("MAIL FROM:<a@example.com>", "250")
		r.cmd("RCPT TO:<x@example.org>", "250")
		r.cmd("DATA", "354")
		r.send("Subject: t\r\n\r\nhi\r\n.\r\n")
		r.expect("250 2.0.0 Ok: queued as")
		m := k.all()[len(k.all())-1]
		if !strings.HasSuffix(m.env.Origin, " user=alice") || !strings.Contains(m.body, "with ESMTPA;") {
			t.Errorf("origin %q body %q", m.env.Origin, m.body)
		}
	})
	t.Run("plain two step", func(t *testing.T) {
		r := dialRaw(t, "tcp", addr)
		r.cmd("EHLO c.test", "250")
		r.cmd("AUTH PLAIN", "334")
		r.cmd(b64("bob@example.com\x00bob@example.com\x00pw2"), "235")
		r.cmd("MAIL FROM:<>", "250")
	})
	t.Run("login good", func(t *testing.T) {
		r := dialRaw(t, "tcp", addr)
		r.cmd("EHLO c.test", "250")
		if got := r.cmd("AUTH LOGIN", "334"); got != "334 "+b64("Username:") {
			t.Errorf("challenge %q", got)
		}
		r.cmd(b64("alice"), "334 "+b64("Password:"))
		r.cmd(b64("right pw"), "235")
		r.cmd("MAIL FROM:<a@example.com>", "250")
	})
	t.Run("bad password then limit", func(t *testing.T) {
		r := dialRaw(t, "tcp", addr)
		r.cmd("EHLO c.test", "250")
		r.cmd("AUTH PLAIN "+b64("\x00alice\x00wrong"), "535 5.7.8")
		r.cmd("MAIL FROM:<a@example.com>", "530")
		r.cmd("AUTH LOGIN "+b64("nosuchuser"), "334")
		r.cmd(b64("right pw"), "535 5.7.8")
		r.cmd("AUTH PLAIN "+b64("bob@example.com\x00alice\x00right pw"), "421 4.7.0") // identity of another user: refused
		if _, err := r.br.ReadString('\n'); err == nil {
			t.Error("connection still open after 3 failures")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		r := dialRaw(t, "tcp", addr)
		r.cmd("EHLO c.test", "250")
		r.cmd("AUTH PLAIN "+b64("alice-right pw"), "501 5.5.2")
		r.cmd("AUTH PLAIN !!!", "454")
		r.cmd("AUTH CRAM-MD5", "504")
		r.cmd("AUTH LOGIN", "334")
		r.cmd("*", "501")
		r.cmd("MAIL FROM:<a@example.com>", "530")
	})
}

func TestAuthNotConfigured(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit})
	r := dialRaw(t, "tcp", addr)
	if ehlo := r.cmd("EHLO c.test", "250"); strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH offered without users: %q", ehlo)
	}
	r.cmd("AUTH PLAIN "+b64("\x00a\x00b"), "503 5.5.1")
}

func TestReloadUsers(t *testing.T) {
	path := usersFile(t, "alice", "one")
	srv, addr := startTCP(t, Options{Submit: (&sink{}).Submit, Users: path})
	try := func(pw, want string) {
		t.Helper()
		r := dialRaw(t, "tcp", addr)
		r.cmd("EHLO c.test", "250")
		r.cmd("AUTH PLAIN "+b64("\x00alice\x00"+pw), want)
	}
	try("one", "235")
	os.WriteFile(path, []byte("alice:"+lowCost(t, "two")+"\n"), 0o600)
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	try("two", "235")
	try("one", "535")
	os.WriteFile(path, []byte("alice:plaintext\n"), 0o600)
	if err := srv.Reload(); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Fatalf("broken file reloaded: %v", err)
	}
	try("two", "235") // old users kept
}

func TestSize(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, MaxMessageSize: 1000})
	r := dialRaw(t, "tcp", addr)
	if ehlo := r.cmd("EHLO c.test", "250"); !strings.Contains(ehlo, "SIZE 1000") {
		t.Errorf("EHLO %q", ehlo)
	}
	r.cmd("MAIL FROM:<a@example.com> SIZE=1001", "552 5.3.4")
	r.cmd("MAIL FROM:<a@example.com> SIZE=500", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 20) + ".\r\n")
	r.expect("552 5.3.4")
	// The session goes on: a small message is accepted.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.org>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: small\r\n\r\nok\r\n.\r\n")
	r.expect("250 2.0.0 Ok: queued as")
	msgs := k.all()
	if len(msgs) != 1 || !strings.Contains(msgs[0].body, "Subject: small") {
		t.Fatalf("stored %d messages: %+v", len(msgs), msgs)
	}
}

func TestRecipientLimit(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit, MaxRecipients: 3})
	r := dialRaw(t, "tcp", addr)
	r.cmd("EHLO c.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	for i := 1; i <= 3; i++ {
		r.cmd(fmt.Sprintf("RCPT TO:<r%d@example.org>", i), "250")
	}
	r.cmd("RCPT TO:<r4@example.org>", "452 4.5.3")
	r.cmd("RCPT TO:<"+strings.Repeat("x", 250)+"@example.org>", "452") // limit first
	r.cmd("DATA", "354")
	r.send("Subject: x\r\n\r\nx\r\n.\r\n")
	r.expect("250")
	if rc := k.all()[0].env.Recipients; len(rc) != 3 {
		t.Errorf("%d recipients stored", len(rc))
	}
}

func TestAddressChecks(t *testing.T) {
	k := &sink{}
	_, addr := startTCP(t, Options{Submit: k.Submit})
	r := dialRaw(t, "tcp", addr)
	r.cmd("EHLO c.test", "250")
	r.cmd("MAIL FROM:<"+strings.Repeat("s", 250)+"@example.com>", "553 5.1.7")
	r.cmd("MAIL FROM:<a\xffb@example.com> SMTPUTF8", "553 5.1.7") // not UTF-8: the spool could not store it
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<"+strings.Repeat("r", 250)+"@example.org>", "553 5.1.3")
	r.cmd("RCPT TO:<r\xc3@example.org>", "553 5.1.3")
	r.cmd("RCPT TO:<B@example.org>", "250")
	r.cmd("RCPT TO:<b@EXAMPLE.org>", "250") // duplicate: kept once
	r.cmd("DATA", "354")
	r.send("\r\n.\r\n")
	r.expect("250")
	if rc := k.all()[0].env.Recipients; len(rc) != 1 || rc[0].Addr != "B@example.org" {
		t.Errorf("recipients %+v", rc)
	}
}
